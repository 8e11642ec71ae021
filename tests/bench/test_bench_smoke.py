"""The benchmark's load generator against a Roost started on port 0: one tiny cell measures
something sane. Not a timed assertion: only that messages flow and the counts add up."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench import brokers, cells, report


@pytest.mark.slow
def test_generator_measures_a_tiny_p2p_cell(tmp_path: Path) -> None:
    broker = brokers.start_roost(tmp_path)
    try:
        cell = cells.Cell("smoke", "p2p 2->2, QoS 1", "throughput", pubs=2, subs=2, qos=1)
        m = cells.run_pubsub(broker, cell, duration=2.0, warmup=0.5, interval=0.5, tag="smoke")
    finally:
        broker.stop()
    assert m["connect_failures"] == 0
    assert m["sent"] > 0
    assert m["received"] > 0
    assert m["expected"] == m["sent"]
    assert 0.0 <= m["loss"] <= 1.0
    assert m["delivered_per_s"] > 0
    assert m["broker_cpu"] >= 0.0
    assert m["broker_alive"]


@pytest.mark.slow
def test_generator_qos0_flood_counts_loss(tmp_path: Path) -> None:
    broker = brokers.start_roost(tmp_path)
    try:
        cell = cells.Cell("smoke0", "p2p 2->2, QoS 0", "throughput", pubs=2, subs=2, qos=0)
        m = cells.run_pubsub(broker, cell, duration=1.5, warmup=0.5, interval=0.5, tag="smoke0")
    finally:
        broker.stop()
    assert m["received"] > 0
    assert m["received"] <= m["expected"]
    assert "loss" in m


@pytest.mark.slow
def test_durable_cell_persistent_sessions_on_sync_store(tmp_path: Path) -> None:
    """Roost with durability = "sync" in an empty data dir; subscribers with clean session 0:
    messages flow, the store commits, and the commit counters come back after stop()."""
    broker = brokers.start_roost_sync(tmp_path)
    try:
        cell = cells.Cell(
            "smoke-durable", "durable 2->2", "durable", pubs=2, subs=2, qos=1, persistent=True
        )
        m = cells.run_pubsub(broker, cell, duration=1.5, warmup=0.5, interval=0.5, tag="sd")
    finally:
        broker.stop()
    assert m["connect_failures"] == 0
    assert m["received"] > 0
    assert m["loss"] == 0.0
    assert m["disk_bytes_per_msg"] > 0
    stats = broker.store_stats()
    assert stats["stores"] == 1
    assert stats["commits"] > 0
    assert stats["committed_ops"] >= stats["commits"]
    assert list(tmp_path.glob("roost-sync-data-*/roost.db"))


def test_report_renders_durable_and_amqtt_tables() -> None:
    def med(**values: float) -> dict[str, object]:
        return {"median": values, "runs": []}

    results = {
        "command": "make bench",
        "machine": {
            "cpu": "cpu",
            "cores": 2,
            "memory_gib": 1.0,
            "kernel": "Linux",
            "python": "3.11",
            "uvloop": "x",
            "mosquitto": "mosquitto",
            "amqtt": "amqtt 0.12.1",
            "roost_commit": "abc",
        },
        "profile": {"name": "quick", "reps": 1, "duration": 2.0, "warmup": 0.5},
        "cells": {
            "p2p-q0-64": {
                "title": "p2p 10->10, QoS 0, 64 B",
                "kind": "throughput",
                "roost": med(delivered_per_s=50_000.0, msgs_per_broker_cpu_s=50_000.0),
                "mosquitto": med(delivered_per_s=60_000.0, msgs_per_broker_cpu_s=70_000.0),
                "amqtt": med(delivered_per_s=1_000.0, msgs_per_broker_cpu_s=1_000.0, loss=0.0),
                "roost-w2": med(
                    delivered_per_s=90_000.0, msgs_per_broker_cpu_s=50_000.0, broker_cpu=1.8
                ),
            },
            "idle": {
                "title": "10,000 idle connections",
                "kind": "idle",
                "roost": med(bytes_per_connection=3072.0, connects_per_broker_cpu_s=9_000.0),
                "roost-w2": med(bytes_per_connection=4096.0, connects_per_broker_cpu_s=8_000.0),
                "mosquitto": med(bytes_per_connection=1024.0, connects_per_broker_cpu_s=16_000.0),
            },
            "durable-q1-64": {
                "title": "durable p2p",
                "kind": "durable",
                "roost-sync": med(delivered_per_s=10_000.0, acked_per_commit=100.0),
                "roost-memory": med(delivered_per_s=20_000.0),
                "mosquitto-persist": med(delivered_per_s=25_000.0),
            },
        },
    }
    text = report.markdown(results)
    assert "| p2p 10->10, QoS 0, 64 B | 50,000 | 1,000 | 50.0x |" in text
    assert "0.50x" in text  # sync / memory
    assert "amqtt reference" in text
    # Two workers: beside mosquitto (1.50x) and beside one process (1.80x), and vs amqtt.
    assert "| p2p 10->10, QoS 0, 64 B | 90,000 | 60,000 | 1.50x | 1.80x |" in text
    assert "| 90,000 | 90.0x |" in text
    assert "| broker VmRSS per connection (KiB) | 3.00 | 1.00 | 3.0x | Roost ≤ 8 KiB |" in text
    assert "| connects per broker CPU-second | 8,000 | 16,000 | 0.50x |" in text
    # The two-worker idle table shows roost-w2's own memory (4 KiB), not one process's.
    assert (
        "| 10,000 idle connections | Roost x2 | mosquitto | ratio |\n|---|---:|---:|---:|\n"
        "| broker VmRSS per connection (KiB) | 4.00 | 1.00 | 4.0x |\n"
    ) in text


def test_hotpath_bench_delivers() -> None:
    """bench/hotpath.py drives real handlers in one process: it runs and messages arrive
    (it raises when nothing is delivered); no figure is asserted."""
    from bench import hotpath

    for topology, qos in (("p2p", 0), ("p2p", 1), ("fanin", 0)):
        assert hotpath.run(topology, qos, messages=2_000, batch=20) > 0


@pytest.mark.slow
@pytest.mark.skipif(brokers.amqtt_path() is None, reason="no .venv-amqtt (make bench creates it)")
def test_amqtt_reference_broker_starts_and_delivers(tmp_path: Path) -> None:
    broker = brokers.start_amqtt(tmp_path)
    try:
        cell = cells.Cell("smoke-amqtt", "p2p 2->2, QoS 1", "throughput", pubs=2, subs=2, qos=1)
        m = cells.run_pubsub(broker, cell, duration=1.5, warmup=0.5, interval=0.5, tag="sa")
    finally:
        broker.stop()
    assert m["connect_failures"] == 0
    assert m["received"] > 0
