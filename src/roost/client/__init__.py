"""The Python library for backend services: stream consumers and publishing to devices."""

from roost.client.streams import (
    Consumer,
    RoostApiError,
    RoostClient,
    StreamMessage,
)
from roost.streams.model import DeadLetter, Envelope

__all__ = ["Consumer", "DeadLetter", "Envelope", "RoostApiError", "RoostClient", "StreamMessage"]
