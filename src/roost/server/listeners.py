"""The listeners of a server: one asyncio server each, by transport (tcp, tls, ws, wss),
with its admission limits, TLS context (reloadable) and slow-client watchdog."""

from __future__ import annotations

import asyncio
import logging

from roost.config import ListenerConfig
from roost.server.context import ServerContext
from roost.transport.accept import AcceptLoop, listening_socket
from roost.transport.armour import ListenerGuard
from roost.transport.tcp import MQTTProtocol
from roost.transport.tls import ContextHolder

log = logging.getLogger(__name__)

# How often stalled connections are looked for.
SWEEP_SECONDS = 1.0


class Listener:
    """One configured listener while the server runs."""

    def __init__(
        self, config: ListenerConfig, ctx: ServerContext, loop: asyncio.AbstractEventLoop
    ) -> None:
        self.config = config
        self.name = config.name
        self.ctx = ctx
        self.loop = loop
        self.guard = ListenerGuard(config, loop.time)
        self.tls: ContextHolder | None = ContextHolder(config) if config.is_tls else None
        self.server: asyncio.Server | None = None
        self.accept_loop: AcceptLoop | None = None
        self._accept_task: asyncio.Task[None] | None = None
        self.port = 0
        # Connections that may be stalling, looked at each sweep. (Open connections are not
        # kept in a set of their own: the server's handlers are, and a set costs ~100 bytes
        # a connection.)
        self._suspects: set[MQTTProtocol] = set()
        self._tasks: set[asyncio.Task[None]] = set()
        self._sweeper: asyncio.TimerHandle | None = None
        self.slow_closed = 0

    async def start(self) -> bool:
        """Bind; False when an optional listener cannot (logged), raises for a required one."""
        config = self.config
        # Worker processes share the port; the kernel spreads connections among them.
        reuse_port = self.ctx.config.server.workers > 1
        try:
            if self.tls is not None or config.proxy_protocol:
                # TLS and PROXY: an accept loop runs each connection's pre-MQTT stage.
                sock = listening_socket(config.host, config.port, reuse_port=reuse_port)
                self.accept_loop = AcceptLoop(self, sock)
                self._accept_task = self.loop.create_task(self.accept_loop.run())
                self.port = sock.getsockname()[1]
            else:
                self.server = await self.loop.create_server(
                    self._plain_protocol,
                    host=config.host,
                    port=config.port,
                    reuse_address=True,
                    reuse_port=reuse_port or None,
                    backlog=1024,
                )
                self.port = self.server.sockets[0].getsockname()[1]
        except OSError as exc:
            if config.required:
                raise
            log.warning(
                "listener %s: not started, cannot bind %s:%d: %s",
                self.name,
                config.host,
                config.port,
                exc,
            )
            return False
        self._sweeper = self.loop.call_later(SWEEP_SECONDS, self._sweep)
        log.info(
            "listener %s: mqtt over %s on %s:%d%s%s",
            self.name,
            config.transport,
            config.host,
            self.port,
            f" path {config.ws_path}" if config.is_websocket else "",
            " (PROXY protocol)" if config.proxy_protocol else "",
        )
        return True

    def _plain_protocol(self) -> asyncio.BaseProtocol:
        return MQTTProtocol(self)

    def reload(self) -> None:
        """SIGHUP: new certificates, key, CA and CRL for new connections."""
        if self.tls is not None:
            self.tls.reload()

    def close(self) -> None:
        if self.server is not None:
            self.server.close()
        if self._accept_task is not None:
            self._accept_task.cancel()
            self._accept_task = None
        if self.accept_loop is not None:
            self.accept_loop.sock.close()
        if self._sweeper is not None:
            self._sweeper.cancel()
            self._sweeper = None
        for task in self._tasks:
            task.cancel()

    async def wait_closed(self) -> None:
        if self.server is not None:
            await self.server.wait_closed()

    # -- bookkeeping from the protocols --------------------------------------------------------

    def track(self, task: asyncio.Task[None]) -> None:
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def closed(self, protocol: MQTTProtocol) -> None:
        self._suspects.discard(protocol)

    def suspect(self, protocol: MQTTProtocol) -> None:
        self._suspects.add(protocol)

    def clear(self, protocol: MQTTProtocol) -> None:
        self._suspects.discard(protocol)

    def _sweep(self) -> None:
        now = self.loop.time()
        for protocol in list(self._suspects):
            if protocol.check_slow(now):
                self._suspects.discard(protocol)
        self._sweeper = self.loop.call_later(SWEEP_SECONDS, self._sweep)


async def start_listeners(ctx: ServerContext) -> list[Listener]:
    """Start every configured listener; on failure, those already started are closed."""
    loop = asyncio.get_running_loop()
    started: list[Listener] = []
    try:
        for config in ctx.config.listeners:
            listener = Listener(config, ctx, loop)
            if await listener.start():
                started.append(listener)
    except BaseException:
        for listener in started:
            listener.close()
        raise
    return started
