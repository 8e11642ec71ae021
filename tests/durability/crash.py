"""Crash test: stream numbered QoS 1 and QoS 2 messages to persistent sessions while Roost
is killed with SIGKILL at random moments; then check that nothing acknowledged was lost
and that no QoS 2 message was delivered twice.

Run by `make test` with a few kills (tests/durability/test_crash.py); the long run is

    .venv/bin/python -m tests.durability.crash --kills 200

The publisher counts a message as acknowledged on PUBACK (QoS 1) or PUBREC (QoS 2). Two
subscribers with persistent sessions take everything: one stays connected (reconnecting
after each crash), one is offline until the end. Both are MQTT 5 clients of our own that
follow the receiver's side of the QoS 2 flow (a packet id is delivered once until PUBREL).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import random
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from roost.mqtt.codec import decode, encode, read_frame
from roost.mqtt.constants import ProtocolVersion
from roost.mqtt.packets import (
    Connack,
    Connect,
    Disconnect,
    Packet,
    Properties,
    Puback,
    Pubcomp,
    Publish,
    Pubrec,
    Pubrel,
    Suback,
    Subscribe,
    Subscription,
)

ROOT = Path(__file__).resolve().parents[2]
logging.getLogger("asyncio").setLevel(logging.ERROR)  # writes racing a killed broker
V5 = ProtocolVersion.V5
SESSION = Properties(session_expiry_interval=3600)
CONFIG = """
[mqtt]
max_queued_messages = 1000000
max_queued_bytes = 1073741824
max_inflight = 32
receive_maximum = 64

[store]
durability = "sync"
data_dir = "{data_dir}"
"""


class Broker:
    """`roost serve` as a real process."""

    def __init__(self, data_dir: Path, env: dict[str, str] | None = None) -> None:
        self.config = data_dir / "roost.toml"
        self.config.write_text(CONFIG.format(data_dir=data_dir))
        # Extra environment of the broker process (tests/durability/slowdisk.py).
        self.env = env or {}
        self.proc: subprocess.Popen[str] | None = None
        self.port = 0
        self.log = data_dir / "roost.log"

    def start(self) -> int:
        log = self.log.open("a")
        self.proc = subprocess.Popen(
            [
                sys.executable, "-m", "roost", "serve", "--config", str(self.config),
                "--host", "127.0.0.1", "--port", str(self.port),
            ],
            stderr=subprocess.PIPE,
            text=True,
            env={**os.environ, "PYTHONPATH": str(ROOT / "src"), **self.env},
        )  # fmt: skip
        assert self.proc.stderr is not None
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            line = self.proc.stderr.readline()
            log.write(line)
            match = re.search(r"mqtt over tcp on 127\.0\.0\.1:(\d+)", line)
            if match:
                self.port = int(match.group(1))
                log.close()
                self._drain_stderr()
                return self.port
            if not line and self.proc.poll() is not None:
                break
        log.close()
        raise RuntimeError(f"roost did not start; see {self.log}")

    def _drain_stderr(self) -> None:
        proc = self.proc
        assert proc is not None and proc.stderr is not None
        stream = proc.stderr

        def pump() -> None:
            with self.log.open("a") as out:
                for line in stream:
                    out.write(line)

        threading.Thread(target=pump, daemon=True).start()

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait()

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.kill()


class Link:
    """One MQTT 5 connection of a test client."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer
        self.buffer = bytearray()
        self.closed = False

    @classmethod
    async def open(cls, port: int, client_id: str, clean_start: bool) -> tuple[Link, Connack]:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        link = cls(reader, writer)
        link.send(
            Connect(
                protocol_version=V5,
                client_id=client_id,
                clean_start=clean_start,
                keep_alive=0,
                properties=SESSION,
            )
        )
        connack = await link.recv()
        if not isinstance(connack, Connack) or connack.reason_code != 0:
            raise ConnectionError(f"refused: {connack}")
        return link, connack

    def send(self, packet: Packet) -> None:
        if not self.closed:
            self.writer.write(encode(packet, V5))

    async def recv(self) -> Packet:
        while True:
            frame = read_frame(bytes(self.buffer), 1 << 28)
            if frame is not None:
                first, body, length = frame
                packet = decode(first, bytes(body), V5)
                del self.buffer[:length]
                return packet
            try:
                chunk = await self.reader.read(65536)
            except OSError:
                chunk = b""
            if not chunk:
                self.closed = True
                raise ConnectionError("closed")
            self.buffer += chunk

    def close(self) -> None:
        self.writer.close()


