"""read_frame: incremental framing, Remaining Length limits and the maximum packet size."""

from __future__ import annotations

import pytest

from roost.errors import MalformedPacket, PacketTooLarge
from roost.mqtt.codec import encode_varint, read_frame, read_varint


def test_needs_two_bytes() -> None:
    assert read_frame(b"", 100) is None
    assert read_frame(b"\xc0", 100) is None


def test_returns_first_frame_only() -> None:
    data = bytes.fromhex("c00030050003612f62d000")
    assert read_frame(data, 100) == (0xC0, memoryview(b""), 2)
    first_byte, body, length = read_frame(data[2:], 100) or (0, memoryview(b""), 0)
    assert (first_byte, bytes(body), length) == (0x30, bytes.fromhex("0003612f62"), 7)


@pytest.mark.parametrize("kind", [bytes, bytearray, memoryview])
def test_accepts_any_buffer(kind: type) -> None:
    frame = read_frame(kind(bytes.fromhex("4002000701")), 100)
    assert frame is not None
    assert frame[0] == 0x40 and bytes(frame[1]) == b"\x00\x07" and frame[2] == 4


def test_body_is_a_view_not_a_copy() -> None:
    buffer = bytearray(bytes.fromhex("40020007"))
    frame = read_frame(buffer, 100)
    assert frame is not None
    buffer[3] = 9
    assert bytes(frame[1]) == b"\x00\x09"


def test_packet_too_large_from_fixed_header_alone() -> None:
    # Declares 268,435,455 bytes; none of them has arrived.
    with pytest.raises(PacketTooLarge) as caught:
        read_frame(bytes.fromhex("30ffffff7f"), 1024)
    assert caught.value.reason_code == 0x95


def test_packet_too_large_counts_the_fixed_header() -> None:
    # Remaining Length 98 + 2 bytes of fixed header = 100.
    header = bytes.fromhex("3062")
    assert read_frame(header, 100) is None
    with pytest.raises(PacketTooLarge):
        read_frame(header, 99)
    full = header + bytes(98)
    frame = read_frame(full, 100)
    assert frame is not None and frame[2] == 100
    # 128 bytes of body need a 2-byte Remaining Length: 131 in all.
    with pytest.raises(PacketTooLarge):
        read_frame(bytes.fromhex("308001"), 130)
    assert read_frame(bytes.fromhex("308001"), 131) is None


def test_five_byte_remaining_length_fails_without_waiting() -> None:
    # The 4th length byte still has its continuation bit: no need to see a 5th byte.
    with pytest.raises(MalformedPacket):
        read_frame(bytes.fromhex("30ffffffff"), 1 << 30)
    with pytest.raises(MalformedPacket):
        read_frame(bytes.fromhex("3080808080"), 1 << 30)


def test_partial_remaining_length_waits() -> None:
    for data in ("30ff", "30ffff", "30ffffff"):
        assert read_frame(bytes.fromhex(data), 1 << 30) is None


def test_largest_remaining_length() -> None:
    assert read_frame(bytes.fromhex("30ffffff7f"), 268_435_460) is None


@pytest.mark.parametrize(
    ("value", "encoded"),
    [
        (0, "00"),
        (127, "7f"),
        (128, "8001"),
        (16_383, "ff7f"),
        (16_384, "808001"),
        (2_097_151, "ffff7f"),
        (2_097_152, "80808001"),
        (268_435_455, "ffffff7f"),
    ],
)
def test_variable_byte_integer_boundaries(value: int, encoded: str) -> None:
    # The examples of the Variable Byte Integer table (section 1.5.5).
    assert encode_varint(value).hex() == encoded
    data = bytes.fromhex(encoded)
    assert read_varint(memoryview(data), 0, len(data)) == (value, len(data))


def test_variable_byte_integer_limits() -> None:
    with pytest.raises(ValueError):
        encode_varint(268_435_456)
    with pytest.raises(ValueError):
        encode_varint(-1)
    data = bytes.fromhex("8080808001")
    with pytest.raises(MalformedPacket):
        read_varint(memoryview(data), 0, len(data))
    # Non-minimal encodings are decoded: the specification lets receivers accept them.
    data = bytes.fromhex("808000")
    assert read_varint(memoryview(data), 0, 3) == (0, 3)


@pytest.mark.parametrize("kind", [bytes, bytearray, memoryview])
def test_reads_frame_after_frame_from_an_offset(kind: type) -> None:
    """`start`: the frame found there is the one found by slicing the buffer there."""
    big = b"\x30" + encode_varint(200) + bytes(200)
    data = bytes.fromhex("c000") + big + bytes.fromhex("40020007") + big[:50]
    buffer = kind(data)
    offset = 0
    seen = []
    while (frame := read_frame(buffer, 1000, offset)) is not None:
        sliced = read_frame(data[offset:], 1000)
        assert sliced is not None
        assert (frame[0], bytes(frame[1]), frame[2]) == (sliced[0], bytes(sliced[1]), sliced[2])
        seen.append(frame[0])
        offset += frame[2]
    assert seen == [0xC0, 0x30, 0x40]
    assert offset == len(data) - 50  # the partial PUBLISH waits
    with pytest.raises(PacketTooLarge):
        read_frame(buffer, 100, 2)
