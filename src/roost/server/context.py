"""What every connection handler shares: the broker, config, auth hooks, clocks, registry."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from roost.auth.base import AuthChain
from roost.auth.credentials import CredentialStore
from roost.config import Config
from roost.core.broker import Broker
from roost.core.session import SessionKey
from roost.core.store import Committer
from roost.server.timers import TimerWheel

if TYPE_CHECKING:
    from roost.cluster.bus import LocalBus
    from roost.server.handler import ConnectionHandler
    from roost.server.profiles import ListenerProfile
    from roost.streams.base import StreamCapture


@dataclass(slots=True)
class ServerContext:
    config: Config
    broker: Broker
    auth: AuthChain = field(default_factory=AuthChain)
    # Wall clock for the broker's domain (expiry survives restarts); the event loop's
    # monotonic clock is used for keep alive and connect timeouts.
    clock: Callable[[], float] = time.time
    # The live connection of each session, for takeover [MQTT-3.1.4-3].
    connections: dict[SessionKey, ConnectionHandler] = field(default_factory=dict)
    # Every open network connection (also those without CONNECT yet).
    # Keys only (a dict takes about half the memory of a set at thousands of entries).
    handlers: dict[ConnectionHandler, None] = field(default_factory=dict)
    started_at: float = field(default_factory=time.time)
    # Set when the store is durable: output revealing stored state waits for its commit.
    committer: Committer | None = None
    # Per listener: its dialect, effective limits and tenant; made on first use.
    profiles: dict[str, ListenerProfile] = field(default_factory=dict)
    # The device registry's read side, when one is configured.
    registry: CredentialStore | None = None
    assigned_ids: int = 0
    # The messaging service: streams capturing published messages (None: not serving);
    # on worker processes > 0, the capture sent to worker 0 (roost/cluster/captures.py).
    streams: StreamCapture | None = None
    # The bus to the other worker processes (docs/workers.md); None with one process.
    cluster: LocalBus | None = None
    # The connections' CONNECT and keep-alive deadlines, to within one tick (1 s).
    timers: TimerWheel = field(default_factory=TimerWheel)

    def profile(self, listener: str) -> ListenerProfile:
        profile = self.profiles.get(listener)
        if profile is None:
            from roost.server.profiles import build_profile

            profile = self.profiles[listener] = build_profile(self.config, listener)
        return profile
