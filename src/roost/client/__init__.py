"""The Python library for backend services: stream consumers and publishing to devices."""

from roost.client.streams import (
    Consumer,
    DeadLetter,
    Envelope,
    RoostApiError,
    RoostClient,
    StreamMessage,
)

__all__ = ["Consumer", "DeadLetter", "Envelope", "RoostApiError", "RoostClient", "StreamMessage"]
