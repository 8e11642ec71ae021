"""The benchmark cells and how one repetition of a cell runs against one broker.

The parent process starts worker processes (bench.loadgen.worker), tells them when to start,
samples the broker's CPU time and VmRSS from /proc at the same moments the workers sample
their counters, and turns the samples into metrics.
"""

from __future__ import annotations

import contextlib
import multiprocessing as mp
import statistics
import time
from dataclasses import dataclass, replace
from typing import Any

from bench.brokers import HOST, Broker
from bench.loadgen import Role, Samples, worker

START_DELAY = 0.3
JOIN_TIMEOUT = 10.0

# roost-w2 (two worker processes) runs in the throughput and idle-connection cells, when
# named in --brokers (it is in the default list).
MAIN = ("roost", "roost-w2", "mosquitto")
WITH_AMQTT = ("roost", "roost-w2", "mosquitto", "amqtt")
ONE_PROCESS = ("roost", "mosquitto")
OPT_IN = frozenset({"roost-w2"})
AMQTT_REF = ("roost", "amqtt")
DURABLE = ("roost-sync", "roost-memory", "mosquitto-persist")
AMQTT_IDLE = 1_000


@dataclass(frozen=True, slots=True)
class Cell:
    key: str
    title: str
    kind: str  # "throughput", "latency", "idle", "overload", "capacity", "durable"
    topology: str = "p2p"  # "p2p", "fanout", "fanin"
    pubs: int = 10
    subs: int = 10
    qos: int = 0
    payload: int = 64
    rate: float = 0.0
    idle: int = 0
    persistent: bool = False  # subscribers: clean session 0, fixed client ids
    brokers: tuple[str, ...] = MAIN  # bench.brokers.STARTERS names that run this cell


@dataclass(frozen=True, slots=True)
class Profile:
    name: str
    reps: int
    duration: float
    warmup: float
    interval: float
    latency_duration: float
    overload_duration: float
    idle_connections: int
    idle_reps: int


FULL = Profile("full", 3, 5.0, 1.0, 0.5, 6.0, 30.0, 10_000, 3)
QUICK = Profile("quick", 1, 2.0, 0.5, 0.5, 3.0, 8.0, 10_000, 1)


def cells(profile: Profile) -> list[Cell]:
    out: list[Cell] = []
    for qos in (0, 1):
        for payload in (64, 1024):
            size = "64 B" if payload == 64 else "1 KiB"
            out.append(
                Cell(
                    f"p2p-q{qos}-{payload}",
                    f"p2p 10->10, QoS {qos}, {size}",
                    "throughput",
                    qos=qos,
                    payload=payload,
                    # amqtt only where it finishes in bounded time: 64 B point-to-point.
                    brokers=WITH_AMQTT if payload == 64 else MAIN,
                )
            )
    for n in (100, 1000):
        out.append(
            Cell(f"fanout-{n}", f"fan-out 1->{n}, QoS 0, 64 B", "throughput", "fanout", 1, n)
        )
    for n in (100, 1000):
        out.append(
            Cell(f"fanin-{n}", f"fan-in {n}->1 (+), QoS 0, 64 B", "throughput", "fanin", n, 1)
        )
    for qos in (0, 1):
        out.append(
            Cell(
                f"latency-q{qos}",
                f"latency 1->1 at 1,000 msg/s, QoS {qos}, 64 B",
                "latency",
                pubs=1,
                subs=1,
                qos=qos,
                rate=1000.0,
                brokers=ONE_PROCESS,
            )
        )
    out.append(
        Cell(
            "idle",
            f"{profile.idle_connections:,} idle connections",
            "idle",
            pubs=0,
            subs=0,
            idle=profile.idle_connections,
        )
    )
    out.append(
        Cell(
            "idle-1k",
            f"{AMQTT_IDLE:,} idle connections (amqtt reference)",
            "idle",
            pubs=0,
            subs=0,
            idle=AMQTT_IDLE,
            brokers=AMQTT_REF,
        )
    )
    out.append(
        Cell(
            "durable-q1-64",
            "durable p2p 10->10, QoS 1, 64 B, persistent sessions",
            "durable",
            qos=1,
            persistent=True,
            brokers=DURABLE,
        )
    )
    out.append(
        Cell(
            "overload",
            f"overload: p2p 10->10 unthrottled {profile.overload_duration:.0f} s, QoS 0, 1 KiB",
            "overload",
            payload=1024,
            brokers=ONE_PROCESS,
        )
    )
    return out


