"""The local bus's frames: a 4-byte length, a 1-byte kind, a body of our own compact
encoding (messages, filter summaries, session claims and hand-overs)."""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from enum import IntEnum

from roost.core.message import Delivery, Message
from roost.core.session import Session, SessionSubscription
from roost.mqtt.constants import PacketType
from roost.mqtt.packets import NO_PROPERTIES, Subscription
from roost.mqtt.properties import encode_properties, read_properties

_U8 = struct.Struct("!B")
_U16 = struct.Struct("!H")
_U32 = struct.Struct("!I")
_F64 = struct.Struct("!d")
HEADER = struct.Struct("!IB")  # body length (kind included), kind
PUBLISH = PacketType.PUBLISH

# A frame larger than this is a bug or a corrupt stream: the link is dropped.
MAX_FRAME = 512 * 1024 * 1024


class Kind(IntEnum):
    HELLO = 1  # index, whether the sender still needs the retained set
    FILTER = 2  # tenant, filter, added (1) or removed (0)
    FORWARD = 3  # a message, and the $share groups the receiver serves
    CLAIM = 4  # request id, tenant, client id, clean start
    CLAIMED = 5  # request id, whether a session was held, the handed-over session
    HANDED = 6  # tenant, client id: the hand-over is stored, the old copy may go
    RETAINED_DONE = 7  # the retained set has been sent
    RETAIN = 8  # one retained message of that set
    SYNCED = 9  # the sender's whole filter summary has been sent
    STREAMS = 10  # tenant, its capturing streams with their filters (worker 0's)
    CAPTURE = 11  # request id (0: no answer), packet id, dup, a message for the streams
    CAPTURED = 12  # request id, whether the append is committed (1) or failed (0)


class Writer:
    __slots__ = ("out",)

    def __init__(self, kind: Kind) -> None:
        self.out = bytearray(HEADER.pack(0, kind))

    def frame(self) -> bytes:
        HEADER.pack_into(self.out, 0, len(self.out) - 4, self.out[4])
        return bytes(self.out)

    def u8(self, value: int) -> None:
        self.out += _U8.pack(value)

    def u16(self, value: int) -> None:
        self.out += _U16.pack(value)

    def u32(self, value: int) -> None:
        self.out += _U32.pack(value)

    def f64(self, value: float) -> None:
        self.out += _F64.pack(value)

    def blob(self, value: bytes) -> None:
        self.out += _U32.pack(len(value))
        self.out += value

    def text(self, value: str) -> None:
        self.blob(value.encode())

    def opt_text(self, value: str | None) -> None:
        self.u8(value is not None)
        if value is not None:
            self.text(value)


class Reader:
    __slots__ = ("buf", "pos")

    def __init__(self, body: bytes) -> None:
        self.buf = memoryview(body)
        self.pos = 0

    def _take(self, s: struct.Struct) -> int:
        (value,) = s.unpack_from(self.buf, self.pos)
        self.pos += s.size
        return int(value)

    def u8(self) -> int:
        return self._take(_U8)

    def u16(self) -> int:
        return self._take(_U16)

    def u32(self) -> int:
        return self._take(_U32)

    def f64(self) -> float:
        (value,) = _F64.unpack_from(self.buf, self.pos)
        self.pos += 8
        return float(value)

    def blob(self) -> bytes:
        length = self.u32()
        value = bytes(self.buf[self.pos : self.pos + length])
        self.pos += length
        return value

    def text(self) -> str:
        return self.blob().decode()

    def opt_text(self) -> str | None:
        return self.text() if self.u8() else None


def write_message(w: Writer, m: Message) -> None:
    w.text(m.tenant)
    w.text(m.topic)
    w.blob(m.payload)
    w.u8(m.qos | (m.retain << 2) | ((m.expires_at is not None) << 3))
    w.blob(encode_properties(m.properties, PacketType.PUBLISH))
    if m.expires_at is not None:
        w.f64(m.expires_at)
    w.opt_text(m.publisher)
    w.f64(m.created_at)


def read_message(r: Reader) -> Message:
    tenant = r.text()
    topic = r.text()
    payload = r.blob()
    flags = r.u8()
    raw = r.blob()
    properties, _ = read_properties(memoryview(raw), 0, len(raw), PacketType.PUBLISH)
    expires_at = r.f64() if flags & 8 else None
    publisher = r.opt_text()
    return Message(
        tenant=tenant,
        topic=topic,
        payload=payload,
        qos=flags & 3,
        retain=bool(flags & 4),
        properties=properties,
        expires_at=expires_at,
        publisher=publisher,
        created_at=r.f64(),
    )


# A forwarded message's fixed fields in one go: the frame header, flags (QoS, RETAIN,
# has expiry, has publisher), the lengths of tenant, topic, payload, properties, publisher
# and `$share` groups, then created_at and expires_at (0 when none).
FORWARD = struct.Struct("!IBBHHIIHIdd")
_HAS_EXPIRY = 8
_HAS_PUBLISHER = 16
_NO_GROUPS: frozenset[str] = frozenset()


