"""`python -m bench.run [--quick]`: measure the load generator, then run every cell against
its brokers (Roost and mosquitto; amqtt too in the 64 B point-to-point cells and the 1,000
idle connections; Roost sync / Roost memory / mosquitto with persistence in the durable
cells), one broker after the other, each on a fresh free loopback port; print the table and
write bench/results/<profile>.json and .md.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

from bench import brokers, cells, report
from bench.cells import Cell, Profile

ROOT = Path(__file__).resolve().parents[1]


DEFAULT_BROKERS = "roost,roost-w2,mosquitto,amqtt"


def machine() -> dict[str, Any]:
    cpu = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = 0.0
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                mem = int(line.split()[1]) / 2**20
    except OSError:
        pass
    try:
        import uvloop

        uv = uvloop.__version__
    except ImportError:
        uv = "not installed"
    try:
        commit = subprocess.run(
            ["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            timeout=10,
        ).stdout.strip()
    except (OSError, subprocess.TimeoutExpired):
        commit = "unknown"
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "memory_gib": mem,
        "kernel": f"Linux {platform.release()}",
        "python": platform.python_version(),
        "uvloop": uv,
        "mosquitto": brokers.mosquitto_version(),
        "amqtt": brokers.amqtt_version(),
        "data_fs": data_filesystem(Path(tempfile.gettempdir())),
        "fsync_ms": fsync_probe(Path(tempfile.gettempdir())),
        "roost_commit": commit or "unknown",
    }


def fsync_probe(path: Path, count: int = 20) -> float:
    """Median time of a 4 KiB write + fsync in `path` (ms): what one store commit costs
    at least on this disk."""
    times: list[float] = []
    try:
        with tempfile.NamedTemporaryFile(dir=path, prefix="roost-bench-fsync-") as fh:
            for _ in range(count):
                started = time.perf_counter()
                fh.write(b"\0" * 4096)
                fh.flush()
                os.fsync(fh.fileno())
                times.append(time.perf_counter() - started)
    except OSError:
        return -1.0
    return 1000 * statistics.median(times)


def data_filesystem(path: Path) -> str:
    """The file system the durable cells' data directories live on (tmpfs would make an
    fsync free, and the durable figures meaningless)."""
    best, fstype = "", "unknown"
    try:
        for line in Path("/proc/mounts").read_text().splitlines():
            parts = line.split()
            if len(parts) >= 3 and str(path).startswith(parts[1]) and len(parts[1]) > len(best):
                best, fstype = parts[1], parts[2]
    except OSError:
        pass
    return f"{fstype} ({path})"


def run_cell(broker: brokers.Broker, cell: Cell, profile: Profile, rep: int) -> dict[str, Any]:
    tag = f"{cell.key.replace('-', '')}r{rep}"
    cells.settle(broker)
    if cell.kind == "latency":
        return cells.run_pubsub(
            broker, cell, profile.latency_duration, profile.warmup, profile.interval, tag
        )
    if cell.kind == "overload":
        return cells.run_pubsub(broker, cell, profile.overload_duration, 2.0, 0.5, tag)
    # "throughput" and "durable"
    return cells.run_pubsub(broker, cell, profile.duration, profile.warmup, profile.interval, tag)


def summary_line(name: str, cell: Cell, m: dict[str, Any]) -> str:
    if cell.kind == "idle":
        per = m.get("bytes_per_connection", 0) / 1024
        return (
            f"  {name:9s} {m.get('connected', 0)} connected, {per:.2f} KiB/conn, "
            f"{m.get('connects_per_broker_cpu_s', 0):,.0f} connects/CPU-s"
        )
    text = (
        f"  {name:9s} {m.get('delivered_per_s', 0):>10,.0f} msg/s  "
        f"loss {100 * m.get('loss', 0):6.2f}%  "
        f"{m.get('msgs_per_broker_cpu_s', 0):>10,.0f} msg/CPU-s  "
        f"broker {m.get('broker_cpu', 0):.2f} gen {m.get('gen_pub_cpu', 0):.2f}/"
        f"{m.get('gen_sub_cpu', 0):.2f} cores"
    )
    lat = m.get("latency_ms")
    if lat:
        text += f"  p50 {lat['p50']:.3f} p99 {lat['p99']:.3f} max {lat['max']:.3f} ms"
    if m.get("store_commits"):
        text += f"  {m.get('acked_per_commit', 0):,.1f} acks/commit"
    return text


def capacity(workdir: Path, profile: Profile) -> dict[str, Any]:
    """The generator against bench.sink: the rates it can sustain by itself."""
    print("load generator capacity (against bench.sink):", flush=True)
    out: dict[str, Any] = {}
    sink = brokers.start_sink(workdir, 64)
    try:
        for cell in cells.capacity_cells():
            # On a busy machine the receiving worker can start sampling late, all its samples
            # then fall in one instant and the window counts nothing: measure once more.
            for attempt in range(2):
                m = cells.run_pubsub(
                    sink, cell, profile.duration, profile.warmup, profile.interval, cell.key
                )
                if m.get("published_per_s") or m.get("delivered_per_s"):
                    break
                print(f"  {cell.title}: nothing counted in the window (attempt {attempt + 1})")
            out[cell.key] = {"title": cell.title, "median": m}
            rate = m.get("published_per_s") or m.get("delivered_per_s") or 0
            cpu = m.get("gen_pub_cpu") or m.get("gen_sub_cpu") or 0
            print(f"  {cell.title:34s} {rate:>12,.0f} msg/s  ({cpu:.2f} cores)", flush=True)
    finally:
        sink.stop()
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Roost vs mosquitto benchmark")
    parser.add_argument("--quick", action="store_true", help="1 run per cell, short cells")
    parser.add_argument("--only", default="", help="comma-separated cell keys (e.g. p2p-q0-64)")
    parser.add_argument(
        "--brokers",
        default=DEFAULT_BROKERS,
        help="which brokers (roost also selects roost-sync and roost-memory, mosquitto also "
        "mosquitto-persist; roost-w2 is `roost serve --workers 2`)",
    )
    parser.add_argument("--reps", type=int, default=0, help="override runs per cell")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results")
    parser.add_argument("--update-docs", action="store_true", help="rewrite docs/performance.md")
    parser.add_argument("--no-capacity", action="store_true")
    args = parser.parse_args(argv)

    profile = cells.QUICK if args.quick else cells.FULL
    if args.reps:
        profile = replace(profile, reps=args.reps, idle_reps=min(profile.idle_reps, args.reps))
    reps = profile.reps
    selected = [c for c in cells.cells(profile) if not args.only or c.key in args.only.split(",")]
    names = [n for n in args.brokers.split(",") if n]
    command = "make bench-quick" if args.quick else "make bench"
    if args.only or args.reps or args.brokers != DEFAULT_BROKERS:
        command = "python -m bench.run " + " ".join(argv if argv is not None else sys.argv[1:])

    started = time.monotonic()
    results: dict[str, Any] = {
        "command": command,
        "machine": machine(),
        "profile": asdict(profile),
        "settings": {
            "both": {
                "max_inflight": brokers.MAX_INFLIGHT,
                "max_queued_messages": brokers.MAX_QUEUED_MESSAGES,
            },
            "roost_toml": brokers.roost_config(0),
            "mosquitto_conf": brokers.mosquitto_config(0),
            "amqtt_yaml": brokers.amqtt_config(0),
            "durable_roost_toml_store": 'durability = "sync" | "memory", data_dir = <empty dir>',
            "durable_mosquitto_conf": brokers.mosquitto_config(0, "<empty dir>"),
        },
        "cells": {},
    }
    m = results["machine"]
    print(f"{m['cpu']}, {m['cores']} cores; {m['mosquitto']}; Roost {m['roost_commit']}")
    if "amqtt" in names and brokers.amqtt_path() is None:
        note = f"amqtt not found at {brokers.AMQTT} (make bench creates .venv-amqtt): skipped"
        print(note, flush=True)
        results["notes"] = [note]
        names.remove("amqtt")
    with tempfile.TemporaryDirectory(prefix="roost-bench-") as tmp:
        workdir = Path(tmp)
        if not args.no_capacity:
            results["capacity"] = capacity(workdir, profile)
        for cell in selected:
            print(f"{cell.title}:", flush=True)
            entry: dict[str, Any] = {"title": cell.title, "kind": cell.kind}
            for name in cell.brokers:
                if name not in names and (name in cells.OPT_IN or name.split("-")[0] not in names):
                    continue
                entry[name] = run_broker(name, cell, profile, reps, workdir)
                print(summary_line(name, cell, entry[name]["median"]), flush=True)
            results["cells"][cell.key] = entry
    results["elapsed_s"] = time.monotonic() - started
    stem = "quick" if args.quick else "latest"
    json_path, md_path = report.write(results, args.out, stem)
    print()
    print(report.markdown(results))
    print(f"results: {json_path} and {md_path} ({results['elapsed_s']:.0f} s)")
    if args.update_docs and report.update_doc(ROOT / "docs" / "performance.md", results):
        print("docs/performance.md updated")
    return 0


def start(name: str, workdir: Path) -> brokers.Broker | None:
    """Start a broker; one retry (the source tree may be mid-edit), then give up on it."""
    for attempt in range(2):
        try:
            return brokers.STARTERS[name](workdir)
        except RuntimeError as exc:
            log = workdir / f"{name}.log"
            tail = log.read_text(errors="replace")[-800:] if log.exists() else ""
            print(f"  {name}: start failed (attempt {attempt + 1}): {exc}\n{tail}", flush=True)
            time.sleep(2)
    return None


def run_broker(name: str, cell: Cell, profile: Profile, reps: int, workdir: Path) -> dict[str, Any]:
    """All repetitions of one cell against one broker (a fresh broker per cell; for idle
    connections a fresh broker per repetition, so that each starts from the same memory; for
    durable cells a fresh broker with an empty data directory per repetition, so that no
    session or queue of the previous one is left)."""
    runs: list[dict[str, Any]] = []
    count = profile.idle_reps if cell.kind == "idle" else 1 if cell.kind == "overload" else reps
    fresh = cell.kind in ("idle", "durable")
    broker = None
    try:
        for rep in range(count):
            if broker is None or fresh:
                if broker is not None:
                    broker.stop()
                broker = start(name, workdir)
                if broker is None:
                    runs.append({"error": "broker did not start"})
                    continue
            try:
                if cell.kind == "idle":
                    runs.append(cells.run_idle(broker, cell, f"idle{rep}"))
                else:
                    runs.append(run_cell(broker, cell, profile, rep))
            except RuntimeError as exc:
                runs.append({"error": str(exc)})
                print(f"  {name}: run {rep + 1} failed: {exc}", flush=True)
            if cell.kind == "durable":
                broker.stop()
                add_store_stats(runs[-1], broker.store_stats())
    finally:
        if broker is not None:
            broker.stop()
    good = [r for r in runs if "error" not in r]
    return {"median": cells.median_of(good), "runs": runs}


def add_store_stats(run: dict[str, Any], stats: dict[str, int]) -> None:
    """Roost's store commits over the whole run (set-up and drain included)."""
    commits = stats.get("commits", 0)
    if "error" in run or not commits:
        return
    run["store_commits"] = commits
    run["store_ops_per_commit"] = stats.get("committed_ops", 0) / commits
    run["acked_per_commit"] = run.get("acked", 0) / commits
    run["commit_ms_mean"] = 1000 * stats.get("commit_seconds", 0.0) / commits
    run["commit_ms_max"] = 1000 * stats.get("commit_max_seconds", 0.0)


if __name__ == "__main__":
    sys.exit(main())
