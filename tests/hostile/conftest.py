"""Fixtures for the hostile-input catalogue: one broker with short connect and packet
timeouts, and a memory probe."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from roost.config import ListenerConfig
from tests.conftest import BrokerHandle, start_broker

CONNECT_TIMEOUT = 1.0


@pytest.fixture(scope="module")
def hbroker() -> Iterator[BrokerHandle]:
    """A broker whose connections must CONNECT within a second; listener "armoured" also
    closes a packet left unfinished (or output left unread) for a second; "ws" is WebSocket."""
    handle = start_broker(
        durability="memory",
        connect_timeout=CONNECT_TIMEOUT,
        listeners=(
            ListenerConfig(
                name="armoured", host="127.0.0.1", port=0, packet_timeout=1.0, send_timeout=1.0
            ),
            ListenerConfig(name="ws", transport="ws", host="127.0.0.1", port=0),
        ),
    )
    yield handle
    handle.stop()


def rss_mb() -> float:
    """Resident memory of this process (the broker runs in it), in MB."""
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0
