"""MQTT over a byte stream: an asyncio.Protocol per connection feeding its handler, with
flow control via pause/resume_writing. The stream is TCP, or TLS started by
the accept loop (`transport.accept`); on WebSocket listeners the bytes pass through `WebSocketTransport`."""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, cast

from roost.server.handler import ConnectionHandler, Transport
from roost.transport.armour import Slot
from roost.transport.tls import certificate_identity
from roost.transport.websocket import WebSocketTransport

if TYPE_CHECKING:
    from roost.server.listeners import Listener

log = logging.getLogger(__name__)

# Bytes buffered for a client before its connection stops taking from its session queue.
WRITE_HIGH_WATER = 1024 * 1024


def format_peer(peername: object) -> str:
    if isinstance(peername, tuple) and len(peername) >= 2:
        host = str(peername[0])
        return f"[{host}]:{peername[1]}" if ":" in host else f"{host}:{peername[1]}"
    return str(peername)


def peer_host(peername: object) -> str:
    if isinstance(peername, tuple) and peername:
        return str(peername[0])
    return str(peername)


class MQTTProtocol(asyncio.Protocol):
    """Hands bytes to the connection's handler; never awaits.

    Made by the listener for plain TCP / WS (it then admits the connection itself), or by
    the accept loop of TLS / PROXY listeners (admitted already: `slot`)."""

    # One per open connection: no per-instance dict.
    __slots__ = (
        "address",
        "handler",
        "listener",
        "partial_since",
        "paused_since",
        "peer",
        "slot",
        "transport",
        "websocket",
    )

    def __init__(
        self,
        listener: Listener,
        slot: Slot | None = None,
        peer: str | None = None,
        address: str | None = None,
    ) -> None:
        self.listener = listener
        self.slot = slot
        self.peer = peer
        self.address = address
        self.handler: ConnectionHandler | None = None
        self.websocket: WebSocketTransport | None = None
        self.transport: asyncio.Transport | None = None
        # Slow-client armour: when the write buffer went above the high-water mark, and
        # when the first byte of a packet not yet complete arrived.
        self.paused_since: float | None = None
        self.partial_since: float | None = None

    # -- start ---------------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        """Straight from accept (plain TCP / WS), or after the accept loop's stage (admitted
        already; on TLS listeners the handshake is done and the client certificate known)."""
        tcp = cast(asyncio.Transport, transport)
        if self.slot is not None:
            identity = None
            if self.listener.config.is_tls:
                identity = certificate_identity(
                    tcp.get_extra_info("peercert"), self.listener.config.identity_from
                )
            self.start(tcp, identity)
            return
        peername = tcp.get_extra_info("peername")
        self.peer = format_peer(peername)
        slot = self.listener.guard.admit(self.peer)
        if slot is None or not slot.bind_address(peer_host(peername)):
            if slot is not None:
                log.warning(
                    "listener %s: too many connections from %s",
                    self.listener.name,
                    peer_host(peername),
                )
                slot.release()
            tcp.abort()
            return
        self.slot = slot
        self.start(tcp)

    def start(self, transport: asyncio.Transport, certificate_identity: str | None = None) -> None:
        """Attach the connection handler (after admission, PROXY header and TLS handshake)."""
        listener = self.listener
        self.transport = transport
        transport.set_write_buffer_limits(high=WRITE_HIGH_WATER)
        peer = self.peer or format_peer(transport.get_extra_info("peername"))
        handler_transport: Transport = transport
        loop = listener.loop  # the running loop (asking asyncio for it costs a getpid())
        if listener.config.is_websocket:
            self.websocket = WebSocketTransport(transport, listener.config.ws_path, loop, peer)
            handler_transport = self.websocket
        self.handler = ConnectionHandler(
            listener.ctx,
            handler_transport,
            listener.name,
            peer,
            loop,
            certificate_identity=certificate_identity,
            identity_must_match=listener.config.require_identity_match_client_id,
        )
        if self.websocket is not None:
            self.websocket.receiver = self.handler.data_received

    # -- asyncio callbacks -------------------------------------------------------------------

    def data_received(self, data: bytes) -> None:
        handler = self.handler
        if handler is None:
            return
        if self.websocket is not None:
            self.websocket.feed(data)
        else:
            handler.data_received(data)
        if handler.has_partial_packet():
            if self.partial_since is None:
                self.partial_since = self.listener.loop.time()
                self.listener.suspect(self)
        elif self.partial_since is not None:
            self.partial_since = None
            self.listener.clear(self)

    def eof_received(self) -> bool | None:
        return None  # close our side too

    def connection_lost(self, exc: Exception | None) -> None:
        if self.slot is not None:
            self.slot.release()
        self.listener.closed(self)
        handler, self.handler = self.handler, None
        if handler is not None:
            handler.connection_lost(exc)

    def pause_writing(self) -> None:
        self.paused_since = self.listener.loop.time()
        self.listener.suspect(self)
        if self.handler is not None:
            self.handler.pause_writing()

    def resume_writing(self) -> None:
        self.paused_since = None
        if self.partial_since is None:
            self.listener.clear(self)
        if self.handler is not None:
            self.handler.resume_writing()

    # -- armour ------------------------------------------------------------------------------

    def check_slow(self, now: float) -> bool:
        """Close a connection that stalls: its client has not read what we sent for
        `send_timeout`, or has left a packet unfinished for `packet_timeout`. True if closed."""
        config = self.listener.config
        transport = self.transport
        if transport is None or transport.is_closing():
            return False
        if self.paused_since is not None and now - self.paused_since > config.send_timeout:
            log.info("closing %s: it has not read for %.0f s", self.peer, config.send_timeout)
            self.listener.slow_closed += 1
            transport.abort()
            return True
        if self.partial_since is not None and now - self.partial_since > config.packet_timeout:
            log.info(
                "closing %s: a packet still unfinished after %.0f s",
                self.peer,
                config.packet_timeout,
            )
            self.listener.slow_closed += 1
            transport.abort()
            return True
        return False
