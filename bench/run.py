"""`python -m bench.run [--quick]`: measure the load generator, then run every cell against
Roost and mosquitto (one broker after the other, each on a fresh free loopback port), print
the table and write bench/results/<profile>.json and .md.
"""

from __future__ import annotations

import argparse
import os
import platform
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
        "roost_commit": commit or "unknown",
    }


def run_cell(broker: brokers.Broker, cell: Cell, profile: Profile, rep: int) -> dict[str, Any]:
    tag = f"{cell.key.replace('-', '')}r{rep}"
    cells.settle(broker)
    if cell.kind == "latency":
        return cells.run_pubsub(
            broker, cell, profile.latency_duration, profile.warmup, profile.interval, tag
        )
    if cell.kind == "overload":
        return cells.run_pubsub(broker, cell, profile.overload_duration, 2.0, 0.5, tag)
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
    return text


def capacity(workdir: Path, profile: Profile) -> dict[str, Any]:
    """The generator against bench.sink: the rates it can sustain by itself."""
    print("load generator capacity (against bench.sink):", flush=True)
    out: dict[str, Any] = {}
    sink = brokers.start_sink(workdir, 64)
    try:
        for cell in cells.capacity_cells():
            m = cells.run_pubsub(
                sink, cell, profile.duration, profile.warmup, profile.interval, cell.key
            )
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
    parser.add_argument("--brokers", default="roost,mosquitto")
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
    if args.only or args.reps or args.brokers != "roost,mosquitto":
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
        },
        "cells": {},
    }
    m = results["machine"]
    print(f"{m['cpu']}, {m['cores']} cores; {m['mosquitto']}; Roost {m['roost_commit']}")
    with tempfile.TemporaryDirectory(prefix="roost-bench-") as tmp:
        workdir = Path(tmp)
        if not args.no_capacity:
            results["capacity"] = capacity(workdir, profile)
        for cell in selected:
            print(f"{cell.title}:", flush=True)
            entry: dict[str, Any] = {"title": cell.title, "kind": cell.kind}
            for name in names:
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
    connections a fresh broker per repetition, so that each starts from the same memory)."""
    runs: list[dict[str, Any]] = []
    count = profile.idle_reps if cell.kind == "idle" else 1 if cell.kind == "overload" else reps
    broker = None
    try:
        for rep in range(count):
            if broker is None or cell.kind == "idle":
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
    finally:
        if broker is not None:
            broker.stop()
    good = [r for r in runs if "error" not in r]
    return {"median": cells.median_of(good), "runs": runs}


if __name__ == "__main__":
    sys.exit(main())
