"""The broker process: listeners, the timer tick, $SYS topics, graceful shutdown."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import time
from pathlib import Path
from typing import TYPE_CHECKING

from roost import __version__
from roost.auth.acl import AclAuthorizer, AclRule
from roost.auth.base import AuthChain
from roost.config import Config, stream_spec
from roost.core.broker import Broker
from roost.core.message import DEFAULT_TENANT, Message
from roost.core.quotas import Quotas
from roost.core.session import Session
from roost.core.store import Committer, Store
from roost.registry import Registry
from roost.server.context import ServerContext
from roost.server.listeners import Listener, start_listeners
from roost.server.rrpc import Rrpc
from roost.store.memory import MemoryStore
from roost.store.sqlite import SqliteStore
from roost.streams.memory import MemoryStreamEngine
from roost.streams.service import LocalStreams
from roost.streams.sqlite import SqliteStreamEngine

if TYPE_CHECKING:
    from roost.api.server import ApiServer

log = logging.getLogger(__name__)

TICK_SECONDS = 0.1


class RoostServer:
    """Owns the broker and its listeners for the life of the process."""

    def __init__(self, config: Config, auth: AuthChain | None = None, *, worker: int = 0) -> None:
        """`worker`: this process's index when `[server] workers` > 1 (docs/workers.md)."""
        self.config = config
        self.worker = worker
        self.store: Store
        workers = config.server.workers
        # Worker processes keep their sessions in a store each.
        store_dir = Path(config.store.data_dir)
        if workers > 1:
            store_dir = store_dir / f"worker-{worker}"
        quotas = Quotas(
            config.quotas_of,
            enabled=any(config.quotas_of(t).limited for t in config.quota_tenants()),
        )
        if config.store.durability == "sync":
            sqlite = SqliteStore(store_dir)
            self.store = sqlite
            self.broker = Broker(config.mqtt, sqlite, journal=sqlite, quotas=quotas)
            committer: Committer | None = sqlite
        else:
            self.store = MemoryStore()
            self.broker = Broker(config.mqtt, self.store, quotas=quotas)
            committer = None
        # The messaging service: streams in the same store (and group commit) as sessions.
        self.streams = LocalStreams(
            SqliteStreamEngine(sqlite) if committer is not None else MemoryStreamEngine()
        )
        self.broker.on_internal_publish = self._internal_publish
        auth = auth or AuthChain()
        if config.acl:
            rules = [AclRule.parse(r.permission, r.action, r.topic) for r in config.acl]
            auth.authorizers.append(AclAuthorizer(rules))
        self.ctx = ServerContext(config=config, broker=self.broker, auth=auth, committer=committer)
        # What the PUBLISH pipeline and the tick use: the streams, or worker 0's over the bus.
        self.ctx.streams = self.streams
        if workers > 1:
            from roost.cluster.bus import LocalBus
            from roost.cluster.captures import STREAMS_WORKER, RemoteCaptures

            run_dir = Path(config.store.data_dir) / "run"
            bus = self.ctx.cluster = LocalBus(self.ctx, worker, workers, run_dir)
            if worker == STREAMS_WORKER:
                bus.serve_streams(self.streams)
            else:
                # Streams run in worker 0 (with the API): captures go there over the bus.
                bus.remote = RemoteCaptures(lambda: self.ctx.clock())
                self.ctx.streams = bus.remote
        self.streams.clock = self.ctx.clock
        # The registry is open when it checks credentials or when the API manages it.
        self.registry: Registry | None = None
        if config.registry.enabled or config.api.enabled:
            self.registry = Registry.in_data_dir(config.store.data_dir, config.registry.scrypt_n)
        if config.registry.enabled:
            self.ctx.registry = self.registry
        self.api: ApiServer | None = None
        self._rrpc: Rrpc | None = None
        self.servers: list[asyncio.Server] = []
        self.ports: dict[str, int] = {}
        self.listeners: list[Listener] = []
        self._tasks: list[asyncio.Task[None]] = []
        self._stopped = asyncio.Event()

    async def start(self) -> None:
        started = time.monotonic()
        snapshot = self.store.load()
        self.broker.restore(snapshot, self.ctx.clock())
        if self.ctx.streams is self.streams:
            # Before the bus: the other workers hear of the streams when they link.
            self.streams.start(
                self.ctx.clock(),
                [stream_spec(d) for d in self.config.streams],
                [d.tenant for d in self.config.streams],
            )
        if self.ctx.cluster is not None:
            await self.ctx.cluster.start()
        if self.registry is not None:
            self._end_sessions_of_revoked_devices()
            self._register_default_tenant(self.registry)
        if self.store.durable:
            log.info(
                "store %s: %d sessions, %d queued messages, %d retained restored in %.2f s",
                self.config.store.data_dir,
                len(self.broker.sessions),
                sum(s.message_count() for s in self.broker.sessions.values()),
                self.broker.retained_count(),
                time.monotonic() - started,
            )
        self.listeners = await start_listeners(self.ctx)
        for listener in self.listeners:
            self.ports[listener.name] = listener.port
            if listener.server is not None:
                self.servers.append(listener.server)
        if self.config.api.enabled and self.worker == 0:
            # With worker processes only the first serves the HTTP API (docs/workers.md).
            from roost.api.server import ApiServer

            self.api = ApiServer(self)
            await self.api.start()
            self.ports["api"] = self.api.port
        self._tasks.append(asyncio.create_task(self._tick()))
        self._tasks.append(asyncio.create_task(self._publish_sys()))
        if self.registry is not None:
            loop = asyncio.get_running_loop()

            def revoked(tenant: str, device_id: str) -> None:
                # Registry changes may come from any thread: act on the broker's loop.
                loop.call_soon_threadsafe(self.revoke_device, tenant, device_id)

            self.registry.on_revoke(revoked)
            self._tasks.append(asyncio.create_task(self._refresh_registry()))

    def _register_default_tenant(self, registry: Registry) -> None:
        """The `default` tenant, when a listener uses it, exists in the registry, so that
        devices, applications and keys can be added to it without creating it first."""
        if registry.tenant(DEFAULT_TENANT) is None and any(
            listener.tenant == DEFAULT_TENANT for listener in self.config.listeners
        ):
            # ValueError: made meanwhile by another process (another worker, the CLI).
            with contextlib.suppress(ValueError):
                registry.add_tenant(DEFAULT_TENANT, "the listeners' default tenant")

    @property
    def rrpc(self) -> Rrpc:
        """Server-to-device calls (Alibaba RRPC), made on first use."""
        if self._rrpc is None:
            self._rrpc = Rrpc(self.broker, self.ctx.clock)
        return self._rrpc

    def kick(self, session: Session) -> None:
        """An operator ends a session: its connection gets DISCONNECT 0x98 (no will) and
        the session is discarded, connected or not."""
        handler = self.ctx.connections.get(session.key)
        if handler is not None:
            log.info("kicking %s/%s", session.tenant, session.client_id)
            handler.revoke()
        if self.broker.get_session(*session.key) is session:
            self.broker.end_session(session, self.ctx.clock())

    def revoke_device(self, tenant: str, device_id: str) -> None:
        """Disconnect every connection of a device whose access was revoked and end all its
        sessions, offline ones too: subscriptions, queued messages (also in the store) and
        pending wills are discarded, so nothing more is delivered to it or on its behalf."""
        for handler in list(self.ctx.handlers):
            client = handler.client
            if (
                handler.session is not None
                and client is not None
                and client.tenant == tenant
                and client.device_id == device_id
            ):
                log.info("disconnecting %s/%s: access revoked", tenant, client.client_id)
                handler.revoke()
        ended = self.broker.end_device_sessions(tenant, device_id, self.ctx.clock())
        if ended:
            log.info("device %s/%s revoked: %d offline session(s) ended", tenant, device_id, ended)

    def _end_sessions_of_revoked_devices(self) -> None:
        """At start: sessions of devices disabled or removed while Roost was stopped."""
        registry = self.registry
        assert registry is not None
        owners = {
            (s.tenant, s.device_id)
            for s in self.broker.sessions.values()
            if s.device_id is not None
        }
        for tenant, device_id in sorted(owners):
            device = registry.device(tenant, device_id)
            record = registry.tenant(tenant)
            if device is None or not device.enabled or record is None or not record.enabled:
                self.revoke_device(tenant, device_id)

    async def _refresh_registry(self) -> None:
        """Pick up registry changes made by another process (the CLI)."""
        registry = self.registry
        assert registry is not None
        while True:
            await asyncio.sleep(self.config.registry.refresh_interval)
            try:
                registry.refresh()
            except Exception:
                log.exception("registry refresh failed")

    async def _tick(self) -> None:
        while True:
            await asyncio.sleep(TICK_SECONDS)
            try:
                now = self.ctx.clock()
                self.broker.tick(now)
                if self.ctx.streams is not None:
                    self.ctx.streams.tick(now)
            except Exception:
                log.exception("timer tick failed")

    def _internal_publish(self, message: Message) -> None:
        """A will: routed, and captured by streams like the client's own PUBLISH."""
        now = self.ctx.clock()
        self.broker.publish(message, now)
        streams = self.ctx.streams
        if streams is not None and streams.captures(message.tenant):
            streams.capture(message, None, False, now)

    def sys_values(self) -> dict[str, str]:
        stats = self.broker.stats
        now = self.ctx.clock()
        values = {
            "version": f"roost {__version__}",
            "uptime": f"{int(now - self.ctx.started_at)} seconds",
            "clients/connected": str(stats.clients_connected),
            "clients/maximum": str(stats.clients_maximum),
            "clients/total": str(len(self.broker.sessions)),
            "messages/received": str(stats.messages_received),
            "messages/sent": str(stats.messages_sent),
            "messages/dropped": str(stats.messages_dropped),
            "bytes/received": str(stats.publish_bytes_received),
            "bytes/sent": str(stats.publish_bytes_sent),
            "retained messages/count": str(self.broker.retained_count()),
            "subscriptions/count": str(
                sum(len(s.subscriptions) for s in self.broker.sessions.values())
            ),
        }
        if self.ctx.cluster is not None:
            values["worker"] = f"{self.worker} {os.getpid()}"
        if self.broker.quotas.enabled:
            # Each tenant's usage and refusals, for the operator (in the default tenant).
            for tenant, usage in self.broker.quotas.usage.items():
                for name, value in usage.as_dict().items():
                    values[f"tenants/{tenant}/{name}"] = str(value)
        return values

    async def _publish_sys(self) -> None:
        version_sent = False
        while True:
            now = self.ctx.clock()
            for name, value in self.sys_values().items():
                if name == "version" and version_sent:
                    continue
                self.broker.publish(
                    Message(
                        tenant=DEFAULT_TENANT,
                        topic=f"$SYS/broker/{name}",
                        payload=value.encode(),
                        retain=True,
                        created_at=now,
                    ),
                    now,
                    count=False,
                    persist=False,
                    forward=False,
                )
            version_sent = True
            await asyncio.sleep(self.config.mqtt.sys_interval)

    def reload(self) -> None:
        """SIGHUP: reload TLS certificates, keys and CRLs; open connections are kept."""
        log.info("reloading TLS certificates")
        for listener in self.listeners:
            listener.reload()

    async def stop(self) -> None:
        if self.api is not None:
            await self.api.stop()
        if self.ctx.cluster is not None:
            await self.ctx.cluster.stop()
        for listener in self.listeners:
            listener.close()
        for handler in list(self.ctx.handlers):
            handler.shutdown()
        self.ctx.timers.close()
        if isinstance(self.store, SqliteStore):
            # What the last acknowledgements and DISCONNECTs wait for.
            try:
                await self.store.drain()
            except TimeoutError:
                log.error("store did not commit within the shutdown time")
        await asyncio.sleep(0)
        for task in self._tasks:
            task.cancel()
        for server in self.servers:
            await server.wait_closed()
        self.store.close()
        if self.registry is not None:
            self.registry.close()
        self._stopped.set()

    async def serve_forever(self) -> None:
        """Run until SIGINT / SIGTERM, then shut down gracefully; SIGHUP reloads TLS.
        The handlers are installed first, so that no signal during start-up kills the process."""
        loop = asyncio.get_running_loop()
        stop = asyncio.Event()
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.add_signal_handler(sig, stop.set)
        with contextlib.suppress(NotImplementedError, RuntimeError, AttributeError):
            loop.add_signal_handler(signal.SIGHUP, self.reload)
        await self.start()
        await stop.wait()
        log.info("shutting down")
        await self.stop()
