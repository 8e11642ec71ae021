"""The benchmark's load generator against a Roost started on port 0: one tiny cell measures
something sane. Not a timed assertion: only that messages flow and the counts add up."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench import brokers, cells


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
