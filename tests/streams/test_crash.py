"""kill -9 during consumption, on a slow disk: `roost serve` as a real process with a stream capturing
`crash/#`; numbered QoS 1 and QoS 2 messages published (tests/durability/crash.py's
publisher) while a roost.client consumer takes and acknowledges them; the broker is killed
with SIGKILL three times, the consumer crashes once (its unacknowledged messages come back
after ack_wait). Then: every message acknowledged to the device is in the stream and reached
the consumer; no message whose acknowledgement the consumer got back was delivered again."""

from __future__ import annotations

import asyncio
import contextlib
import random
import socket
import time
from pathlib import Path

import httpx
import pytest

from roost.client import RoostApiError, RoostClient
from tests.durability.crash import Broker, Publisher
from tests.durability.slowdisk import slow_disk_env

CONFIG = """
[mqtt]
max_queued_messages = 1000000

[store]
durability = "sync"
data_dir = "{data_dir}"

[api]
host = "127.0.0.1"
admin_key = "crash-key"

[[streams]]
name = "crash"
topics = ["crash/#"]
ack_wait = 1.0
max_deliver = 1000
"""


class StreamBroker(Broker):
    def __init__(self, data_dir: Path, env: dict[str, str]) -> None:
        super().__init__(data_dir, env)
        self.config.write_text(CONFIG.format(data_dir=data_dir))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def acknowledged(publisher: Publisher, qos1: Publisher) -> set[int]:
    """The numbers the broker acknowledged; the QoS 1 publisher's are offset by 10**6."""
    return set(publisher.acknowledged) | {QOS1_BASE + n for n in qos1.acknowledged}


QOS1_BASE = 1_000_000


class Backend:
    """A consumer of group "g" that acknowledges everything; records what it saw."""

    def __init__(self, client: RoostClient) -> None:
        self.client = client
        self.numbers: set[int] = set()
        self.acked: set[int] = set()
        self.after_ack: list[int] = []
        self.deliveries = 0
        self.abandoned = 0

    async def run(self, crash: bool = False) -> None:
        """Fetch batches, acknowledge each batch in one request; retry through restarts.
        `crash`: stop after the first batch without acknowledging it."""
        consumer = self.client.consumer("crash", "g", batch=500, wait=1.0)
        while True:
            try:
                batch = await consumer.fetch()
            except (httpx.TransportError, RoostApiError):
                await asyncio.sleep(0.1)
                continue
            for message in batch:
                self.deliveries += 1
                if message.seq in self.acked:
                    self.after_ack.append(message.seq)
                number = int(message.envelope.payload)
                if message.envelope.client_id == "crash-device-q1":
                    number += QOS1_BASE
                self.numbers.add(number)
            if not batch:
                continue
            if crash:
                self.abandoned = len(batch)
                return
            seqs = [m.seq for m in batch]
            with contextlib.suppress(httpx.TransportError, RoostApiError):
                await consumer.ack(seqs)  # retried through a restart
                self.acked.update(seqs)


@pytest.mark.timeout(180)
def test_kill_9_during_consumption_loses_nothing_acknowledged(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    api_port = free_port()
    monkeypatch.setenv("ROOST_API__PORT", str(api_port))
    rng = random.Random(20261122)
    # Every fsync 30 ms slower: the kills land inside commits, where a PUBACK sent before
    # the stream append is on disk would show up as a lost message.
    env = slow_disk_env(tmp_path, delay_ms=30)
    data_dir = tmp_path / "data"
    data_dir.mkdir()

    async def scenario() -> tuple[Publisher, Publisher, Backend]:
        broker = StreamBroker(data_dir, env)
        publisher = Publisher(client_id="crash-device")
        # QoS 1 alone on its own connection: its PUBACKs wait for the stream append only.
        qos1 = Publisher(client_id="crash-device-q1", qos2=False)
        port = broker.start()
        try:
            async with RoostClient(f"http://127.0.0.1:{api_port}", "crash-key") as client:
                backend = Backend(client)
                consuming = asyncio.create_task(backend.run())
                for kill in range(4):
                    stop = asyncio.Event()
                    publishing = asyncio.gather(
                        publisher.run(port, stop), qos1.run(port, stop), return_exceptions=True
                    )
                    await asyncio.sleep(rng.uniform(0.5, 1.2))
                    if kill == 1:  # the consumer crashes, another takes its place
                        consuming.cancel()
                        with contextlib.suppress(asyncio.CancelledError):
                            await consuming
                        await backend.run(crash=True)
                        consuming = asyncio.create_task(backend.run())
                    if kill < 3:
                        broker.kill()
                        await asyncio.sleep(0.05)
                    stop.set()
                    for result in await publishing:
                        # A publisher's connection dies with the broker; anything else fails.
                        if isinstance(result, BaseException) and not isinstance(
                            result, (ConnectionError, OSError, TimeoutError)
                        ):
                            raise result
                    if kill < 3:
                        port = broker.start()
                deadline = time.monotonic() + 60
                while time.monotonic() < deadline and not acknowledged(publisher, qos1) <= (
                    backend.numbers
                ):
                    await asyncio.sleep(0.1)
                await asyncio.sleep(1.5)  # anything acknowledged would show up again by now
                consuming.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await consuming
                return publisher, qos1, backend
        finally:
            broker.stop()

    publisher, qos1, backend = asyncio.run(scenario())
    acked_by_broker = acknowledged(publisher, qos1)
    print(
        f"published={publisher.next_number - 1}+{qos1.next_number - 1} "
        f"acknowledged={len(acked_by_broker)} "
        f"consumed={len(backend.numbers)} deliveries={backend.deliveries} "
        f"acked={len(backend.acked)} abandoned={backend.abandoned}"
    )
    assert len(acked_by_broker) > 100
    assert len(qos1.acknowledged) > 20
    assert sorted(acked_by_broker - backend.numbers) == []
    assert backend.after_ack == []
    # What the crashed consumer held came again (at-least-once), after ack_wait.
    assert backend.abandoned > 0
    assert backend.deliveries >= len(backend.numbers) + backend.abandoned
