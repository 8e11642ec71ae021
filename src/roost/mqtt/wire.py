"""Primitive MQTT data types (section 1.5): readers over memoryviews and writers to bytes.

Every reader takes the buffer, a position and the end of the region it may read, and returns
the value and the next position. Reading past `end` raises MalformedPacket, never IndexError.
"""

from __future__ import annotations

from roost.errors import MalformedPacket
from roost.mqtt.constants import MAX_VARIABLE_BYTE_INTEGER

_U16_MAX = 0xFFFF
_U32_MAX = 0xFFFF_FFFF


def read_u8(buf: memoryview, pos: int, end: int) -> int:
    if pos >= end:
        raise MalformedPacket("packet ends inside a Byte field")
    return buf[pos]


def read_u16(buf: memoryview, pos: int, end: int) -> int:
    if pos + 2 > end:
        raise MalformedPacket("packet ends inside a Two Byte Integer")
    return (buf[pos] << 8) | buf[pos + 1]


def read_u32(buf: memoryview, pos: int, end: int) -> int:
    if pos + 4 > end:
        raise MalformedPacket("packet ends inside a Four Byte Integer")
    return int.from_bytes(buf[pos : pos + 4], "big")


def read_varint(buf: memoryview, pos: int, end: int) -> tuple[int, int]:
    """Read a Variable Byte Integer [MQTT-1.5.5].

    More than 4 bytes is a Malformed Packet. Non-minimal encodings (e.g. 0x80 0x00 for 0)
    are accepted: the specification only requires senders to use the minimum number of
    bytes, and permits receivers to decode the longer forms.
    """
    value = 0
    shift = 0
    for i in range(pos, pos + 4):
        if i >= end:
            raise MalformedPacket("packet ends inside a Variable Byte Integer")
        byte = buf[i]
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return value, i + 1
        shift += 7
    raise MalformedPacket("Variable Byte Integer longer than 4 bytes [MQTT-1.5.5]")


def read_binary(buf: memoryview, pos: int, end: int) -> tuple[bytes, int]:
    """Read Binary Data: a Two Byte Integer length followed by that many bytes."""
    if pos + 2 > end:
        raise MalformedPacket("packet ends inside a Binary Data length")
    stop = pos + 2 + ((buf[pos] << 8) | buf[pos + 1])
    if stop > end:
        raise MalformedPacket("Binary Data runs past the end of the packet")
    return bytes(buf[pos + 2 : stop]), stop


def read_string(buf: memoryview, pos: int, end: int) -> tuple[str, int]:
    """Read a UTF-8 Encoded String [MQTT-1.5.4].

    Ill-formed UTF-8 (including encoded surrogates U+D800..U+DFFF and overlong forms) and
    U+0000 make the packet malformed [MQTT-1.5.4-1] [MQTT-1.5.4-2].
    """
    if pos + 2 > end:
        raise MalformedPacket("packet ends inside a UTF-8 string length")
    stop = pos + 2 + ((buf[pos] << 8) | buf[pos + 1])
    if stop > end:
        raise MalformedPacket("UTF-8 string runs past the end of the packet")
    try:
        text = str(buf[pos + 2 : stop], "utf-8")
    except UnicodeDecodeError:
        raise MalformedPacket("ill-formed UTF-8 string [MQTT-1.5.4-1]") from None
    if "\x00" in text:
        raise MalformedPacket("UTF-8 string contains U+0000 [MQTT-1.5.4-2]")
    return text, stop


def encode_varint(value: int) -> bytes:
    """Encode a Variable Byte Integer with the minimum number of bytes."""
    if value < 128:
        if value < 0:
            raise ValueError(f"Variable Byte Integer out of range: {value}")
        return bytes((value,))
    if value > MAX_VARIABLE_BYTE_INTEGER:
        raise ValueError(f"Variable Byte Integer out of range: {value}")
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def varint_size(value: int) -> int:
    """Number of bytes of the minimal Variable Byte Integer encoding of `value`."""
    if value < 128:
        return 1
    if value < 16_384:
        return 2
    if value < 2_097_152:
        return 3
    return 4


def encode_u16(value: int) -> bytes:
    if not 0 <= value <= _U16_MAX:
        raise ValueError(f"Two Byte Integer out of range: {value}")
    return value.to_bytes(2, "big")


def encode_u32(value: int) -> bytes:
    if not 0 <= value <= _U32_MAX:
        raise ValueError(f"Four Byte Integer out of range: {value}")
    return value.to_bytes(4, "big")


def encode_binary(data: bytes) -> bytes:
    size = len(data)
    if size > _U16_MAX:
        raise ValueError(f"Binary Data longer than 65535 bytes: {size}")
    return size.to_bytes(2, "big") + data


def encode_string(text: str) -> bytes:
    """Encode a UTF-8 Encoded String; U+0000, lone surrogates and > 65535 bytes are refused."""
    if "\x00" in text:
        raise ValueError("UTF-8 string must not contain U+0000")
    try:
        data = text.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError("string contains a lone surrogate") from None
    size = len(data)
    if size > _U16_MAX:
        raise ValueError(f"UTF-8 string longer than 65535 bytes: {size}")
    return size.to_bytes(2, "big") + data


def check_packet_id(packet_id: int) -> int:
    """Refuse (ValueError) a Packet Identifier the encoder must not send [MQTT-2.3.1-1]."""
    if not 0 < packet_id <= _U16_MAX:
        raise ValueError(f"Packet Identifier must be 1..65535, got {packet_id}")
    return packet_id
