"""The load generator: one worker process runs many MQTT 3.1.1 connections of one role
(publishers, subscribers or idle connections) on one event loop.

A worker is driven by its parent over a multiprocessing pipe:
  parent -> ("go", t0, duration, interval)   start at monotonic time t0, sample every interval
  worker -> ("ran", {...})                   publishers: what they sent; subscribers: samples
  parent -> ("drain", expected, max_wait)    subscribers only: wait for stragglers
  worker -> ("done", {...})
  parent -> ("close",)                       disconnect everything and exit

Publishers write pre-encoded PUBLISH bytes in batches, as fast as TCP flow control lets them
(`flood`), or at a fixed total rate with a sequence number and a timestamp in the payload
(`rate`). Subscribers count PUBLISH packets by walking fixed headers only.
"""

from __future__ import annotations

import asyncio
import contextlib
import resource
import socket
import time
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from typing import Any, cast

from bench import wire

CONNECT_TIMEOUT = 20.0
PUB_HIGH_WATER = 64 * 1024
BATCH_BYTES = 8 * 1024


@dataclass(frozen=True, slots=True)
class Role:
    """What one worker process runs."""

    kind: str  # "pub", "sub" or "idle"
    host: str
    port: int
    client_prefix: str
    topics: tuple[str, ...]  # one per client: topic name (pub) or topic filter (sub)
    qos: int = 0
    payload: int = 64
    mode: str = "flood"  # publishers: "flood" or "rate"
    rate: float = 0.0  # total messages per second over all publishers, mode "rate"
    window: int = 32  # QoS 1 messages in flight per publisher, mode "flood"
    credit: int = 0  # QoS 0 flood: deliveries in flight end to end (0: TCP flow control only)
    fanout: int = 1  # deliveries per published message
    latency: bool = False  # subscribers: read timestamps from payloads
    idle_count: int = 0  # kind "idle": how many connections
    connect_concurrency: int = 200
    clean: bool = True  # False: persistent sessions (MQTT 3.1.1 clean session 0)


