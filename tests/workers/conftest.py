"""`roost serve --workers 2` as a real process on a fixed free port, and paho or raw clients
placed on a chosen worker (each worker publishes `$SYS/broker/worker`: its index, pid)."""

from __future__ import annotations

import os
import re
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from paho.mqtt.packettypes import PacketTypes

from roost.mqtt.constants import ProtocolVersion
from roost.mqtt.packets import (
    Packet,
    Publish,
    Suback,
    Subscribe,
    Subscription,
    Unsuback,
    Unsubscribe,
)
from tests.integration.helpers import TIMEOUT, V5, Client, props
from tests.rawclient import RawClient

ROOT = Path(__file__).resolve().parents[2]
WHERE = "$SYS/broker/worker"
CONFIG = """
[[listeners]]
name = "default"
host = "127.0.0.1"
port = 1883

[mqtt]
sys_interval = 1.0
{mqtt}

[store]
durability = "{durability}"
data_dir = "{data_dir}"
{extra}
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Workers:
    """The broker process (the supervisor) and its log."""

    data_dir: Path
    durability: str = "memory"
    mqtt: str = ""  # more lines of the [mqtt] table
    extra: str = ""  # more tables
    env: dict[str, str] = field(default_factory=dict)  # more environment variables
    host: str = "127.0.0.1"
    port: int = 0
    proc: subprocess.Popen[bytes] | None = None
    log: Path = field(init=False)

    def __post_init__(self) -> None:
        self.log = self.data_dir / "roost.log"

    def start(self) -> None:
        config = self.data_dir / "roost.toml"
        config.write_text(
            CONFIG.format(
                data_dir=self.data_dir, durability=self.durability, mqtt=self.mqtt, extra=self.extra
            )
        )
        self.port = self.port or free_port()
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(
                [
                    sys.executable, "-m", "roost", "serve", "--config", str(config),
                    "--host", "127.0.0.1", "--port", str(self.port), "--workers", "2",
                ],
                stderr=out,
                env={**os.environ, **self.env, "PYTHONPATH": str(ROOT / "src")},
            )  # fmt: skip
        self.wait_log(r"worker 0: linked to worker 1", 1)
        self.wait_log(r"worker 1: linked to worker 0", 1)
        self.wait_log(r"listener default: mqtt over tcp", 2)  # opened once linked

    def text(self) -> str:
        return self.log.read_text(errors="replace")

    def wait_log(self, pattern: str, count: int, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if len(re.findall(pattern, self.text())) >= count:
                return
            assert self.proc is not None and self.proc.poll() is None, self.text()
            time.sleep(0.05)
        raise AssertionError(f"no {pattern!r} in the log:\n{self.text()}")

    def stop(self) -> int:
        assert self.proc is not None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout=20)

    def synced(self, sub: Client, pub: Client) -> None:
        """Return once `sub`'s subscriptions so far are known to `pub`'s worker: the bus
        keeps order, so a probe subscription made after them reaching `pub` shows it."""
        topic = f"sync/{sub.client_id}"
        sub.subscribe(topic)
        deadline = time.monotonic() + 10
        seen = False
        while not seen and time.monotonic() < deadline:
            pub.publish(topic, b"probe")
            time.sleep(0.02)
            seen = any(m.topic == topic for m in list(sub.messages.queue))
        assert seen, "subscription never reached the other worker"
        sub.unsubscribe(topic)
        kept = [m for m in list(sub.messages.queue) if m.topic != topic]
        with sub.messages.mutex:
            sub.messages.queue.clear()
        for message in kept:
            sub.messages.put(message)

    def across(self, topic: str, qos: int = 1) -> tuple[Client, Client]:
        """(subscriber on worker 1 subscribed to `topic`, publisher on worker 0), once the
        subscription is known to worker 0."""
        sub = self.connect_on(1)
        pub = self.connect_on(0)
        sub.subscribe(topic, qos)
        self.synced(sub, pub)
        return sub, pub

    def worker_of(self, client: Client) -> tuple[int, int]:
        """(index, pid) of the worker `client` is connected to."""
        client.subscribe(WHERE)
        message = client.expect_message()
        index, pid = message.payload.decode().split()
        client.unsubscribe(WHERE)
        # A later $SYS round queued before the UNSUBSCRIBE may be flushed after the first
        # barrier's PUBACK; it is sent before the second's.
        client.barrier()
        client.barrier()
        while not client.messages.empty():
            client.messages.get()
        return int(index), int(pid)

    def connect_on(
        self,
        worker: int,
        client_id: str = "",
        clean_start: bool = True,
        version: int = V5,
        **kwargs: object,
    ) -> Client:
        """A connected client (v5 unless `version` says otherwise) on the given worker
        (connecting until the kernel picks it)."""
        for _ in range(60):
            client = Client(self, client_id, version)  # type: ignore[arg-type]
            client.connect(clean_start=clean_start, **kwargs)  # type: ignore[arg-type]
            if self.worker_of(client)[0] == worker:
                return client
            client.disconnect()
        raise AssertionError(f"could not reach worker {worker}")

    def raw_on(
        self, worker: int, client_id: str, version: ProtocolVersion = ProtocolVersion.V5
    ) -> tuple[RawClient, int]:
        """A connected raw client on the given worker (connecting until the kernel picks
        it), and the worker's pid."""
        for _ in range(60):
            client = RawClient(self.host, self.port, version, timeout=TIMEOUT)
            client.connect(client_id)
            index, pid, _ = raw_worker_of(client)
            if index == worker:
                return client, pid
            client.close()
        raise AssertionError(f"could not reach worker {worker}")