def forward_frame(message: Message, groups: tuple[str, ...]) -> bytes:
    """A message for the receiver's local sessions; `groups`: the `$share` groups
    (full filters) it serves, every other shared group is served elsewhere."""
    tenant = message.tenant.encode()
    topic = message.topic.encode()
    payload = message.payload
    properties = message.properties
    props = b"" if properties is NO_PROPERTIES else encode_properties(properties, PUBLISH)
    publisher = message.publisher
    pub = b"" if publisher is None else publisher.encode()
    expires_at = message.expires_at
    # Filters cannot hold U+0000 [MQTT-1.5.4-2]: it separates the groups.
    shared = "\0".join(groups).encode() if groups else b""
    flags = message.qos | (message.retain << 2)
    if expires_at is not None:
        flags |= _HAS_EXPIRY
    if publisher is not None:
        flags |= _HAS_PUBLISHER
    variable = len(tenant) + len(topic) + len(payload) + len(props) + len(pub) + len(shared)
    head = FORWARD.pack(
        FORWARD.size - 4 + variable,
        Kind.FORWARD,
        flags,
        len(tenant),
        len(topic),
        len(payload),
        len(props),
        len(pub),
        len(shared),
        message.created_at,
        expires_at or 0.0,
    )
    return b"".join((head, tenant, topic, payload, props, pub, shared))


def read_forward(data: bytes, pos: int) -> tuple[Message, frozenset[str]]:
    """The FORWARD frame at `pos` of `data` (checked complete by the caller)."""
    _, _, flags, lt, lc, lp, lr, lu, lg, created_at, expires_at = FORWARD.unpack_from(data, pos)
    a = pos + FORWARD.size
    b = a + lt
    c = b + lc
    d = c + lp
    e = d + lr
    f = e + lu
    properties = NO_PROPERTIES
    if lr:
        properties, _ = read_properties(memoryview(data), d, e, PUBLISH)
    message = Message(
        tenant=data[a:b].decode(),
        topic=data[b:c].decode(),
        payload=data[c:d],
        qos=flags & 3,
        retain=bool(flags & 4),
        properties=properties,
        expires_at=expires_at if flags & _HAS_EXPIRY else None,
        publisher=data[e:f].decode() if flags & _HAS_PUBLISHER else None,
        created_at=created_at,
    )
    groups = frozenset(data[f : f + lg].decode().split("\0")) if lg else _NO_GROUPS
    return message, groups


@dataclass(slots=True)
class HandOver:
    """A persistent session passed from the worker that held it to the one resuming it."""

    expiry_interval: int
    device_id: str | None
    subscription_qos: bool
    subscriptions: list[SessionSubscription] = field(default_factory=list)
    # Inflight first (to be resent with DUP), then queued, in order.
    deliveries: list[Delivery] = field(default_factory=list)
    awaiting_rel: list[int] = field(default_factory=list)


def write_hand_over(w: Writer, h: HandOver) -> None:
    w.u32(h.expiry_interval)
    w.opt_text(h.device_id)
    w.u8(h.subscription_qos)
    w.u32(len(h.subscriptions))
    for sub in h.subscriptions:
        o = sub.options
        w.text(sub.topic_filter)
        w.u8(o.qos | (o.no_local << 2) | (o.retain_as_published << 3) | (o.retain_handling << 4))
        w.u32(sub.subscription_identifier or 0)
    w.u32(len(h.deliveries))
    for d in h.deliveries:
        write_message(w, d.message)
        w.u8(d.qos | (d.retain << 2) | (d.dup << 3))
        w.u16(len(d.subscription_identifiers))
        for sid in d.subscription_identifiers:
            w.u32(sid)
    w.u32(len(h.awaiting_rel))
    for packet_id in h.awaiting_rel:
        w.u16(packet_id)


def read_hand_over(r: Reader) -> HandOver:
    h = HandOver(r.u32(), r.opt_text(), bool(r.u8()))
    for _ in range(r.u32()):
        topic_filter = r.text()
        bits = r.u8()
        sid = r.u32()
        options = Subscription(
            topic_filter=topic_filter,
            qos=bits & 3,
            no_local=bool(bits & 4),
            retain_as_published=bool(bits & 8),
            retain_handling=bits >> 4,
        )
        h.subscriptions.append(
            SessionSubscription(
                topic_filter=topic_filter, options=options, subscription_identifier=sid or None
            )
        )
    for _ in range(r.u32()):
        message = read_message(r)
        bits = r.u8()
        ids = tuple(r.u32() for _ in range(r.u16()))
        h.deliveries.append(
            Delivery(
                message=message,
                qos=bits & 3,
                retain=bool(bits & 4),
                dup=bool(bits & 8),
                subscription_identifiers=ids,
            )
        )
    h.awaiting_rel.extend(r.u16() for _ in range(r.u32()))
    return h


def hand_over_of(session: Session) -> HandOver:
    """A session's state to pass on: unacknowledged messages (DUP) first, then the queue;
    those awaiting only PUBCOMP are already with the client."""
    deliveries = [
        Delivery(
            message=d.message,
            qos=d.qos,
            retain=d.retain,
            subscription_identifiers=d.subscription_identifiers,
            dup=True,
        )
        for d in session.inflight.values()
        if not d.released
    ]
    deliveries.extend(session.queue)
    journal = session.journal
    if session.spilled and journal is not None:
        # Past `max_queued_in_memory` the queue is on disk only: read it back, in order.
        deliveries.extend(journal.load_spilled(session.key, session.spill_after, session.spilled))
    return HandOver(
        expiry_interval=session.expiry_interval,
        device_id=session.device_id,
        subscription_qos=session.subscription_qos,
        subscriptions=list(session.subscriptions.values()),
        deliveries=deliveries,
        awaiting_rel=sorted(session.awaiting_rel),
    )
