"""The public face of the MQTT codec: framing, decoding and encoding in one import."""

from __future__ import annotations

from roost.mqtt.decoder import (
    UnsupportedConnectVersion,
    decode,
    decode_connect,
    decode_puback,
    decode_publish,
)
from roost.mqtt.encoder import encode, encode_ack, encode_publish
from roost.mqtt.framing import read_frame
from roost.mqtt.properties import encode_properties, encoded_properties_length
from roost.mqtt.wire import encode_varint, read_varint

__all__ = [
    "UnsupportedConnectVersion",
    "decode",
    "decode_connect",
    "decode_puback",
    "decode_publish",
    "encode",
    "encode_ack",
    "encode_properties",
    "encode_publish",
    "encode_varint",
    "encoded_properties_length",
    "read_frame",
    "read_varint",
]
