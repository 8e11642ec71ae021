"""Sans-IO MQTT 3.1 / 3.1.1 / 5.0 codec: bytes <-> frozen packet dataclasses."""