def capacity_cells() -> list[Cell]:
    """The generator alone against bench.sink: how fast it can publish and receive."""
    return [
        Cell("cap-pub-q0", "generator publish, QoS 0, 64 B", "capacity", subs=0, qos=0),
        Cell("cap-pub-q1", "generator publish, QoS 1, 64 B", "capacity", subs=0, qos=1),
        Cell("cap-sub-q0", "generator receive, QoS 0, 64 B", "capacity", pubs=0, qos=0),
        Cell("cap-sub-q1", "generator receive, QoS 1, 64 B", "capacity", pubs=0, qos=1),
    ]


def topics(cell: Cell, tag: str) -> tuple[tuple[str, ...], tuple[str, ...], int]:
    """(publisher topic names, subscriber topic filters, deliveries per message); `tag`
    keeps each repetition on topics of its own, away from any backlog of the previous one."""
    if cell.topology == "fanout":
        return (f"bench/{tag}/fo",) * cell.pubs, (f"bench/{tag}/fo",) * cell.subs, cell.subs
    if cell.topology == "fanin":
        pubs = tuple(f"bench/{tag}/fi/{i}" for i in range(cell.pubs))
        return pubs, (f"bench/{tag}/fi/+",) * cell.subs, 1
    names = tuple(f"bench/{tag}/p2p/{i}" for i in range(max(cell.pubs, cell.subs)))
    return names[: cell.pubs], names[: cell.subs], 1


class Worker:
    """One load generator process and the parent's end of its pipe."""

    def __init__(self, role: Role, shared: Any = None) -> None:
        ctx = mp.get_context("spawn")
        self.conn, child = ctx.Pipe()
        self.proc = ctx.Process(target=worker, args=(child, role, shared), daemon=True)
        self.proc.start()
        child.close()

    def recv(self, timeout: float) -> Any:
        if not self.conn.poll(timeout):
            raise RuntimeError(f"load generator worker silent for {timeout:.0f} s")
        return self.conn.recv()

    def send(self, *msg: Any) -> None:
        self.conn.send(msg)

    def finish(self) -> None:
        with contextlib.suppress(OSError, BrokenPipeError):
            self.conn.send(("close",))
        self.proc.join(JOIN_TIMEOUT)
        if self.proc.is_alive():
            self.proc.kill()
            self.proc.join(JOIN_TIMEOUT)
        self.conn.close()


def _sleep_until(t: float) -> None:
    delay = t - time.monotonic()
    if delay > 0:
        time.sleep(delay)


def credit_for(cell: Cell, fanout: int) -> int:
    """End-to-end deliveries in flight for QoS 0 throughput cells (see loadgen.Credit):
    enough to keep a broker busy, well under both brokers' per-session queue limit."""
    if cell.kind != "throughput" or cell.qos or not cell.subs or not cell.pubs:
        return 0
    per_subscriber = 2_000 if cell.subs <= 10 else 200
    return max(per_subscriber * cell.subs, 2 * fanout)