def raw_worker_of(client: RawClient) -> tuple[int, int, list[Packet]]:
    """(index, pid) of the worker a connected raw client is on, and what else the broker
    sent it until the answer (e.g. the exchanges resent after CONNACK [MQTT-4.4.0-1]).
    Uses packet ids 60000 and 60001 (the subscription ends before it returns)."""
    client.send(Subscribe(packet_id=60_000, subscriptions=(Subscription(topic_filter=WHERE),)))
    before: list[Packet] = []
    while not isinstance(packet := client.recv(), Suback):
        before.append(packet)
    while not (isinstance(packet := client.recv(), Publish) and packet.topic == WHERE):
        before.append(packet)
    index, pid = packet.payload.split()
    client.send(Unsubscribe(packet_id=60_001, topic_filters=(WHERE,)))
    while not isinstance(packet := client.recv(), Unsuback):
        assert isinstance(packet, Publish) and packet.topic == WHERE, packet
    return int(index), int(pid), before


def leave_subscribed(broker: Workers, client_id: str, topic: str, expiry: int) -> int:
    """A v5 session (Session Expiry Interval `expiry`) subscribed to `topic` at QoS 1 and
    left without its client, on whichever worker the connection landed: that worker."""
    holder = Client(broker, client_id)  # type: ignore[arg-type]
    holder.connect(
        clean_start=True, properties=props(PacketTypes.CONNECT, SessionExpiryInterval=expiry)
    )
    worker = broker.worker_of(holder)[0]
    holder.subscribe(topic, 1)
    holder.disconnect()
    return worker


def stored_sessions(root: Path, client_id: str) -> dict[int, int]:
    """How many stored sessions each worker's database (under `root`) has for `client_id`."""
    stored = {}
    for index in (0, 1):
        with sqlite3.connect(root / f"worker-{index}" / "roost.db") as db:
            stored[index] = db.execute(
                "SELECT count(*) FROM sessions WHERE client_id = ?", (client_id,)
            ).fetchone()[0]
    return stored


@pytest.fixture(scope="module")
def workers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Workers]:
    broker = Workers(tmp_path_factory.mktemp("workers"))
    broker.start()
    yield broker
    assert broker.stop() == 0, broker.text()
