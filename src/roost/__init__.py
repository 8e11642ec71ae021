"""Roost: a self-hosted IoT device-connectivity platform built on an MQTT broker."""

__version__ = "0.1.0"