def run_pubsub(
    broker: Broker, cell: Cell, duration: float, warmup: float, interval: float, tag: str
) -> dict[str, Any]:
    """One repetition of a publish/subscribe cell; returns its metrics."""
    pub_topics, sub_topics, fanout = topics(cell, tag)
    credit = credit_for(cell, fanout)
    base = Role(
        "sub",
        HOST,
        broker.port,
        # Persistent sessions keep fixed client ids (each run starts an empty broker).
        f"{cell.key}-sub-" if cell.persistent else f"{tag}s",
        sub_topics,
        qos=cell.qos,
        payload=cell.payload,
        latency=cell.kind == "latency",
        clean=not cell.persistent,
    )
    workers: list[Worker] = []
    shared = mp.get_context("spawn").RawValue("q", 0) if credit else None
    try:
        sub = pub = None
        connect_failures = 0
        if sub_topics:
            sub = Worker(base, shared)
            workers.append(sub)
            connect_failures += sub.recv(120)[1]["failed"]
        if pub_topics:
            mode = "rate" if cell.kind == "latency" else "flood"
            role = replace(
                base,
                kind="pub",
                client_prefix=f"{tag}p",
                topics=pub_topics,
                mode=mode,
                rate=cell.rate,
                latency=False,
                credit=credit,
                fanout=fanout,
                clean=True,
            )
            pub = Worker(role, shared)
            workers.append(pub)
            connect_failures += pub.recv(120)[1]["failed"]
        t0 = time.monotonic() + START_DELAY
        for w in workers:
            w.send("go", t0, duration, interval, warmup)
        steps = round(duration / interval)
        io = cell.kind == "durable"
        broker_samples: list[tuple[float, float, int, int]] = []
        for k in range(steps + 1):
            _sleep_until(t0 + k * interval)
            broker_samples.append(
                (
                    time.monotonic(),
                    broker.cpu_seconds(),
                    broker.rss_bytes(),
                    broker.write_bytes() if io else -1,
                )
            )
        grace = 60 + duration
        pub_ran = pub.recv(grace)[1] if pub else {"sent": 0, "acked": 0, "samples": []}
        sub_done: dict[str, Any] = {"received": 0, "samples": [], "latencies_ns": []}
        expected = pub_ran["sent"] * fanout
        if sub:
            sub.recv(grace)
            # A broker may still be working through what it read: wait for it to go idle
            # before the subscribers decide that nothing more is coming.
            settle(broker, 20.0)
            sub.send("drain", expected, 5.0 if expected else 0.0)
            sub_done = sub.recv(60)[1]
        result = _metrics(
            cell, warmup, interval, duration, broker_samples, pub_ran, sub_done, expected
        )
        result["connect_failures"] = connect_failures
        result["broker_alive"] = broker.alive()
        return result
    finally:
        for w in workers:
            w.finish()


def _metrics(
    cell: Cell,
    warmup: float,
    interval: float,
    duration: float,
    broker_samples: list[tuple[float, float, int, int]],
    pub_ran: dict[str, Any],
    sub_done: dict[str, Any],
    expected: int,
) -> dict[str, Any]:
    k0 = round(warmup / interval)
    k1 = round(duration / interval)
    out: dict[str, Any] = {}
    delivered = 0
    if sub_done["samples"]:
        dt, delivered, cpu = Samples(sub_done["samples"]).window(k0, k1)
        out["delivered_per_s"] = delivered / dt
        out["gen_sub_cpu"] = cpu / dt
    if pub_ran["samples"]:
        dt, sent, cpu = Samples(pub_ran["samples"]).window(k0, k1)
        out["published_per_s"] = sent / dt
        out["gen_pub_cpu"] = cpu / dt
    b0 = broker_samples[min(k0, len(broker_samples) - 1)]
    b1 = broker_samples[min(k1, len(broker_samples) - 1)]
    broker_cpu = b1[1] - b0[1]
    out["broker_cpu"] = broker_cpu / (b1[0] - b0[0]) if b1[0] > b0[0] else 0.0
    if delivered and broker_cpu > 0:
        out["msgs_per_broker_cpu_s"] = delivered / broker_cpu
    elif pub_ran["samples"] and broker_cpu > 0:
        out["msgs_per_broker_cpu_s"] = out["published_per_s"] * (b1[0] - b0[0]) / broker_cpu
    out["broker_rss_max"] = max(s[2] for s in broker_samples)
    if delivered and b0[3] >= 0 and b1[3] >= 0:
        out["disk_bytes_per_msg"] = (b1[3] - b0[3]) / delivered
    out["sent"] = pub_ran["sent"]
    out["acked"] = pub_ran.get("acked", 0)
    out["expected"] = expected
    out["received"] = sub_done["received"]
    if expected:
        out["loss"] = max(0.0, 1.0 - sub_done["received"] / expected)
    if cell.kind == "latency":
        lat = sorted(sub_done["latencies_ns"])
        if lat:
            out["latency_ms"] = {
                "p50": _pct(lat, 0.50) / 1e6,
                "p99": _pct(lat, 0.99) / 1e6,
                "max": lat[-1] / 1e6,
                "count": len(lat),
            }
        if expected:
            out["loss"] = max(0.0, 1.0 - sub_done.get("unique_seqs", 0) / expected)
            out["duplicates"] = sub_done["received"] - sub_done.get("unique_seqs", 0)
    if cell.kind == "overload":
        out["series"] = _series(sub_done["samples"], broker_samples, interval)
    return out


