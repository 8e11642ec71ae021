"""Every shared vector: decodes to its packet or error, encodes back, survives slicing."""

from __future__ import annotations

import pytest

from roost.errors import MalformedPacket, MQTTError, ProtocolViolation, UnsupportedProtocolVersion
from roost.mqtt.codec import (
    UnsupportedConnectVersion,
    decode,
    decode_connect,
    encode,
    read_frame,
)
from roost.mqtt.constants import PacketType, ProtocolVersion, ReasonCode
from roost.mqtt.packets import Connack, Connect, Packet, Puback, Pubcomp, Pubrec, Pubrel, Unsuback
from tests.vectors import VECTORS, Vector

UNLIMITED = 268_435_455 + 5
VALID = [v for v in VECTORS if v.valid]
INVALID = [v for v in VECTORS if not v.valid]
CANONICAL = [v for v in VALID if v.canonical]
NON_CANONICAL = [v for v in VALID if not v.canonical]


def _ids(vectors: list[Vector]) -> list[str]:
    return [v.name for v in vectors]


def decode_packet(data: bytes, version: ProtocolVersion) -> Packet:
    """Frame and decode one whole packet, the way a connection would."""
    frame = read_frame(data, UNLIMITED)
    assert frame is not None, "vector is not a complete packet"
    first_byte, body, frame_length = frame
    assert frame_length == len(data), "vector has bytes after its packet"
    if first_byte >> 4 == PacketType.CONNECT:
        return decode_connect(first_byte, body)
    return decode(first_byte, body, version)


def test_table_is_large_and_names_are_unique() -> None:
    assert len(VECTORS) >= 120
    assert len({v.name for v in VECTORS}) == len(VECTORS)
    covered = {(v.data[0] >> 4, v.version) for v in VALID}
    for packet_type in PacketType:
        for version in (ProtocolVersion.V311, ProtocolVersion.V5):
            if packet_type == PacketType.AUTH and version != ProtocolVersion.V5:
                continue
            assert (packet_type, version) in covered, (packet_type, version)
    assert (PacketType.CONNECT, ProtocolVersion.V31) in covered


@pytest.mark.parametrize("vector", VALID, ids=_ids(VALID))
def test_valid_vector_decodes(vector: Vector) -> None:
    assert decode_packet(vector.data, vector.version) == vector.packet


@pytest.mark.parametrize("vector", INVALID, ids=_ids(INVALID))
def test_invalid_vector_raises_its_error(vector: Vector) -> None:
    with pytest.raises(MQTTError) as caught:
        decode_packet(vector.data, vector.version)
    assert isinstance(caught.value, vector.error), caught.value
    # The three families are disjoint: a MalformedPacket is never a ProtocolViolation.
    for family in (MalformedPacket, ProtocolViolation, UnsupportedProtocolVersion):
        if family is not vector.error:
            assert not isinstance(caught.value, family)


@pytest.mark.parametrize("vector", INVALID, ids=_ids(INVALID))
def test_error_carries_reason_code(vector: Vector) -> None:
    with pytest.raises(MQTTError) as caught:
        decode_packet(vector.data, vector.version)
    expected = {
        MalformedPacket: ReasonCode.MALFORMED_PACKET,
        ProtocolViolation: ReasonCode.PROTOCOL_ERROR,
        UnsupportedProtocolVersion: ReasonCode.UNSUPPORTED_PROTOCOL_VERSION,
    }[vector.error]
    if vector.name == "publish-5-topic-alias-0":
        expected = ReasonCode.TOPIC_ALIAS_INVALID
    assert caught.value.reason_code == expected


@pytest.mark.parametrize("vector", CANONICAL, ids=_ids(CANONICAL))
def test_canonical_vector_encodes_to_same_bytes(vector: Vector) -> None:
    assert encode(vector.packet, vector.version).hex() == vector.hex


@pytest.mark.parametrize("vector", NON_CANONICAL, ids=_ids(NON_CANONICAL))
def test_non_canonical_vector_re_encodes_canonically(vector: Vector) -> None:
    data = encode(vector.packet, vector.version)
    assert data != vector.data
    assert len(data) <= len(vector.data)
    assert decode_packet(data, vector.version) == vector.packet


