"""Hand-encoded MQTT 3.1.1 packets for the load generator, and a fixed-header walker.

The generator never decodes a whole packet: it reads the fixed header (type and Remaining
Length) to step from packet to packet, and only looks further in when it must (the packet
id of a QoS 1 PUBLISH to acknowledge it, the timestamp in a latency payload).
"""

from __future__ import annotations

import struct

from roost.mqtt.wire import encode_string as utf8
from roost.mqtt.wire import encode_varint as varint

PUBLISH = 0x3
PUBACK = 0x4
CONNACK = 0x2
SUBACK = 0x9

_U64 = struct.Struct(">QQ")


def connect(client_id: str, keep_alive: int = 600, clean: bool = True) -> bytes:
    """CONNECT, MQTT 3.1.1, no credentials; clean session unless `clean` is False (a
    persistent session, kept by the broker after the connection closes)."""
    flags = 0x02 if clean else 0x00
    body = utf8("MQTT") + bytes([4, flags]) + keep_alive.to_bytes(2, "big") + utf8(client_id)
    return b"\x10" + varint(len(body)) + body


def subscribe(packet_id: int, topic_filter: str, qos: int) -> bytes:
    body = packet_id.to_bytes(2, "big") + utf8(topic_filter) + bytes([qos])
    return b"\x82" + varint(len(body)) + body


def disconnect() -> bytes:
    return b"\xe0\x00"


def publish(topic: str, payload: bytes, qos: int = 0, packet_id: int = 0) -> bytes:
    """One whole PUBLISH (no retain, no dup)."""
    variable = utf8(topic) + (packet_id.to_bytes(2, "big") if qos else b"")
    return bytes([0x30 | (qos << 1)]) + varint(len(variable) + len(payload)) + variable + payload


def publish_parts(topic: str, payload_len: int, qos: int) -> tuple[bytes, int]:
    """The bytes before the packet id (or the payload at QoS 0), and the offset of the
    payload in the whole packet."""
    variable_len = 2 + len(topic.encode()) + (2 if qos else 0)
    head = bytes([0x30 | (qos << 1)]) + varint(variable_len + payload_len) + utf8(topic)
    return head, len(head) + (2 if qos else 0)


def puback(packet_id: bytes) -> bytes:
    return b"\x40\x02" + packet_id


def stamp(seq: int, now_ns: int, size: int) -> bytes:
    """A payload of `size` bytes (>= 16) starting with a sequence number and a timestamp."""
    return _U64.pack(seq, now_ns) + bytes(size - 16)


def unstamp(buf: bytes, offset: int) -> tuple[int, int]:
    """The (sequence number, timestamp) at `offset` in `buf`."""
    seq, ts = _U64.unpack_from(buf, offset)
    return int(seq), int(ts)


def walk(buf: bytes) -> tuple[list[tuple[int, int, int]], int]:
    """Split `buf` into whole packets: [(first byte, start, header length)], and the number
    of bytes consumed. A trailing partial packet is left for the next call."""
    out: list[tuple[int, int, int]] = []
    i = 0
    n = len(buf)
    while i + 2 <= n:
        b1 = buf[i + 1]
        if b1 < 0x80:
            size = b1
            hl = 2
        else:
            size = b1 & 0x7F
            mult = 128
            j = i + 2
            while True:
                if j >= n:
                    return out, i
                b = buf[j]
                size += (b & 0x7F) * mult
                j += 1
                if b < 0x80 or mult > 128**3:
                    break
                mult *= 128
            hl = j - i
        end = i + hl + size
        if end > n:
            break
        out.append((buf[i], i, hl))
        i = end
    return out, i
