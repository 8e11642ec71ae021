"""Fixtures and helpers of the durability tests: a real `roost serve` process on a SQLite
store, raw v5 clients with persistent sessions."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from roost.mqtt.constants import ProtocolVersion
from roost.mqtt.packets import (
    Connack,
    Properties,
    Puback,
    Pubcomp,
    Pubrec,
    Pubrel,
    Suback,
    Subscribe,
    Subscription,
)
from tests.durability.crash import Broker
from tests.rawclient import RawClient

KEEP = Properties(session_expiry_interval=3600)


def client(broker: Broker) -> RawClient:
    return RawClient("127.0.0.1", broker.port, ProtocolVersion.V5)


def crash_and_restart(broker: Broker) -> None:
    broker.kill()
    broker.start()


def connect(
    broker: Broker, client_id: str, clean: bool = False, **kw: object
) -> tuple[RawClient, Connack]:
    c = client(broker)
    props = kw.pop("properties", KEEP)
    connack = c.connect(client_id, clean_start=clean, properties=props, **kw)  # type: ignore[arg-type]
    assert isinstance(connack, Connack) and connack.reason_code == 0, connack
    return c, connack


def subscribe(c: RawClient, topic_filter: str, qos: int, sub_id: int | None = None) -> None:
    c.send(
        Subscribe(
            packet_id=1,
            subscriptions=(Subscription(topic_filter=topic_filter, qos=qos),),
            properties=Properties(subscription_identifiers=(sub_id,) if sub_id else ()),
        )
    )
    assert isinstance(c.recv(), Suback)


def publish_acked(
    c: RawClient, topic: str, payload: bytes, qos: int, packet_id: int, retain: bool = False
) -> None:
    c.publish(topic, payload, qos=qos, packet_id=packet_id, retain=retain)
    ack = c.recv()
    assert isinstance(ack, Puback if qos == 1 else Pubrec), ack
    if qos == 2:
        c.send(Pubrel(packet_id=packet_id))
        assert isinstance(c.recv(), Pubcomp)


@pytest.fixture
def roost(tmp_path: Path) -> Iterator[Broker]:
    broker = Broker(tmp_path)
    broker.start()
    yield broker
    broker.stop()
