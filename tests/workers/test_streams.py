"""Streams with `roost serve --workers 2` (docs/workers.md, docs/streams.md): worker 0 runs
them, the other worker sends it what it captures and holds the device's acknowledgement
until the append is committed there."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import time
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import TypeVar

import pytest

from roost.client.streams import RoostClient
from roost.streams.model import Envelope
from tests.durability.slowdisk import slow_disk_env
from tests.integration.helpers import V311, Client
from tests.workers.conftest import Workers, free_port

KEY = "workers-streams-key"
API = """
[api]
host = "127.0.0.1"
port = {port}
admin_key = "{key}"
"""
NO_MATCHING_SUBSCRIBERS = 0x10
T = TypeVar("T")


class Api:
    """The box's API through the Python client (roost.client.streams.RoostClient), one
    event loop per call, for these synchronous tests."""

    def __init__(self, port: int) -> None:
        self.url = f"http://127.0.0.1:{port}"

    def run(self, call: Callable[[RoostClient], Awaitable[T]]) -> T:
        async def with_client() -> T:
            async with RoostClient(self.url, KEY, retry_for=30) as client:
                return await call(client)

        return asyncio.run(with_client())

    def wait_up(self) -> None:
        """Once the API answers (the client retries while it cannot connect)."""
        self.run(lambda client: client.request("GET", "/tenants/default/streams"))

    def declare(self, name: str, filters: list[str]) -> None:
        self.run(lambda client: client.declare_stream(name, filters))

    def delete(self, name: str) -> None:
        self.run(lambda client: client.delete_stream(name))

    def fetch_all(self, name: str, group: str = "g") -> list[Envelope]:
        """Every message of the stream, in stream order (acknowledged as fetched)."""

        async def fetch(client: RoostClient) -> list[Envelope]:
            consumer = client.consumer(name, group, batch=500, wait=0)
            got: list[Envelope] = []
            while batch := await consumer.fetch():
                got.extend(m.envelope for m in batch)
                assert await consumer.ack([m.seq for m in batch]) == len(batch)
            return got

        return self.run(fetch)


def payloads(messages: list[Envelope], topic_prefix: str) -> list[bytes]:
    return [m.payload for m in messages if m.topic.startswith(topic_prefix)]


def start(
    tmp_path: Path, durability: str = "memory", env: dict[str, str] | None = None
) -> tuple[Workers, Api]:
    port = free_port()
    broker = Workers(
        tmp_path,
        durability=durability,
        extra=API.format(port=port, key=KEY),
        # tests/conftest.py sets ROOST_API__PORT to 0
        env={**(env or {}), "ROOST_API__PORT": str(port)},
    )
    broker.start()
    api = Api(port)
    api.wait_up()
    return broker, api


def wait_declared_on(client: Client, topic: str, declared: bool = True) -> None:
    """Poll until `client`'s worker knows whether a stream captures `topic`: a v5 PUBACK
    counts the streams capturing a message as matches [MQTT-3.4.2-1] (0x10 otherwise)."""
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        code = client.publish(topic, b"probe", 1)
        if (code != NO_MATCHING_SUBSCRIBERS) == declared:
            return
        time.sleep(0.02)
    raise AssertionError(f"the worker never saw the stream {'declared' if declared else 'gone'}")


@pytest.fixture(scope="module")
def box(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Workers, Api]]:
    broker, api = start(tmp_path_factory.mktemp("wstreams"))
    yield broker, api
    assert broker.stop() == 0, broker.text()


def test_stream_captures_publications_of_both_workers_in_order(box: tuple[Workers, Api]) -> None:
    """A stream declared through the API (worker 0) captures what devices publish on
    either worker, QoS 0, 1 and 2, in order per publisher (v5; 3.1.1: the next test)."""
    broker, api = box
    api.declare("both", ["both/#"])
    pubs = [broker.connect_on(0), broker.connect_on(1)]
    for pub in pubs:
        wait_declared_on(pub, "both/probe")
    for qos in (0, 1, 2):
        for i, pub in enumerate(pubs):
            for n in range(20):
                pub.publish(f"both/w{i}/q{qos}", f"{n}".encode(), qos)
    for i, pub in enumerate(pubs):
        # Acknowledged once captured on worker 0: the QoS 0 ones ahead of it were too (one
        # link, in order).
        pub.publish(f"both/w{i}/end", b"", 1)
    got = api.fetch_all("both")
    for i in range(2):
        for qos in (0, 1, 2):
            assert payloads(got, f"both/w{i}/q{qos}") == [f"{n}".encode() for n in range(20)]
    for pub in pubs:
        pub.disconnect()


def test_v311_publisher_on_worker_1_is_captured(box: tuple[Workers, Api]) -> None:
    """A 3.1.1 device on the other worker: its QoS 1 messages are in the stream once
    acknowledged [MQTT-4.3.2-2]."""
    broker, api = box
    api.declare("old", ["old/#"])
    probe = broker.connect_on(1)
    wait_declared_on(probe, "old/probe")
    client = broker.connect_on(1, version=V311)
    for n in range(10):
        client.publish("old/t", f"{n}".encode(), 1)
    assert payloads(api.fetch_all("old"), "old/t") == [f"{n}".encode() for n in range(10)]
    client.disconnect()
    probe.disconnect()


def test_declare_and_delete_reach_the_other_worker(box: tuple[Workers, Api]) -> None:
    """The other worker hears of a declared stream and of its deletion; once deleted it
    sends nothing more (and a v5 PUBACK says no matching subscribers again)."""
    broker, api = box
    pub = broker.connect_on(1)
    assert pub.publish("prop/t", b"before", 1) == NO_MATCHING_SUBSCRIBERS
    api.declare("prop", ["prop/#"])
    wait_declared_on(pub, "prop/probe")
    assert pub.publish("prop/t", b"during", 1) == 0
    assert payloads(api.fetch_all("prop"), "prop/t") == [b"during"]
    api.delete("prop")
    wait_declared_on(pub, "prop/probe", declared=False)
    api.declare("prop", ["other/#"])  # same name, other topics
    wait_declared_on(pub, "other/probe")
    assert pub.publish("prop/t", b"after", 1) == NO_MATCHING_SUBSCRIBERS
    assert payloads(api.fetch_all("prop"), "prop/t") == []
    pub.disconnect()


def test_acknowledged_messages_survive_kill_9_of_the_box(tmp_path: Path) -> None:
    """Durable mode: every QoS 1/2 message a device on either worker got PUBACK / PUBCOMP
    for is in the stream after the whole box is killed with SIGKILL and started again
    [MQTT-4.3.2-2]: the acknowledgement waits for worker 0's committed append. The disk
    is slow (every fsync 30 ms longer), so that the kill lands while appends wait for
    their commit: a worker acknowledging before worker 0 committed would lose messages."""
    broker, api = start(tmp_path, durability="sync", env=slow_disk_env(tmp_path, delay_ms=30))
    try:
        api.declare("crash", ["crash/#"])
        pubs = [broker.connect_on(0), broker.connect_on(1)]
        for pub in pubs:
            wait_declared_on(pub, "crash/probe")
        pids = [broker.worker_of(pub)[1] for pub in pubs]
        acknowledged: list[list[bytes]] = [[], []]
        for n in range(30):
            for i, pub in enumerate(pubs):
                payload = f"{n}".encode()
                pub.publish(f"crash/w{i}", payload, 1 + n % 2)
                acknowledged[i].append(payload)
        assert broker.proc is not None
        # The supervisor first, so that it cannot restart a worker killed before it.
        os.kill(broker.proc.pid, signal.SIGKILL)
        broker.proc.wait()
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        for pub in pubs:
            pub.close()
        broker.log.rename(tmp_path / "roost-killed.log")
        broker.start()
        api.wait_up()
        got = api.fetch_all("crash")
        for i in range(2):
            assert payloads(got, f"crash/w{i}") == acknowledged[i]
    finally:
        broker.stop()


def test_capture_not_confirmed_is_never_acknowledged_as_a_success(tmp_path: Path) -> None:
    """Worker 0 stops answering, then dies: a v5 device on the other worker gets PUBACK
    0x80 Unspecified error for the message it was waiting on [MQTT-3.4.2-1]; a 3.1.1 device
    (no error code in its PUBACK) loses its connection unacknowledged, so that it sends
    the message again [MQTT-4.4.0-1]. Worker 0 comes back (memory durability: without its
    streams) and the other worker learns that nothing is captured any more."""
    broker, api = start(tmp_path)
    try:
        api.declare("lost", ["lost/#"])
        holder = broker.connect_on(0)
        _, pid = broker.worker_of(holder)
        v5 = broker.connect_on(1)
        wait_declared_on(v5, "lost/probe")
        v3 = broker.connect_on(1, version=V311)
        # Worker 1 routes a PUBLISH to its local subscribers, then sends the capture to
        # worker 0 in the same step: the watcher receiving both shows they were read.
        watcher = broker.connect_on(1)
        watcher.subscribe("lost/t", 1)
        os.kill(pid, signal.SIGSTOP)
        try:
            waiting_v5 = v5.paho.publish("lost/t", b"v5", 1)
            waiting_v3 = v3.paho.publish("lost/t", b"v3", 1)
            assert sorted(m.payload for m in watcher.expect_messages(2)) == [b"v3", b"v5"]
        finally:
            os.kill(pid, signal.SIGKILL)
        watcher.disconnect()  # "lost/t" matches nothing on worker 1 again
        code, _ = v5.wait_ack(waiting_v5.mid)
        assert code == 0x80
        v3.expect_disconnect()  # raises while still connected
        assert not v3.acknowledged(waiting_v3.mid)
        broker.wait_log(rf"worker 0 \(pid {pid}\) exited", 1)
        broker.wait_log(r"worker 1: linked to worker 0", 2)
        wait_declared_on(v5, "lost/t", declared=False)
        v5.disconnect()
        v3.close()
        holder.close()
    finally:
        broker.stop()