def _pct(sorted_values: list[int], q: float) -> float:
    idx = min(len(sorted_values) - 1, max(0, round(q * (len(sorted_values) - 1))))
    return float(sorted_values[idx])


def _series(
    sub_samples: list[tuple[float, int, float]],
    broker_samples: list[tuple[float, float, int, int]],
    interval: float,
) -> list[dict[str, float]]:
    """Per-second delivered rate and broker VmRSS."""
    per = max(1, round(1.0 / interval))
    out: list[dict[str, float]] = []
    for k in range(per, min(len(sub_samples), len(broker_samples)), per):
        a, b = sub_samples[k - per], sub_samples[k]
        out.append(
            {
                "t": round(b[0] - sub_samples[0][0], 2),
                "delivered_per_s": (b[1] - a[1]) / (b[0] - a[0]),
                "broker_rss": float(broker_samples[k][2]),
                "broker_cpu": (broker_samples[k][1] - broker_samples[k - per][1])
                / (broker_samples[k][0] - broker_samples[k - per][0]),
            }
        )
    return out


def run_idle(broker: Broker, cell: Cell, tag: str) -> dict[str, Any]:
    """Open cell.idle connections; broker memory per connection and connect cost."""
    role = Role("idle", HOST, broker.port, f"{tag}i", (), idle_count=cell.idle)
    w = Worker(role)
    try:
        w.recv(60)
        time.sleep(0.5)
        rss0, cpu0 = broker.rss_bytes(), broker.cpu_seconds()
        w.send("go")
        done = w.recv(300)[1]
        cpu1 = broker.cpu_seconds()
        time.sleep(1.0)
        rss1 = broker.rss_bytes()
        connected = done["connected"]
        out: dict[str, Any] = {
            "connected": connected,
            "failed": done["failed"],
            "connect_seconds": done["seconds"],
            "connects_per_s": connected / done["seconds"] if done["seconds"] else 0.0,
            "broker_rss_before": rss0,
            "broker_rss_after": rss1,
            "broker_alive": broker.alive(),
        }
        if connected:
            out["bytes_per_connection"] = (rss1 - rss0) / connected
        if cpu1 > cpu0:
            out["connects_per_broker_cpu_s"] = connected / (cpu1 - cpu0)
        return out
    finally:
        w.finish()


def settle(broker: Broker, max_wait: float = 15.0) -> None:
    """Wait until the broker is idle (under 5% of a core for 0.2 s): a backlog left by the
    previous repetition must not cost the next one."""
    deadline = time.monotonic() + max_wait
    while time.monotonic() < deadline and broker.alive():
        before = broker.cpu_seconds()
        time.sleep(0.2)
        if broker.cpu_seconds() - before < 0.01:
            return


def median_of(reps: list[dict[str, Any]]) -> dict[str, Any]:
    """The median of every numeric metric over repetitions (nested dicts too)."""
    if not reps:
        return {}
    out: dict[str, Any] = {}
    for key, first in reps[0].items():
        values = [r[key] for r in reps if key in r]
        if isinstance(first, bool):
            out[key] = all(values)
        elif isinstance(first, int | float):
            out[key] = statistics.median(values)
        elif isinstance(first, dict):
            out[key] = median_of(values)
        else:
            out[key] = first
    return out
