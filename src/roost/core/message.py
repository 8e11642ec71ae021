"""Application messages as the broker routes them, and per-subscriber delivery records."""

from __future__ import annotations

from dataclasses import dataclass

from roost.mqtt.packets import NO_PROPERTIES, Properties
from roost.records import record

DEFAULT_TENANT = "default"


@record(kw_only=True)
class Message:
    """One application message, immutable once published.

    `properties` holds what is forwarded unchanged to subscribers (payload format indicator,
    content type, response topic, correlation data, user properties); the topic alias and
    subscription identifiers are per delivery, the expiry is kept as an absolute deadline.
    """

    tenant: str = DEFAULT_TENANT
    topic: str
    payload: bytes = b""
    qos: int = 0
    retain: bool = False
    properties: Properties = NO_PROPERTIES
    expires_at: float | None = None
    publisher: str | None = None
    created_at: float = 0.0

    @property
    def size(self) -> int:
        """Approximate bytes held by this message, for queue accounting."""
        return len(self.payload) + len(self.topic) + 64

    def expired(self, now: float) -> bool:
        return self.expires_at is not None and now >= self.expires_at

    def remaining_expiry(self, now: float) -> int | None:
        """Seconds left, rounded up, for the forwarded Message Expiry Interval [MQTT-3.3.2-6]."""
        if self.expires_at is None:
            return None
        left = self.expires_at - now
        return max(0, int(left) if left == int(left) else int(left) + 1)


@dataclass(slots=True, kw_only=True)
class Delivery:
    """One message on its way to one session: queued, then inflight until acknowledged."""

    message: Message
    qos: int
    retain: bool
    subscription_identifiers: tuple[int, ...] = ()
    packet_id: int = 0
    dup: bool = False
    # QoS 2: PUBREC received and PUBREL sent; waiting for PUBCOMP.
    released: bool = False
    # Identity in a durable store (0: not stored), and that of its message's row there.
    store_id: int = 0
    store_message: int = 0
