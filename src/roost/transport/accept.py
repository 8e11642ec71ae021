"""What happens on a connection before MQTT: admission, the PROXY header and the TLS
handshake; then the connection is handed to an `MQTTProtocol`.

The PROXY header is read with exact-size buffers (asyncio.BufferedProtocol), so not one byte
of what follows it is consumed here: a TLS ClientHello is left for `loop.start_tls`, which
takes the listener's current SSLContext (replaced on reload; open connections keep theirs).
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, cast

from roost.transport.armour import Slot
from roost.transport.proxy import ProxyHeaderError, ProxyHeaderReader
from roost.transport.tcp import MQTTProtocol, format_peer, peer_host
from roost.transport.tls import certificate_identity

if TYPE_CHECKING:
    from roost.server.listeners import Listener

log = logging.getLogger(__name__)

# A TLS handshake is given at least this long, whatever is left of the connect timeout.
MIN_HANDSHAKE_SECONDS = 1.0


class AcceptProtocol(asyncio.BufferedProtocol):
    """The first protocol of a connection on a TLS or PROXY listener."""

    def __init__(self, listener: Listener) -> None:
        self.listener = listener
        self.transport: asyncio.Transport | None = None
        self.slot: Slot | None = None
        self.peer = "-"
        self.address = "-"
        self.reader: ProxyHeaderReader | None = None
        self._buffer = bytearray(256)
        self._deadline = 0.0
        self._timer: asyncio.TimerHandle | None = None
        self._handed_over = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        tcp = cast(asyncio.Transport, transport)
        self.transport = tcp
        peername = tcp.get_extra_info("peername")
        self.peer = format_peer(peername)
        self.address = peer_host(peername)
        self.slot = self.listener.guard.admit(self.peer)
        if self.slot is None:
            tcp.abort()
            return
        loop = self.listener.loop
        timeout = self.listener.ctx.config.mqtt.connect_timeout
        self._deadline = loop.time() + timeout
        self._timer = loop.call_later(timeout, self._on_timeout)
        if self.listener.config.proxy_protocol:
            self.reader = ProxyHeaderReader()
        else:
            self._proceed()

    # -- PROXY header ----------------------------------------------------------------------

    def get_buffer(self, sizehint: int) -> memoryview:
        wanted = self.reader.wanted() if self.reader is not None else 1
        if wanted > len(self._buffer):
            self._buffer = bytearray(wanted)
        return memoryview(self._buffer)[:wanted]

    def buffer_updated(self, nbytes: int) -> None:
        reader = self.reader
        if reader is None or self._handed_over:
            return
        try:
            rest = reader.feed(bytes(self._buffer[:nbytes]))
        except ProxyHeaderError as exc:
            log.info(
                "listener %s: bad PROXY header from %s: %s", self.listener.name, self.peer, exc
            )
            self._abort()
            return
        if rest is None:
            return
        assert not rest, "read past the PROXY header"
        info = reader.result
        if info is not None and info.source is not None:
            host, port = info.source
            self.address = host
            self.peer = format_peer((host, port))
        self.reader = None
        self._proceed()

    # -- hand-over ---------------------------------------------------------------------------

    def _proceed(self) -> None:
        transport, slot = self.transport, self.slot
        assert transport is not None and slot is not None
        if not slot.bind_address(self.address):
            log.warning(
                "listener %s: too many connections from %s", self.listener.name, self.address
            )
            self._abort()
            return
        app = MQTTProtocol(self.listener, slot, self.peer, self.address)
        if self.listener.tls is None:
            self._handed_over = True
            self._cancel_timer()
            transport.set_protocol(app)
            app.start(transport)
            return
        transport.pause_reading()
        self._handed_over = True
        task = self.listener.loop.create_task(self._start_tls(app))
        self.listener.track(task)

    async def _start_tls(self, app: MQTTProtocol) -> None:
        transport, listener = self.transport, self.listener
        assert transport is not None and listener.tls is not None
        timeout = max(MIN_HANDSHAKE_SECONDS, self._deadline - listener.loop.time())
        try:
            tls_transport = await listener.loop.start_tls(
                transport,
                app,
                listener.tls.context,
                server_side=True,
                ssl_handshake_timeout=timeout,
            )
        except Exception as exc:  # handshake failures: bad certificates, timeouts, resets
            log.info("listener %s: TLS handshake with %s failed: %s", listener.name, self.peer, exc)
            self._release()
            return
        finally:
            self._cancel_timer()
        if tls_transport is None or tls_transport.is_closing():
            self._release()
            return
        peercert = tls_transport.get_extra_info("peercert")
        identity = certificate_identity(peercert, listener.config.identity_from)
        app.start(tls_transport, identity)

    # -- ends --------------------------------------------------------------------------------

    def _on_timeout(self) -> None:
        self._timer = None
        if not self._handed_over:
            log.info("listener %s: nothing usable from %s in time", self.listener.name, self.peer)
            self._abort()

    def _cancel_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _abort(self) -> None:
        self._cancel_timer()
        if self.transport is not None:
            self.transport.abort()
        self._release()

    def _release(self) -> None:
        if self.slot is not None:
            self.slot.release()

    def eof_received(self) -> bool | None:
        return None

    def connection_lost(self, exc: Exception | None) -> None:
        if not self._handed_over:
            self._cancel_timer()
            self._release()
