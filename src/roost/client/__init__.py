"""The Python library for backend services: stream consumers and publishing to devices."""

from roost.client.streams import (
    Consumer,
    Envelope,
    RoostApiError,
    RoostClient,
    StreamMessage,
)
from roost.streams.model import DeadLetter

__all__ = ["Consumer", "DeadLetter", "Envelope", "RoostApiError", "RoostClient", "StreamMessage"]