@pytest.mark.parametrize(
    "vector", [v for v in VECTORS if v.data[0] >> 4 == PacketType.CONNECT], ids=lambda v: v.name
)
def test_decode_accepts_connect_too(vector: Vector) -> None:
    frame = read_frame(vector.data, UNLIMITED)
    assert frame is not None
    first_byte, body, _ = frame
    try:
        expected: object = decode_connect(first_byte, body)
    except MQTTError as exc:
        expected = type(exc)
    try:
        # The version passed in is irrelevant for CONNECT: it is read from the packet.
        got: object = decode(first_byte, body, ProtocolVersion.V5)
    except MQTTError as exc:
        got = type(exc)
    assert got == expected


@pytest.mark.parametrize(
    ("name", "requested", "protocol_name"),
    [
        ("connect-unknown-level-6", 6, "MQTT"),
        ("connect-mqtt-name-level-3", 3, "MQTT"),
        ("connect-mqisdp-name-level-4", 4, "MQIsdp"),
        ("connect-unknown-protocol-name", None, "MQTX"),
    ],
)
def test_unsupported_version_tells_requested_version(
    name: str, requested: int | None, protocol_name: str
) -> None:
    vector = next(v for v in VECTORS if v.name == name)
    with pytest.raises(UnsupportedConnectVersion) as caught:
        decode_packet(vector.data, vector.version)
    assert caught.value.requested_version == requested
    assert caught.value.protocol_name == protocol_name
    assert caught.value.reason_code == ReasonCode.UNSUPPORTED_PROTOCOL_VERSION


def test_unsupported_level_wins_over_a_malformed_rest() -> None:
    # [MQTT-3.1.2-2]: the server answers the level even if it cannot read the rest.
    body = bytes.fromhex("00044d515454" + "07" + "ff")
    with pytest.raises(UnsupportedConnectVersion) as caught:
        decode_connect(0x10, body)
    assert caught.value.requested_version == 7


# --- streaming ------------------------------------------------------------------------


@pytest.mark.parametrize("vector", VALID, ids=_ids(VALID))
def test_one_byte_at_a_time(vector: Vector) -> None:
    buffer = bytearray()
    for byte in vector.data[:-1]:
        buffer.append(byte)
        assert read_frame(buffer, UNLIMITED) is None
        assert read_frame(bytes(buffer), UNLIMITED) is None
    buffer.append(vector.data[-1])
    frame = read_frame(buffer, UNLIMITED)
    assert frame is not None
    first_byte, body, frame_length = frame
    assert first_byte == vector.data[0]
    assert frame_length == len(vector.data)
    assert bytes(body) == vector.data[frame_length - len(body) :]
    body.release()
    buffer.extend(b"\xc0\x00")  # the next packet must not disturb the first frame
    frame = read_frame(buffer, UNLIMITED)
    assert frame is not None and frame[2] == len(vector.data)


def _must_be_malformed_when_cut(packet: Packet, version: ProtocolVersion) -> bool:
    """Packets without an open-ended tail: any strict prefix of their body is malformed."""
    if isinstance(packet, (Connect, Connack)):
        return True
    if version != ProtocolVersion.V5:
        return isinstance(packet, (Puback, Pubrec, Pubrel, Pubcomp, Unsuback))
    return False


@pytest.mark.parametrize("vector", CANONICAL, ids=_ids(CANONICAL))
def test_truncated_bodies_fail_cleanly(vector: Vector) -> None:
    frame = read_frame(vector.data, UNLIMITED)
    assert frame is not None
    first_byte, body, _ = frame
    full = bytes(body)
    strict = _must_be_malformed_when_cut(vector.packet, vector.version)
    for cut in range(len(full)):
        try:
            if first_byte >> 4 == PacketType.CONNECT:
                got: Packet = decode_connect(first_byte, full[:cut])
            else:
                got = decode(first_byte, memoryview(full)[:cut], vector.version)
        except MalformedPacket:
            continue
        except MQTTError:
            assert not strict, f"cut at {cut}: expected MalformedPacket"
            continue
        # Some prefixes are packets in their own right (a PUBLISH with less payload, a
        # SUBSCRIBE with fewer filters); they are never the original packet.
        assert not strict, f"cut at {cut} decoded to {got!r}"
        assert got != vector.packet
