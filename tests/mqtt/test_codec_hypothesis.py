"""Property tests: encode/decode round trips and robustness against arbitrary bytes."""

from __future__ import annotations

import contextlib

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from roost.errors import MQTTError
from roost.mqtt.codec import decode, decode_connect, encode, encode_publish, read_frame
from roost.mqtt.constants import PacketType, ProtocolVersion
from roost.mqtt.packets import Packet, Publish
from tests.mqtt.strategies import packets, publishes
from tests.vectors import VECTORS

UNLIMITED = 268_435_455 + 5
VERSIONS = list(ProtocolVersion)


def _decode_whole(data: bytes, version: ProtocolVersion) -> Packet:
    frame = read_frame(data, UNLIMITED)
    assert frame is not None
    first_byte, body, frame_length = frame
    assert frame_length == len(data)
    if first_byte >> 4 == PacketType.CONNECT:
        return decode_connect(first_byte, body)
    return decode(first_byte, body, version)


@pytest.mark.parametrize("version", VERSIONS, ids=[v.name for v in VERSIONS])
@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_round_trip(version: ProtocolVersion, data: st.DataObject) -> None:
    packet = data.draw(packets(version))
    encoded = encode(packet, version)
    assert _decode_whole(encoded, version) == packet
    # Encoding is deterministic and a decoded packet encodes to the same bytes.
    assert encode(_decode_whole(encoded, version), version) == encoded


@pytest.mark.parametrize("version", VERSIONS, ids=[v.name for v in VERSIONS])
@given(data=st.data())
def test_encode_publish_fast_path_matches_encode(
    version: ProtocolVersion, data: st.DataObject
) -> None:
    p: Publish = data.draw(publishes(version))
    fast = encode_publish(
        p.topic, p.payload, p.qos, p.retain, p.dup, p.packet_id, p.properties, version
    )
    assert fast == encode(p, version)


def _decode_any(first_byte: int, body: bytes, version: ProtocolVersion) -> None:
    with contextlib.suppress(MQTTError):
        decode(first_byte, body, version)
    with contextlib.suppress(MQTTError):
        decode_connect(first_byte, body)


@settings(max_examples=1500)
@given(raw=st.binary(max_size=64), version=st.sampled_from(VERSIONS))
def test_arbitrary_bytes_only_raise_mqtt_errors(raw: bytes, version: ProtocolVersion) -> None:
    try:
        frame = read_frame(raw, 1 << 20)
    except MQTTError:
        return
    if frame is not None:
        first_byte, body, _ = frame
        _decode_any(first_byte, bytes(body), version)


@settings(max_examples=1500)
@given(
    first_byte=st.integers(0, 255),
    body=st.binary(max_size=48),
    version=st.sampled_from(VERSIONS),
)
def test_arbitrary_bodies_only_raise_mqtt_errors(
    first_byte: int, body: bytes, version: ProtocolVersion
) -> None:
    _decode_any(first_byte, body, version)


@settings(max_examples=1500)
@given(
    vector=st.sampled_from(VECTORS),
    edits=st.lists(st.tuples(st.integers(0, 4096), st.integers(0, 255)), min_size=1, max_size=3),
)
def test_mutated_vectors_only_raise_mqtt_errors(
    vector: object, edits: list[tuple[int, int]]
) -> None:
    data = bytearray(vector.data)  # type: ignore[attr-defined]
    for where, value in edits:
        data[where % len(data)] = value
    try:
        frame = read_frame(data, UNLIMITED)
    except MQTTError:
        return
    if frame is not None:
        first_byte, body, _ = frame
        _decode_any(first_byte, bytes(body), vector.version)  # type: ignore[attr-defined]
