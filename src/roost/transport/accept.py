"""The accept loop of TLS and PROXY listeners: what happens on a connection before MQTT.

Each accepted socket is admitted (listener limits), then, in a task of its own, its PROXY
header is read with exact-size reads (nothing after it is consumed), its source address is
counted, and `loop.connect_accepted_socket` runs the TLS handshake with the listener's
current SSLContext (replaced on reload; open connections keep theirs) and attaches an
`MQTTProtocol`. The whole stage is bounded by the connect timeout.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from typing import TYPE_CHECKING

from roost.transport.armour import Slot
from roost.transport.proxy import ProxyHeaderError, ProxyHeaderReader, ProxyInfo
from roost.transport.tcp import MQTTProtocol, format_peer

if TYPE_CHECKING:
    from roost.server.listeners import Listener

log = logging.getLogger(__name__)

# A TLS handshake is given at least this long, whatever is left of the connect timeout.
MIN_HANDSHAKE_SECONDS = 1.0
# Pause after accept() fails for lack of resources (file descriptors), before retrying.
ACCEPT_RETRY_SECONDS = 0.1


class Refused(Exception):
    """A limit refused the connection after accept."""


async def read_proxy_header(loop: asyncio.AbstractEventLoop, sock: socket.socket) -> ProxyInfo:
    """Read exactly the PROXY header from a connected socket."""
    reader = ProxyHeaderReader()
    while True:
        data = await loop.sock_recv(sock, reader.wanted())
        if not data:
            raise ConnectionError("closed during the PROXY header")
        if reader.feed(data) is not None:
            assert reader.result is not None
            return reader.result


class AcceptLoop:
    """Accepts connections on one listening socket of a TLS or PROXY listener."""

    def __init__(self, listener: Listener, sock: socket.socket) -> None:
        self.listener = listener
        self.sock = sock

    async def run(self) -> None:
        loop = self.listener.loop
        while True:
            try:
                conn, address = await loop.sock_accept(self.sock)
            except OSError as exc:
                log.warning("listener %s: accept failed: %s", self.listener.name, exc)
                await asyncio.sleep(ACCEPT_RETRY_SECONDS)
                continue
            peer = format_peer(address)
            slot = self.listener.guard.admit(peer)
            if slot is None:
                conn.close()
                continue
            conn.setblocking(False)
            self.listener.track(loop.create_task(self.prepare(conn, address, slot)))

    async def prepare(self, conn: socket.socket, address: tuple[str, int], slot: Slot) -> None:
        """PROXY header, per-address limit, TLS handshake, then MQTT."""
        listener = self.listener
        loop = listener.loop
        deadline = loop.time() + listener.ctx.config.mqtt.connect_timeout
        host, peer = str(address[0]), format_peer(address)
        try:
            if listener.config.proxy_protocol:
                async with asyncio.timeout_at(deadline):
                    info = await read_proxy_header(loop, conn)
                if info.source is not None:
                    host, peer = info.source[0], format_peer(info.source)
            if not slot.bind_address(host):
                raise Refused(f"too many connections from {host}")
            protocol = MQTTProtocol(listener, slot, peer, host)
            conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            if listener.tls is None:
                await loop.connect_accepted_socket(lambda: protocol, conn)
            else:
                await loop.connect_accepted_socket(
                    lambda: protocol,
                    conn,
                    ssl=listener.tls.context,
                    ssl_handshake_timeout=max(MIN_HANDSHAKE_SECONDS, deadline - loop.time()),
                )
        except asyncio.CancelledError:
            self._drop(conn, slot)
            raise
        except (ProxyHeaderError, Refused) as exc:
            log.info("listener %s: refused %s: %s", listener.name, peer, exc)
            self._drop(conn, slot)
        except TimeoutError:
            log.info("listener %s: nothing usable from %s in time", listener.name, peer)
            self._drop(conn, slot)
        except Exception as exc:  # TLS handshake failures (certificates), resets
            log.info("listener %s: connection from %s failed: %r", listener.name, peer, exc)
            self._drop(conn, slot)

    @staticmethod
    def _drop(conn: socket.socket, slot: Slot) -> None:
        with contextlib.suppress(OSError):
            conn.close()
        slot.release()


def listening_socket(
    host: str, port: int, backlog: int = 1024, *, reuse_port: bool = False
) -> socket.socket:
    """A non-blocking listening TCP socket (SO_REUSEADDR; SO_REUSEPORT if asked) on host:port."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.create_server((host, port), family=family, backlog=backlog, reuse_port=reuse_port)
    sock.setblocking(False)
    return sock
