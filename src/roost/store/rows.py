"""Reading the SQLite store's rows back: messages, deliveries and sessions as the broker
rebuilds them (at start-up, and a spilled queue when its session reads it)."""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from typing import Any

from roost.core.message import Delivery, Message
from roost.core.session import SessionKey, SessionSubscription
from roost.core.store import StoredSession
from roost.mqtt.constants import PacketType
from roost.mqtt.packets import NO_PROPERTIES, Properties, Subscription
from roost.mqtt.properties import encode_properties, read_properties

# The columns `message()` reads, of the messages table joined as `m`.
MESSAGE_COLUMNS = (
    "m.id, m.tenant, m.topic, m.payload, m.qos, m.retain, m.properties, m.expires_at,"
    " m.publisher, m.created_at"
)
# The columns `delivery()` reads: a delivery `d` and its message `m` (joined by the caller).
DELIVERY_COLUMNS = (
    "d.id, d.tenant, d.client_id, d.qos, d.retain, d.subscription_identifiers,"
    f" d.packet_id, d.released, d.message_id, {MESSAGE_COLUMNS}"
)


def encode_props(props: Properties) -> bytes | None:
    """A PUBLISH's properties as stored (None for none)."""
    return None if props is NO_PROPERTIES else encode_properties(props, PacketType.PUBLISH)


def decode_props(blob: bytes | None) -> Properties:
    if not blob:
        return NO_PROPERTIES
    props, _ = read_properties(memoryview(blob), 0, len(blob), PacketType.PUBLISH)
    return props


def message(cache: dict[int, Message], row: Sequence[Any]) -> Message:
    """The message of a row of MESSAGE_COLUMNS; one object per stored row (`cache`)."""
    found = cache.get(row[0])
    if found is None:
        found = Message(
            tenant=row[1],
            topic=row[2],
            payload=bytes(row[3]),
            qos=row[4],
            retain=bool(row[5]),
            properties=decode_props(row[6]),
            expires_at=row[7],
            publisher=row[8],
            created_at=row[9],
        )
        cache[row[0]] = found
    return found


def delivery(cache: dict[int, Message], row: Sequence[Any]) -> Delivery:
    """The delivery of a row of DELIVERY_COLUMNS."""
    ids = tuple(int(i) for i in row[5].split(",")) if row[5] else ()
    return Delivery(
        message=message(cache, row[9:]),
        qos=row[3],
        retain=bool(row[4]),
        subscription_identifiers=ids,
        packet_id=row[6],
        dup=bool(row[6]),
        released=bool(row[7]),
        store_id=row[0],
        store_message=row[8],
    )


def load_sessions(conn: sqlite3.Connection, cache: dict[int, Message]) -> list[StoredSession]:
    """Every stored session with its subscriptions, its deliveries in flight (as objects,
    to be resent), its inbound QoS 2 state, and its queue counted (it stays on disk)."""
    subscriptions: dict[SessionKey, list[SessionSubscription]] = {}
    for row in conn.execute(
        "SELECT tenant, client_id, topic_filter, qos, no_local, retain_as_published,"
        " retain_handling, subscription_identifier FROM subscriptions"
    ):
        options = Subscription(
            topic_filter=row[2],
            qos=row[3],
            no_local=bool(row[4]),
            retain_as_published=bool(row[5]),
            retain_handling=row[6],
        )
        subscriptions.setdefault((row[0], row[1]), []).append(
            SessionSubscription(
                topic_filter=row[2], options=options, subscription_identifier=row[7]
            )
        )
    deliveries: dict[SessionKey, list[Delivery]] = {}
    for row in conn.execute(
        f"SELECT {DELIVERY_COLUMNS} FROM deliveries d"
        " JOIN messages m ON m.id = d.message_id WHERE d.packet_id != 0 ORDER BY d.id"
    ):
        deliveries.setdefault((row[1], row[2]), []).append(delivery(cache, row))
    spilled: dict[SessionKey, tuple[int, int]] = {}
    for tenant, client_id, count, size in conn.execute(
        "SELECT d.tenant, d.client_id, COUNT(*), SUM(LENGTH(m.payload) + LENGTH(m.topic)"
        " + 64) FROM deliveries d JOIN messages m ON m.id = d.message_id"
        " WHERE d.packet_id = 0 GROUP BY d.tenant, d.client_id"
    ):
        spilled[(tenant, client_id)] = (count, size)
    awaiting: dict[SessionKey, list[int]] = {}
    for tenant, client_id, packet_id in conn.execute(
        "SELECT tenant, client_id, packet_id FROM awaiting_rel"
    ):
        awaiting.setdefault((tenant, client_id), []).append(packet_id)
    sessions = []
    for tenant, client_id, expiry, disconnected_at, device_id, sub_qos in conn.execute(
        "SELECT tenant, client_id, expiry_interval, disconnected_at, device_id,"
        " subscription_qos FROM sessions"
    ):
        key = (tenant, client_id)
        count, size = spilled.get(key, (0, 0))
        sessions.append(
            StoredSession(
                tenant=tenant,
                client_id=client_id,
                expiry_interval=expiry,
                disconnected_at=disconnected_at,
                device_id=device_id,
                subscription_qos=bool(sub_qos),
                subscriptions=tuple(subscriptions.get(key, ())),
                deliveries=tuple(deliveries.get(key, ())),
                awaiting_rel=tuple(awaiting.get(key, ())),
                spilled=count,
                spilled_bytes=size,
            )
        )
    return sessions
