"""Admission limits of one listener: connection count, per-address count, accept rate."""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable

from roost.config import ListenerConfig

log = logging.getLogger(__name__)


class TokenBucket:
    """`rate` tokens per second, at most `burst` saved up; `take` spends one."""

    __slots__ = ("_last", "_tokens", "burst", "rate")

    def __init__(self, rate: float, burst: int, now: float) -> None:
        self.rate = rate
        self.burst = float(max(1, burst))
        self._tokens = self.burst
        self._last = now

    def take(self, now: float) -> bool:
        elapsed = max(0.0, now - self._last)
        self._last = now
        self._tokens = min(self.burst, self._tokens + elapsed * self.rate)
        if self._tokens >= 1.0:
            self._tokens -= 1.0
            return True
        return False


class AddressCounter:
    """Open connections per source address; addresses with none are forgotten."""

    __slots__ = ("counts", "limit")

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.counts: dict[str, int] = {}

    def acquire(self, address: str) -> bool:
        count = self.counts.get(address, 0)
        if self.limit and count >= self.limit:
            return False
        self.counts[address] = count + 1
        return True

    def release(self, address: str) -> None:
        count = self.counts.get(address, 0) - 1
        if count > 0:
            self.counts[address] = count
        else:
            self.counts.pop(address, None)


class Slot:
    """One admitted connection's share of its listener's limits; `release` is idempotent."""

    __slots__ = ("_guard", "address", "released")

    def __init__(self, guard: ListenerGuard) -> None:
        self._guard = guard
        self.address: str | None = None
        self.released = False

    def bind_address(self, address: str) -> bool:
        """Count the connection against its (real) source address; False: over the limit."""
        if self.released:
            return False
        # Connections from one address share one string (NAT, proxies, load generators).
        address = sys.intern(address)
        if not self._guard.addresses.acquire(address):
            self._guard.refused_per_address += 1
            return False
        self.address = address
        return True

    def release(self) -> None:
        if self.released:
            return
        self.released = True
        guard = self._guard
        guard.connections -= 1
        if self.address is not None:
            guard.addresses.release(self.address)
            self.address = None


class ListenerGuard:
    """Decides at accept whether a connection may stay; counts what it refused."""

    def __init__(self, config: ListenerConfig, clock: Callable[[], float]) -> None:
        self.config = config
        self.clock = clock
        self.connections = 0
        self.addresses = AddressCounter(config.max_connections_per_address)
        self.bucket: TokenBucket | None = None
        if config.connection_rate > 0:
            burst = config.connection_burst or max(1, round(config.connection_rate))
            self.bucket = TokenBucket(config.connection_rate, burst, clock())
        self.refused_max_connections = 0
        self.refused_rate = 0
        self.refused_per_address = 0

    def admit(self, peer: str) -> Slot | None:
        """A new connection from `peer`: a Slot, or None when a limit refuses it."""
        if self.connections >= self.config.max_connections:
            self.refused_max_connections += 1
            log.warning(
                "listener %s: connection limit reached, refusing %s", self.config.name, peer
            )
            return None
        if self.bucket is not None and not self.bucket.take(self.clock()):
            self.refused_rate += 1
            if self.refused_rate % 1000 == 1:
                log.warning(
                    "listener %s: connection rate limit, refusing %s (%d refused so far)",
                    self.config.name,
                    peer,
                    self.refused_rate,
                )
            return None
        self.connections += 1
        return Slot(self)
