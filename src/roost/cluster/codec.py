"""The local bus's frames: a 4-byte length, a 1-byte kind, a body of our own compact
encoding; one encoding of a message for every frame that carries one."""

from __future__ import annotations

import struct
from enum import IntEnum

from roost.core.message import Message
from roost.mqtt.constants import PacketType
from roost.mqtt.packets import NO_PROPERTIES
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
    __slots__ = ("buf", "data", "pos")

    def __init__(self, body: bytes) -> None:
        self.data = body
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


# A message's fixed fields in one go: flags (QoS, RETAIN, has expiry, has publisher), the
# lengths of tenant, topic, payload, properties, publisher and `$share` groups, then
# created_at and expires_at (0 when none); then the variable parts in that order. A FORWARD
# frame is the frame header and one message (header and fixed fields one pack); the other
# frames that carry messages (RETAIN, CAPTURE, CLAIMED) hold them the same way.
MESSAGE = struct.Struct("!BHHIIHIdd")
FORWARD = struct.Struct("!IB" + MESSAGE.format[1:])
_HAS_EXPIRY = 8
_HAS_PUBLISHER = 16
_NO_GROUPS: frozenset[str] = frozenset()


def encode_message(message: Message, groups: tuple[str, ...] = (), kind: int = 0) -> bytes:
    """A message and the `$share` groups (full filters) its receiver serves, every other
    shared group being served elsewhere; with `kind` (FORWARD), a whole frame."""
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
    lt, lc, lp, lr = len(tenant), len(topic), len(payload), len(props)
    lu, lg = len(pub), len(shared)
    created_at = message.created_at
    expiry = expires_at or 0.0
    if kind:
        size = FORWARD.size - 4 + lt + lc + lp + lr + lu + lg
        head = FORWARD.pack(size, kind, flags, lt, lc, lp, lr, lu, lg, created_at, expiry)
    else:
        head = MESSAGE.pack(flags, lt, lc, lp, lr, lu, lg, created_at, expiry)
    return b"".join((head, tenant, topic, payload, props, pub, shared))


def decode_message(data: bytes, pos: int) -> tuple[Message, frozenset[str], int]:
    """The message encoded at `pos` of `data` (checked complete by the caller), its
    `$share` groups, and where it ends."""
    flags, lt, lc, lp, lr, lu, lg, created_at, expires_at = MESSAGE.unpack_from(data, pos)
    a = pos + MESSAGE.size
    b = a + lt
    c = b + lc
    d = c + lp
    e = d + lr
    f = e + lu
    g = f + lg
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
    groups = frozenset(data[f:g].decode().split("\0")) if lg else _NO_GROUPS
    return message, groups, g


def write_message(w: Writer, message: Message) -> None:
    w.out += encode_message(message)


def read_message(r: Reader) -> Message:
    message, _, r.pos = decode_message(r.data, r.pos)
    return message
