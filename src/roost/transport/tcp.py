"""MQTT over TCP: an asyncio.Protocol per connection, flow control via pause/resume_writing."""

from __future__ import annotations

import asyncio
import logging
from typing import cast

from roost.server.context import ServerContext
from roost.server.handler import ConnectionHandler

log = logging.getLogger(__name__)

# Bytes buffered for a client before its connection stops taking from its session queue.
WRITE_HIGH_WATER = 1024 * 1024


class MQTTProtocol(asyncio.Protocol):
    """Hands bytes to the connection's handler; never awaits."""

    def __init__(
        self, ctx: ServerContext, listener: str, max_connections: int, counter: list[int]
    ) -> None:
        self.ctx = ctx
        self.listener = listener
        self.max_connections = max_connections
        self.counter = counter
        self.handler: ConnectionHandler | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        tcp = cast(asyncio.Transport, transport)
        peername = tcp.get_extra_info("peername")
        peer = f"{peername[0]}:{peername[1]}" if isinstance(peername, tuple) else str(peername)
        if self.counter[0] >= self.max_connections:
            log.warning("listener %s: connection limit reached, refusing %s", self.listener, peer)
            tcp.abort()
            return
        self.counter[0] += 1
        tcp.set_write_buffer_limits(high=WRITE_HIGH_WATER)
        self.handler = ConnectionHandler(
            self.ctx, tcp, self.listener, peer, asyncio.get_running_loop()
        )

    def data_received(self, data: bytes) -> None:
        if self.handler is not None:
            self.handler.data_received(data)

    def connection_lost(self, exc: Exception | None) -> None:
        if self.handler is not None:
            self.counter[0] -= 1
            self.handler.connection_lost(exc)
            self.handler = None

    def pause_writing(self) -> None:
        if self.handler is not None:
            self.handler.pause_writing()

    def resume_writing(self) -> None:
        if self.handler is not None:
            self.handler.resume_writing()
