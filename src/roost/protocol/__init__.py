"""Sans-IO per-connection MQTT state machine (server side)."""
