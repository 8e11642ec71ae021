"""MQTT over WebSocket (MQTT 5.0 section 6): the HTTP upgrade, subprotocol negotiation and
binary frames, with wsproto, between a byte-stream transport and the MQTT handler.

`WebSocketTransport` looks to the handler like any other transport: `write` sends one
binary message, `close` a Close frame. Flow control stays with the transport underneath
(its pause_writing / resume_writing reach the handler through the protocol as for TCP).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from typing import Any

from wsproto import ConnectionType, WSConnection
from wsproto.connection import ConnectionState
from wsproto.events import (
    AcceptConnection,
    BytesMessage,
    CloseConnection,
    Event,
    Ping,
    RejectConnection,
    Request,
    TextMessage,
)
from wsproto.utilities import LocalProtocolError, RemoteProtocolError

log = logging.getLogger(__name__)

# Subprotocols accepted, in order of preference: "mqtt" is the standard name
# [MQTT-6.0.0-3] [MQTT-6.0.0-4]; "mqttv3.1" is what some 3.1 clients offer.
SUBPROTOCOLS = ("mqtt", "mqttv3.1")
# How long after our Close frame we wait for the peer's before closing the socket.
CLOSE_LINGER_SECONDS = 2.0
# Close codes (RFC 6455 section 7.4.1).
NORMAL_CLOSURE = 1000
UNSUPPORTED_DATA = 1003
POLICY_VIOLATION = 1008


def choose_subprotocol(offered: list[str]) -> str | None:
    for name in SUBPROTOCOLS:
        if name in offered:
            return name
    return None


class WebSocketTransport:
    """The handler's transport over one WebSocket connection."""

    def __init__(
        self, raw: asyncio.Transport, path: str, loop: asyncio.AbstractEventLoop, peer: str
    ) -> None:
        self.raw = raw
        self.path = path
        self.loop = loop
        self.peer = peer
        self.ws = WSConnection(ConnectionType.SERVER)
        self.receiver: Callable[[bytes], None] | None = None
        self.subprotocol: str | None = None
        self._closing = False

    @property
    def open(self) -> bool:
        return self.ws.state is ConnectionState.OPEN

    # -- input -----------------------------------------------------------------------------

    def feed(self, data: bytes) -> None:
        """Bytes from the network: upgrade, then the payload of binary frames to the handler."""
        if self.raw.is_closing():
            return
        try:
            self.ws.receive_data(data)
            for event in self.ws.events():
                self._on_event(event)
                if self.raw.is_closing():
                    return
        except RemoteProtocolError as exc:
            log.info("bad WebSocket input from %s: %s", self.peer, exc)
            self._fail(exc)
        except LocalProtocolError:  # input after the connection was closed
            self.raw.close()

    def _on_event(self, event: Event) -> None:
        if isinstance(event, BytesMessage):
            if self.receiver is not None and not self._closing and event.data:
                self.receiver(bytes(event.data))
        elif isinstance(event, Request):
            self._on_request(event)
        elif isinstance(event, Ping):
            self._send(event.response())
        elif isinstance(event, CloseConnection):
            if self.ws.state is ConnectionState.REMOTE_CLOSING:
                self._send(event.response())
            self._closing = True
            self.raw.close()
        elif isinstance(event, TextMessage):
            # MQTT travels in binary frames only; anything else closes [MQTT-6.0.0-1].
            log.info("text WebSocket frame from %s: closing", self.peer)
            self._close_with(UNSUPPORTED_DATA, "binary frames only")
            self.raw.close()
        # Pong and anything else: nothing to do.

    def _on_request(self, request: Request) -> None:
        path = request.target.split("?", 1)[0]
        if path != self.path:
            log.info("WebSocket upgrade from %s for %r refused: not found", self.peer, path)
            self._reject(404)
            return
        subprotocol = choose_subprotocol(list(request.subprotocols))
        if subprotocol is None:
            log.info(
                "WebSocket upgrade from %s refused: no mqtt subprotocol in %s",
                self.peer,
                request.subprotocols,
            )
            self._reject(400)
            return
        self.subprotocol = subprotocol
        self._send(AcceptConnection(subprotocol=subprotocol))

    def _reject(self, status: int) -> None:
        self._closing = True
        self._send(RejectConnection(status_code=status, headers=[(b"content-length", b"0")]))
        self.raw.close()

    def _fail(self, exc: RemoteProtocolError) -> None:
        self._closing = True
        hint = exc.event_hint
        if isinstance(hint, RejectConnection | CloseConnection):
            with contextlib.suppress(LocalProtocolError):
                self._send(hint)
        self.raw.close()

    def _send(self, event: Event) -> None:
        data = self.ws.send(event)
        if data and not self.raw.is_closing():
            self.raw.write(data)

    def _close_with(self, code: int, reason: str) -> None:
        self._closing = True
        if self.open:
            self._send(CloseConnection(code=code, reason=reason))

    # -- the handler's Transport -------------------------------------------------------------

    def write(self, data: bytes) -> None:
        if self._closing or not self.open or self.raw.is_closing():
            return
        self.raw.write(self.ws.send(BytesMessage(data=data)))

    def close(self) -> None:
        """Close frame, then the socket once the peer answers (or after a short linger)."""
        if self._closing:
            if not self.raw.is_closing():
                self.loop.call_later(CLOSE_LINGER_SECONDS, self.raw.abort)
            return
        if self.open:
            self._close_with(NORMAL_CLOSURE, "")
            self.loop.call_later(CLOSE_LINGER_SECONDS, self.raw.abort)
        else:
            self._closing = True
            self.raw.close()

    def abort(self) -> None:
        self._closing = True
        self.raw.abort()

    def is_closing(self) -> bool:
        return self._closing or self.raw.is_closing()

    def can_write_eof(self) -> bool:
        return False

    def write_eof(self) -> None:
        self.close()

    def pause_reading(self) -> None:
        """The handler has input left for later turns: stop reading the socket meanwhile."""
        if not self.raw.is_closing():
            self.raw.pause_reading()

    def resume_reading(self) -> None:
        if not self.raw.is_closing():
            self.raw.resume_reading()

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return self.raw.get_extra_info(name, default)
