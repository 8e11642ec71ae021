"""The durability promise under SIGKILL: no acknowledged QoS 1/2 message lost, no QoS 2
message delivered twice, for an online and an offline persistent subscriber."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from tests.durability.crash import run


@pytest.mark.timeout(240)
def test_kill_9_loses_nothing_acknowledged_and_duplicates_no_qos2(tmp_path: Path) -> None:
    result = asyncio.run(run(kills=5, seed=20261121, data_dir=tmp_path))
    print(result.summary())
    assert result.kills == 5
    assert result.acknowledged > 100
    assert result.lost == {"crash-online": [], "crash-offline": []}
    assert result.qos2_duplicates == {"crash-online": [], "crash-offline": []}
