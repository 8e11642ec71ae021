"""The messaging service's vocabulary: stream declarations, the stored envelope, deliveries to
consumer groups, positions and statistics."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from roost.core.topics import is_valid_topic_filter, parse_shared
from roost.errors import InvalidStreamRequest

# A stream or group name: letters, digits, '_' and '-'. The '.' is kept for the service's own
# streams: the dead-letter stream of stream `s` is `s.dlq`.
NAME_PATTERN = re.compile(r"[A-Za-z0-9_-]{1,64}")
DLQ_SUFFIX = ".dlq"
# The most messages one fetch may ask for.
MAX_BATCH = 1000
MAX_TOPIC_FILTERS = 64
# Message ids Roost gives QoS 0 messages (which have no packet id) start above every packet id.
ROOST_MESSAGE_ID_BASE = 1 << 16


def dlq_name(stream: str) -> str:
    """The dead-letter stream of `stream`."""
    return stream + DLQ_SUFFIX


def check_name(kind: str, name: str) -> str:
    if not NAME_PATTERN.fullmatch(name):
        raise InvalidStreamRequest(
            f"invalid {kind} name {name!r}: 1 to 64 letters, digits, '_' or '-'"
        )
    return name


@dataclass(frozen=True, slots=True, kw_only=True)
class StreamSpec:
    """What an operator declares: which topics a stream captures and how long it keeps them.

    Retention limits are 0 for "no limit". `ack_wait`, `max_deliver` and `max_ack_pending`
    apply to every consumer group of the stream."""

    name: str
    topic_filters: tuple[str, ...] = ()
    max_age: float = 0.0
    max_bytes: int = 0
    max_messages: int = 0
    ack_wait: float = 30.0
    max_deliver: int = 5
    max_ack_pending: int = 1000

    @property
    def is_dlq(self) -> bool:
        return self.name.endswith(DLQ_SUFFIX)

    def validated(self, max_topic_length: int = 65535, max_topic_levels: int = 128) -> StreamSpec:
        """This spec, or InvalidStreamRequest naming what is wrong."""
        if self.is_dlq:
            check_name("stream", self.name[: -len(DLQ_SUFFIX)])
        else:
            check_name("stream", self.name)
        if len(self.topic_filters) > MAX_TOPIC_FILTERS:
            raise InvalidStreamRequest(f"at most {MAX_TOPIC_FILTERS} topic filters per stream")
        for topic_filter in self.topic_filters:
            if not isinstance(topic_filter, str) or not is_valid_topic_filter(
                topic_filter, max_topic_length, max_topic_levels
            ):
                raise InvalidStreamRequest(f"invalid topic filter {topic_filter!r}")
            try:
                shared = parse_shared(topic_filter)
            except ValueError:
                shared = None
            if shared is not None or topic_filter.startswith("$share/"):
                raise InvalidStreamRequest(
                    f"a stream cannot capture a shared filter: {topic_filter!r}"
                )
        checks = (
            (self.max_age >= 0, "max_age must be >= 0 seconds (0 = no limit)"),
            (self.max_bytes >= 0, "max_bytes must be >= 0 (0 = no limit)"),
            (self.max_messages >= 0, "max_messages must be >= 0 (0 = no limit)"),
            (0 < self.ack_wait <= 86400, "ack_wait must be > 0 and at most 86400 seconds"),
            (1 <= self.max_deliver <= 1000, "max_deliver must be 1..1000"),
            (1 <= self.max_ack_pending <= 100_000, "max_ack_pending must be 1..100000"),
        )
        for ok, message in checks:
            if not ok:
                raise InvalidStreamRequest(message)
        return self


@dataclass(frozen=True, slots=True, kw_only=True)
class DeadLetter:
    """Where a dead-lettered envelope came from."""

    stream: str
    group: str
    seq: int
    deliveries: int


@dataclass(frozen=True, slots=True, kw_only=True)
class Envelope:
    """One captured message: the original payload and its metadata, as stored.

    `message_id` is the MQTT packet identifier for QoS 1 and 2; for QoS 0 Roost assigns one
    of its own, at least ROOST_MESSAGE_ID_BASE (65536), so it never looks like a packet id."""

    stream: str
    seq: int
    tenant: str
    topic: str
    payload: bytes
    qos: int
    retain: bool
    client_id: str
    message_id: int
    dup: bool = False
    user_properties: tuple[tuple[str, str], ...] = ()
    payload_format_indicator: int | None = None
    content_type: str | None = None
    correlation_data: bytes | None = None
    response_topic: str | None = None
    received_at: float = 0.0
    dead_letter: DeadLetter | None = None

    @property
    def size(self) -> int:
        """Bytes counted against a stream's max_bytes."""
        return len(self.payload) + len(self.topic) + 64

    @property
    def text(self) -> str:
        """The payload as UTF-8 text."""
        return self.payload.decode()


@dataclass(frozen=True, slots=True, kw_only=True)
class Delivered:
    """An envelope handed to a member of a consumer group; `deliveries` counts this one."""

    envelope: Envelope
    group: str
    deliveries: int
    ack_deadline: float


@dataclass(frozen=True, slots=True, kw_only=True)
class Position:
    """Where a seek moves a group: a sequence number, or the first message at or after a
    time (seconds since the epoch); exactly one of them."""

    seq: int | None = None
    time: float | None = None

    def __post_init__(self) -> None:
        if (self.seq is None) == (self.time is None):
            raise InvalidStreamRequest("a position is either a sequence number or a time")
        if self.seq is not None and self.seq < 1:
            raise InvalidStreamRequest("sequence numbers start at 1")
        if self.time is not None and self.time < 0:
            raise InvalidStreamRequest("a time position must be >= 0")


@dataclass(slots=True, kw_only=True)
class GroupStats:
    name: str
    # Every sequence number up to here is acknowledged (or was dropped / dead-lettered).
    committed: int
    # The next sequence number never delivered to this group.
    next_seq: int
    pending: int
    delivered: int = 0
    redelivered: int = 0
    acked: int = 0
    nacked: int = 0
    dead_lettered: int = 0


@dataclass(slots=True, kw_only=True)
class StreamStats:
    spec: StreamSpec
    first_seq: int
    last_seq: int
    messages: int
    bytes: int
    # Dropped by retention (age, bytes, count) since the stream was declared.
    dropped: int
    created_at: float
    groups: list[GroupStats] = field(default_factory=list)