@dataclass
class Publisher:
    """Publishes numbered messages; remembers what was acknowledged."""

    client_id: str = "crash-pub"
    next_number: int = 1
    next_packet_id: int = 1
    # packet id -> (number, qos, PUBREL owed)
    pending: dict[int, tuple[int, int, bool]] = field(default_factory=dict)
    acknowledged: dict[int, int] = field(default_factory=dict)  # number -> qos
    window: int = 32
    started: bool = False
    # Alternate QoS 1 and 2; False: QoS 1 only (no PUBREC whose commit would cover the
    # PUBACKs behind it on the same connection).
    qos2: bool = True

    def _packet_id(self) -> int:
        while self.next_packet_id in self.pending:
            self.next_packet_id = self.next_packet_id % 65535 + 1
        packet_id = self.next_packet_id
        self.next_packet_id = packet_id % 65535 + 1
        return packet_id

    def _publish(self, link: Link, packet_id: int, number: int, qos: int, dup: bool) -> None:
        topic = f"crash/q{qos}"
        link.send(
            Publish(topic=topic, payload=b"%d" % number, qos=qos, packet_id=packet_id, dup=dup)
        )

    async def run(self, port: int, stop: asyncio.Event) -> None:
        link, _ = await Link.open(port, self.client_id, clean_start=not self.started)
        self.started = True
        try:
            # Resume: PUBLISH again (DUP) what was not acknowledged, PUBREL what is owed.
            for packet_id, (number, qos, rel) in list(self.pending.items()):
                if rel:
                    link.send(Pubrel(packet_id=packet_id))
                else:
                    self._publish(link, packet_id, number, qos, dup=True)
            reader = asyncio.create_task(self._read(link))
            while not stop.is_set() and not reader.done():
                while len(self.pending) < self.window and not stop.is_set():
                    number = self.next_number
                    self.next_number += 1
                    qos = 1 if number % 2 or not self.qos2 else 2
                    packet_id = self._packet_id()
                    self.pending[packet_id] = (number, qos, False)
                    self._publish(link, packet_id, number, qos, dup=False)
                await link.writer.drain()
                await asyncio.sleep(0.001)
            if not reader.done():
                await asyncio.wait_for(self._settle(reader), 10)
            reader.cancel()
            with contextlib.suppress(asyncio.CancelledError, ConnectionError, OSError):
                await reader
        finally:
            link.close()

    async def _settle(self, reader: asyncio.Task[None]) -> None:
        while self.pending and not reader.done():
            await asyncio.sleep(0.01)

    async def _read(self, link: Link) -> None:
        with contextlib.suppress(ConnectionError, OSError):
            while True:
                packet = await link.recv()
                if isinstance(packet, Puback):
                    entry = self.pending.pop(packet.packet_id, None)
                    if entry is not None and packet.reason_code < 0x80:
                        self.acknowledged[entry[0]] = 1
                elif isinstance(packet, Pubrec):
                    entry = self.pending.get(packet.packet_id)
                    if entry is not None and packet.reason_code < 0x80:
                        self.acknowledged[entry[0]] = 2
                        self.pending[packet.packet_id] = (entry[0], 2, True)
                        link.send(Pubrel(packet_id=packet.packet_id))
                    elif entry is not None:
                        del self.pending[packet.packet_id]
                elif isinstance(packet, Pubcomp):
                    self.pending.pop(packet.packet_id, None)


@dataclass
class Subscriber:
    """A persistent session receiving `crash/#`, QoS 2 deliveries de-duplicated by packet
    id until PUBREL as the receiver's side of the flow requires."""

    client_id: str
    received: dict[int, list[int]] = field(default_factory=lambda: {1: [], 2: []})
    awaiting_rel: set[int] = field(default_factory=set)
    subscribed: bool = False
    last_message: float = 0.0

    async def run(self, port: int, stop: asyncio.Event) -> None:
        link, _ = await Link.open(port, self.client_id, clean_start=not self.subscribed)
        try:
            if not self.subscribed:
                link.send(
                    Subscribe(
                        packet_id=1, subscriptions=(Subscription(topic_filter="crash/#", qos=2),)
                    )
                )
            reader = asyncio.create_task(self._read(link))
            while not stop.is_set() and not reader.done():
                await asyncio.sleep(0.01)
            reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await reader
        finally:
            link.close()

    async def _read(self, link: Link) -> None:
        with contextlib.suppress(ConnectionError, OSError):
            while True:
                packet = await link.recv()
                if isinstance(packet, Suback):
                    self.subscribed = True
                elif isinstance(packet, Publish):
                    self.last_message = time.monotonic()
                    number = int(packet.payload)
                    qos = int(packet.topic[-1])
                    assert packet.packet_id is not None
                    if packet.qos == 1:
                        self.received[qos].append(number)
                        link.send(Puback(packet_id=packet.packet_id))
                    else:
                        if packet.packet_id not in self.awaiting_rel:
                            self.received[qos].append(number)
                            self.awaiting_rel.add(packet.packet_id)
                        link.send(Pubrec(packet_id=packet.packet_id))
                elif isinstance(packet, Pubrel):
                    self.awaiting_rel.discard(packet.packet_id)
                    link.send(Pubcomp(packet_id=packet.packet_id))
                elif isinstance(packet, Disconnect):
                    return