def raise_nofile() -> None:
    """Lift the soft file-descriptor limit to the hard one (for 10,000 connections)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


class Client(asyncio.Protocol):
    """Common part: CONNECT / CONNACK / SUBACK handshake and flow control flags."""

    def __init__(self) -> None:
        loop = asyncio.get_running_loop()
        self.transport: asyncio.Transport | None = None
        self.connack: asyncio.Future[int] = loop.create_future()
        self.suback: asyncio.Future[int] = loop.create_future()
        self.paused = False
        self.lost = False
        self.wake: asyncio.Event | None = None
        self.rest = b""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)
        sock = self.transport.get_extra_info("socket")
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost = True
        for fut in (self.connack, self.suback):
            if not fut.done():
                fut.set_exception(ConnectionError("connection lost"))
                fut.exception()  # retrieved here: nobody may be waiting any more
        if self.wake is not None:
            self.wake.set()

    def pause_writing(self) -> None:
        self.paused = True

    def resume_writing(self) -> None:
        self.paused = False
        if self.wake is not None:
            self.wake.set()

    def data_received(self, data: bytes) -> None:
        buf = self.rest + data if self.rest else data
        packets, used = wire.walk(buf)
        self.rest = buf[used:]
        for first, start, _ in packets:
            self.control(first, buf, start)

    def control(self, first: int, buf: bytes, start: int) -> None:
        kind = first >> 4
        if kind == wire.CONNACK and not self.connack.done():
            self.connack.set_result(buf[start + 3])
        elif kind == wire.SUBACK and not self.suback.done():
            self.suback.set_result(buf[start + 4])


class Subscriber(Client):
    """Counts PUBLISH packets; acknowledges QoS 1; optionally collects latencies."""

    def __init__(
        self, latency: bool, since_ns: list[int], latencies: list[int], shared: Any
    ) -> None:
        super().__init__()
        self.count = 0
        self.shared = shared
        self.latency = latency
        self.since_ns = since_ns  # [ns]: latencies of messages sent before are not kept
        self.latencies = latencies
        self.seqs: set[int] = set()

    def data_received(self, data: bytes) -> None:
        buf = self.rest + data if self.rest else data
        n = len(buf)
        i = 0
        count = 0
        acks: list[bytes] | None = None
        while i + 2 <= n:
            b1 = buf[i + 1]
            if b1 < 0x80:
                start = i + 2
                size = b1
            else:
                size = b1 & 0x7F
                mult = 128
                j = i + 2
                while j < n and j < i + 5:
                    b = buf[j]
                    size += (b & 0x7F) * mult
                    mult *= 128
                    j += 1
                    if b < 0x80:
                        break
                else:
                    break
                start = j
            end = start + size
            if end > n:
                break
            first = buf[i]
            if first >> 4 == wire.PUBLISH:
                count += 1
                pos = start + 2 + (buf[start] << 8 | buf[start + 1])
                if first & 0x06:
                    if acks is None:
                        acks = []
                    acks.append(b"\x40\x02" + buf[pos : pos + 2])
                    pos += 2
                if self.latency:
                    self.stamp(buf, pos)
            else:
                self.control(first, buf, i)
            i = end
        self.rest = buf[i:] if i < n else b""
        self.count += count
        if self.shared is not None:
            self.shared.value += count
        if acks and self.transport is not None:
            self.transport.write(b"".join(acks))

    def stamp(self, buf: bytes, pos: int) -> None:
        seq, ts = wire.unstamp(buf, pos)
        self.seqs.add(seq)
        if ts >= self.since_ns[0]:
            self.latencies.append(time.monotonic_ns() - ts)


class Publisher(Client):
    """Sends pre-encoded PUBLISH packets; counts PUBACKs."""

    def __init__(self, topic: str, qos: int, payload: int, window: int) -> None:
        super().__init__()
        self.qos = qos
        self.window = window
        self.sent = 0
        self.acked = 0
        self.inflight = 0
        self.running = False
        self.head, _ = wire.publish_parts(topic, payload, qos)
        self.body = bytes(payload)
        one = self.head + self.body
        self.one = one
        self.batch_n = max(1, BATCH_BYTES // len(one))
        self.batch = one * self.batch_n
        # QoS 1: a ring of packet ids, four windows long (a broker acknowledges in order).
        self.ring = [
            self.head + pid.to_bytes(2, "big") + self.body for pid in range(1, 4 * window + 1)
        ]
        self.next = 0
        self.payload = payload

    def data_received(self, data: bytes) -> None:
        buf = self.rest + data if self.rest else data
        n = len(buf)
        if n % 4 == 0 and buf.count(b"\x40\x02") == n // 4 and buf[0] == 0x40:
            acks = n // 4  # only PUBACKs: the common case, counted in C
            self.rest = b""
        else:
            packets, used = wire.walk(buf)
            self.rest = buf[used:]
            acks = 0
            for first, start, _ in packets:
                if first >> 4 == wire.PUBACK:
                    acks += 1
                else:
                    self.control(first, buf, start)
        if acks:
            self.acked += acks
            self.inflight -= acks
            if self.running:
                self.refill()

    def refill(self) -> None:
        """QoS 1 flood: top the window up."""
        room = self.window - self.inflight
        if room <= 0 or self.transport is None or self.lost:
            return
        ring = self.ring
        size = len(ring)
        k = self.next
        parts = []
        for _ in range(room):
            parts.append(ring[k])
            k = k + 1 if k + 1 < size else 0
        self.next = k
        self.transport.write(b"".join(parts))
        self.sent += room
        self.inflight += room

    def send_stamped(self, seq: int) -> None:
        """Rate mode: one PUBLISH whose payload carries `seq` and the send time."""
        if self.transport is None or self.lost:
            return
        body = wire.stamp(seq, time.monotonic_ns(), self.payload)
        pid = (seq % 65_535 + 1).to_bytes(2, "big") if self.qos else b""
        self.transport.write(self.head + pid + body)
        self.sent += 1


async def _open(role: Role, index: int, factory: Any, sem: asyncio.Semaphore) -> Client | None:
    loop = asyncio.get_running_loop()
    async with sem:
        try:
            _, proto = await asyncio.wait_for(
                loop.create_connection(factory, role.host, role.port), CONNECT_TIMEOUT
            )
            client: Client = proto
            assert client.transport is not None
            client.transport.write(wire.connect(f"{role.client_prefix}{index}", clean=role.clean))
            code = await asyncio.wait_for(client.connack, CONNECT_TIMEOUT)
            if code != 0:
                client.transport.close()
                return None
            if role.kind == "sub":
                client.transport.write(wire.subscribe(1, role.topics[index], role.qos))
                await asyncio.wait_for(client.suback, CONNECT_TIMEOUT)
            return client
        except (OSError, TimeoutError, ConnectionError):
            return None


async def open_clients(role: Role, factory_for: Any, count: int) -> tuple[list[Client], int]:
    """Connect `count` clients; returns the connected ones and the number that failed."""
    sem = asyncio.Semaphore(role.connect_concurrency)
    results = await asyncio.gather(*(_open(role, i, factory_for(i), sem) for i in range(count)))
    clients = [c for c in results if c is not None]
    return clients, count - len(clients)


class Credit:
    """End-to-end flow control for QoS 0 floods: deliveries sent but not yet counted by the
    subscribers (a counter they share with the publishers' process) stay under `limit`.
    Deliveries missing for STALL_SECONDS while the limit holds publishing back are written
    off as lost, so that a broker that drops messages does not stop the flood."""

    STALL_SECONDS = 0.25

    def __init__(self, shared: Any, limit: int, fanout: int) -> None:
        self.shared = shared
        self.limit = limit
        self.fanout = fanout
        self.written_off = 0
        self.last_seen = -1
        self.last_change = time.monotonic()

    def room(self, sent: int) -> int:
        """How many more messages the publishers may send now."""
        if self.shared is None or self.limit <= 0:
            return 1 << 40
        received = self.shared.value
        gap = sent * self.fanout - received - self.written_off
        if gap < self.limit:
            self.last_change = time.monotonic()
            self.last_seen = received
            return (self.limit - gap) // self.fanout
        now = time.monotonic()
        if received != self.last_seen:
            self.last_seen = received
            self.last_change = now
        elif now - self.last_change > self.STALL_SECONDS:
            self.written_off += gap
            self.last_change = now
        return 0


async def flood(pubs: list[Publisher], t_end: float, credit: Credit) -> None:
    """Write batches to every publisher that is not paused, until t_end."""
    wake = asyncio.Event()
    for p in pubs:
        p.wake = wake
        p.running = True
    if pubs and pubs[0].qos:
        for p in pubs:
            p.refill()
        await asyncio.sleep(max(0.0, t_end - time.monotonic()))
    else:
        sent = 0
        start = 0
        count = len(pubs)
        while time.monotonic() < t_end:
            room = credit.room(sent)
            wrote = False
            for k in range(count):
                if room <= 0:
                    break
                p = pubs[(start + k) % count]
                if p.paused or p.lost or p.transport is None:
                    continue
                n = min(p.batch_n, room)
                p.transport.write(p.batch if n == p.batch_n else p.one * n)
                p.sent += n
                sent += n
                room -= n
                wrote = True
            start = (start + 1) % count
            if wrote:
                await asyncio.sleep(0)
            elif room > 0:
                wake.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(wake.wait(), 0.05)
            else:
                await asyncio.sleep(0.001)
    for p in pubs:
        p.running = False


async def paced(pubs: list[Publisher], rate: float, t0: float, t_end: float) -> None:
    """Send `rate` messages per second in total, round robin over the publishers."""
    seq = 0
    while True:
        now = time.monotonic()
        if now >= t_end:
            return
        due = min(int((now - t0) * rate), seq + 10_000)
        while seq < due:
            pubs[seq % len(pubs)].send_stamped(seq)
            seq += 1
        # The next message is due in 1 / rate s; the loop's timers have 1 ms resolution.
        next_due = t0 + (seq + 1) / rate
        await asyncio.sleep(min(max(0.001, next_due - time.monotonic()), 0.01))


async def sampler(
    counter: Any, t0: float, t_end: float, interval: float, out: list[tuple[float, int, float]]
) -> None:
    """Record (time, count, own CPU seconds) at t0 + k * interval up to t_end."""
    k = 0
    steps = round((t_end - t0) / interval)
    while k <= steps:
        target = t0 + k * interval
        delay = target - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        out.append((time.monotonic(), counter(), time.process_time()))
        k += 1


async def _recv(conn: Connection) -> Any:
    return await asyncio.get_running_loop().run_in_executor(None, conn.recv)


async def _run(conn: Connection, role: Role, shared: Any) -> None:
    since_ns = [1 << 62]
    latencies: list[int] = []
    clients: list[Client] = []
    if role.kind == "idle":
        conn.send(("ready", {}))
        msg = await _recv(conn)
        if msg[0] == "go":
            started = time.monotonic()
            clients, failed = await open_clients(role, lambda i: Client, role.idle_count)
            conn.send(
                (
                    "done",
                    {
                        "connected": len(clients),
                        "failed": failed,
                        "seconds": time.monotonic() - started,
                    },
                )
            )
            msg = await _recv(conn)
        await _close(clients)
        return

    if role.kind == "sub":

        def make_sub(i: int) -> Any:
            return lambda: Subscriber(role.latency, since_ns, latencies, shared)

        clients, failed = await open_clients(role, make_sub, len(role.topics))
    else:

        def make_pub(i: int) -> Any:
            return lambda: Publisher(role.topics[i], role.qos, role.payload, role.window)

        clients, failed = await open_clients(role, make_pub, len(role.topics))
    conn.send(("ready", {"connected": len(clients), "failed": failed}))
    msg = await _recv(conn)
    if msg[0] != "go":
        await _close(clients)
        return
    _, t0, duration, interval, warmup = msg
    t_end = t0 + duration
    since_ns[0] = int((t0 + warmup) * 1e9)
    samples: list[tuple[float, int, float]] = []
    if role.kind == "sub":
        subs = [c for c in clients if isinstance(c, Subscriber)]

        def received() -> int:
            return sum(s.count for s in subs)

        await sampler(received, t0, t_end, interval, samples)
        conn.send(("ran", {"samples": samples}))
        msg = await _recv(conn)
        if msg[0] == "drain":
            await _drain(received, msg[1], msg[2])
        seqs = set().union(*(s.seqs for s in subs)) if role.latency else set()
        unique = len(seqs)
        conn.send(
            (
                "done",
                {
                    "received": received(),
                    "samples": samples,
                    "latencies_ns": latencies,
                    "unique_seqs": unique,
                    "lost_connections": sum(1 for s in subs if s.lost),
                },
            )
        )
    else:
        pubs = [c for c in clients if isinstance(c, Publisher)]

        def sent() -> int:
            return sum(p.sent for p in pubs)

        await asyncio.sleep(max(0.0, t0 - time.monotonic()))
        if role.mode == "flood":
            run = flood(pubs, t_end, Credit(shared, role.credit, role.fanout))
        else:
            run = paced(pubs, role.rate, t0, t_end)
        await asyncio.gather(run, sampler(sent, t0, t_end, interval, samples))
        if role.qos:
            await _drain(lambda: sum(p.acked for p in pubs), sent(), 3.0)
        conn.send(
            (
                "ran",
                {
                    "sent": sent(),
                    "acked": sum(p.acked for p in pubs),
                    "samples": samples,
                    "lost_connections": sum(1 for p in pubs if p.lost),
                },
            )
        )
    msg = await _recv(conn)
    await _close(clients)


async def _drain(count: Any, expected: int, max_wait: float) -> None:
    """Wait until count() reaches expected, stops moving for 0.5 s, or max_wait passes."""
    deadline = time.monotonic() + max_wait
    last = -1
    still_since = time.monotonic()
    while time.monotonic() < deadline:
        now_count = count()
        if now_count >= expected:
            return
        if now_count != last:
            last = now_count
            still_since = time.monotonic()
        elif time.monotonic() - still_since > 0.5:
            return
        await asyncio.sleep(0.05)


async def _close(clients: list[Client]) -> None:
    for c in clients:
        if c.transport is not None and not c.lost:
            with contextlib.suppress(Exception):
                c.transport.write(wire.disconnect())
                c.transport.close()
    await asyncio.sleep(0.2)


def worker(conn: Connection, role: Role, shared: Any = None) -> None:
    """Entry point of a worker process; `shared` is a multiprocessing RawValue counting
    deliveries, written by subscribers, read by publishers (Role.credit)."""
    raise_nofile()
    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass
    try:
        asyncio.run(_run(conn, role, shared))
    finally:
        conn.close()


@dataclass
class Samples:
    """Sampled counters of one worker: helpers to read a window out of them."""

    points: list[tuple[float, int, float]] = field(default_factory=list)

    def window(self, k0: int, k1: int) -> tuple[float, int, float]:
        """(seconds, count delta, CPU seconds) between sample k0 and sample k1."""
        a = self.points[min(k0, len(self.points) - 1)]
        b = self.points[min(k1, len(self.points) - 1)]
        return b[0] - a[0], b[1] - a[1], b[2] - a[2]
