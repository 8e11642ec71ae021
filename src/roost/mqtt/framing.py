"""Fixed header framing (section 2.1): find where one packet ends in a stream of bytes."""

from __future__ import annotations

from roost.errors import MalformedPacket, PacketTooLarge
from roost.mqtt.wire import encode_varint


def read_frame(
    buffer: bytes | bytearray | memoryview, max_packet_size: int, start: int = 0
) -> tuple[int, memoryview, int] | None:
    """Look at `buffer` from `start` on for one whole packet.

    Returns None if more bytes are needed, else (first_byte, body, frame_length): `body` is
    a memoryview of the Remaining Length bytes and `frame_length` the number of bytes to
    consume (fixed header + body).

    `body` is a view into `buffer`: while it is alive a bytearray buffer cannot be resized,
    so decode it (decoding copies everything it keeps) and `body.release()` it before
    deleting the consumed bytes from a bytearray.

    Raises MalformedPacket as soon as a 4th Remaining Length byte has its continuation bit
    set [MQTT-1.5.5], and PacketTooLarge as soon as the declared packet size (fixed header
    plus Remaining Length) is above `max_packet_size`, before the body has arrived.
    """
    available = len(buffer) - start
    if available < 2:
        return None
    byte = buffer[start + 1]
    if not byte & 0x80:
        # The common case: a Remaining Length below 128, one byte.
        header_length = 2
        remaining = byte
    else:
        remaining = byte & 0x7F
        shift = 7
        header_length = 0
        for index in range(2, 5):
            if index >= available:
                return None
            byte = buffer[start + index]
            remaining |= (byte & 0x7F) << shift
            if not byte & 0x80:
                header_length = index + 1
                break
            shift += 7
        else:
            raise MalformedPacket("Remaining Length longer than 4 bytes [MQTT-1.5.5]")
    frame_length = header_length + remaining
    if frame_length > max_packet_size:
        raise PacketTooLarge(
            f"packet of {frame_length} bytes is above the maximum packet size {max_packet_size}"
        )
    if available < frame_length:
        return None
    view = buffer if isinstance(buffer, memoryview) else memoryview(buffer)
    return buffer[start], view[start + header_length : start + frame_length], frame_length


def frame(first_byte: int, body: bytes) -> bytes:
    """Prefix `body` with its fixed header."""
    size = len(body)
    if size < 128:
        return bytes((first_byte, size)) + body
    return bytes((first_byte,)) + encode_varint(size) + body
