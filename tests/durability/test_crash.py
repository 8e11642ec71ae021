"""The durability promise under SIGKILL: no acknowledged QoS 1/2 message lost, no QoS 2
message delivered twice, for an online and an offline persistent subscriber."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from tests.durability.crash import run
from tests.durability.slowdisk import slow_disk_env


@pytest.mark.timeout(240)
def test_kill_9_loses_nothing_acknowledged_and_duplicates_no_qos2(tmp_path: Path) -> None:
    result = asyncio.run(run(kills=5, seed=20261121, data_dir=tmp_path))
    print(result.summary())
    assert result.kills == 5
    assert result.acknowledged > 100
    assert result.lost == {"crash-online": [], "crash-offline": []}
    assert result.qos2_duplicates == {"crash-online": [], "crash-offline": []}


@pytest.mark.timeout(240)
def test_kill_9_on_a_slow_disk(tmp_path: Path) -> None:
    """Every fsync of the broker takes 40 ms longer, so the kills land inside commits: an
    acknowledgement sent before its commit would show up here as a lost message."""
    env = slow_disk_env(tmp_path, delay_ms=40)
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    result = asyncio.run(run(kills=5, seed=20261122, data_dir=data_dir, env=env))
    print(result.summary())
    assert result.acknowledged > 50
    assert result.lost == {"crash-online": [], "crash-offline": []}
    assert result.qos2_duplicates == {"crash-online": [], "crash-offline": []}
