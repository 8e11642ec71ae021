"""Fuzz target: the MQTT decoder (framing, every packet type, properties, v3.1 / 3.1.1 / 5.0).

Input: one byte choosing the protocol version, then a stream of packets. Every frame must
either decode or raise one of Roost's MQTTError subclasses; a decoded packet must encode
and decode back to the same packet. Anything else is a crash.

    python -m fuzz.fuzz_decoder [libFuzzer flags] [corpus dirs]   (see fuzz/run.py)
"""

from __future__ import annotations

import sys

import atheris

with atheris.instrument_imports(include=["roost"]):
    from roost.errors import MQTTError
    from roost.mqtt.codec import decode, decode_connect, encode, read_frame
    from roost.mqtt.constants import PacketType, ProtocolVersion

VERSIONS = (ProtocolVersion.V31, ProtocolVersion.V311, ProtocolVersion.V5)
MAX_PACKET_SIZE = 268_435_460


def decode_one(first_byte: int, body: memoryview, version: ProtocolVersion) -> object:
    if first_byte >> 4 == PacketType.CONNECT:
        return decode_connect(first_byte, body)
    return decode(first_byte, body, version)


def check_round_trip(packet: object, version: ProtocolVersion) -> None:
    """encode(p) must decode to p again (for CONNECT, in the version it names)."""
    wire_version = getattr(packet, "protocol_version", version) if _is_connect(packet) else version
    try:
        data = encode(packet, wire_version)  # type: ignore[arg-type]
    except MQTTError:
        # Some decodable packets are not sent by the server (e.g. v3 reason codes that
        # only exist in v5): the encoder may refuse them; it must do so cleanly.
        return
    frame = read_frame(data, MAX_PACKET_SIZE)
    assert frame is not None, "encoder produced an incomplete frame"
    first_byte, body, length = frame
    assert length == len(data), "encoder produced trailing bytes"
    again = decode_one(first_byte, body, wire_version)
    assert again == packet, f"round trip changed the packet:\n{packet!r}\n{again!r}"


def _is_connect(packet: object) -> bool:
    return type(packet).__name__ == "Connect"


def test_one_input(data: bytes) -> None:
    if not data:
        return
    version = VERSIONS[data[0] % len(VERSIONS)]
    view = memoryview(data)[1:]
    offset = 0
    while offset < len(view):
        try:
            frame = read_frame(view[offset:], MAX_PACKET_SIZE)
        except MQTTError:
            return
        if frame is None:
            return
        first_byte, body, length = frame
        offset += length
        try:
            packet = decode_one(first_byte, body, version)
        except MQTTError:
            continue
        check_round_trip(packet, version)


def main() -> None:
    atheris.Setup(sys.argv, test_one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