@dataclass
class Result:
    kills: int
    published: int
    acknowledged: int
    lost: dict[str, list[int]]
    qos2_duplicates: dict[str, list[int]]
    qos1_duplicates: dict[str, int]
    seconds: float

    def summary(self) -> str:
        lost = sum(len(v) for v in self.lost.values())
        dups = sum(len(v) for v in self.qos2_duplicates.values())
        return (
            f"kills={self.kills} published={self.published} acknowledged={self.acknowledged} "
            f"lost={lost} qos2_duplicates={dups} "
            f"qos1_redeliveries={sum(self.qos1_duplicates.values())} seconds={self.seconds:.0f}"
        )


async def _round(
    broker: Broker, publisher: Publisher, online: Subscriber, seconds: float, crash: bool
) -> None:
    port = broker.start()
    stop = asyncio.Event()
    tasks = [
        asyncio.create_task(publisher.run(port, stop)),
        asyncio.create_task(online.run(port, stop)),
    ]
    await asyncio.sleep(seconds)
    if crash:
        broker.kill()
        await asyncio.sleep(0.05)
    stop.set()
    for task in tasks:
        with contextlib.suppress(ConnectionError, OSError, asyncio.TimeoutError):
            await task


async def _drain(broker: Broker, subscriber: Subscriber, quiet: float = 2.0) -> None:
    stop = asyncio.Event()
    subscriber.last_message = time.monotonic()
    task = asyncio.create_task(subscriber.run(broker.port, stop))
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and time.monotonic() - subscriber.last_message < quiet:
        await asyncio.sleep(0.1)
    stop.set()
    await task


async def run(
    kills: int,
    seed: int,
    data_dir: Path,
    min_s: float = 0.3,
    max_s: float = 1.5,
    env: dict[str, str] | None = None,
) -> Result:
    rng = random.Random(seed)
    started = time.monotonic()
    broker = Broker(data_dir, env)
    publisher = Publisher()
    online = Subscriber("crash-online")
    offline = Subscriber("crash-offline")
    port = broker.start()
    # Both subscribe before anything is published; the offline one then stays away.
    for subscriber in (online, offline):
        stop = asyncio.Event()
        task = asyncio.create_task(subscriber.run(port, stop))
        while not subscriber.subscribed:
            await asyncio.sleep(0.01)
        stop.set()
        await task
    broker.stop()
    try:
        for _ in range(kills):
            await _round(broker, publisher, online, rng.uniform(min_s, max_s), crash=True)
        # A last round without a crash lets the publisher finish its exchanges.
        await _round(broker, publisher, online, 0.5, crash=False)
        await _drain(broker, online)
        await _drain(broker, offline)
    finally:
        broker.stop()
    acked = publisher.acknowledged
    lost: dict[str, list[int]] = {}
    dups: dict[str, list[int]] = {}
    redelivered: dict[str, int] = {}
    for sub in (online, offline):
        got = set(sub.received[1]) | set(sub.received[2])
        lost[sub.client_id] = sorted(n for n in acked if n not in got)
        counts = Counter(sub.received[2])
        dups[sub.client_id] = sorted(n for n, c in counts.items() if c > 1)
        redelivered[sub.client_id] = len(sub.received[1]) - len(set(sub.received[1]))
    return Result(
        kills=kills,
        published=publisher.next_number - 1,
        acknowledged=len(acked),
        lost=lost,
        qos2_duplicates=dups,
        qos1_duplicates=redelivered,
        seconds=time.monotonic() - started,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kills", type=int, default=200)
    parser.add_argument("--seed", type=int, default=int(time.time()))
    parser.add_argument("--data-dir", type=Path, default=None)
    args = parser.parse_args()
    data_dir = args.data_dir or Path(tempfile.mkdtemp(prefix="roost-crash-"))
    print(f"seed={args.seed} data_dir={data_dir}", flush=True)
    result = asyncio.run(run(args.kills, args.seed, data_dir))
    print(result.summary())
    for name, numbers in result.lost.items():
        if numbers:
            print(f"LOST at {name}: {numbers[:50]}{' ...' if len(numbers) > 50 else ''}")
    for name, numbers in result.qos2_duplicates.items():
        if numbers:
            print(f"QoS 2 DUPLICATES at {name}: {numbers[:50]}")
    ok = not any(result.lost.values()) and not any(result.qos2_duplicates.values())
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
