"""A minimal WebSocket client over a blocking socket (wsproto), for protocol-level tests."""

from __future__ import annotations

import socket
import ssl

from wsproto import ConnectionType, WSConnection
from wsproto.events import (
    AcceptConnection,
    BytesMessage,
    CloseConnection,
    Event,
    Message,
    Ping,
    Pong,
    RejectConnection,
    RejectData,
    Request,
    TextMessage,
)

from roost.mqtt.codec import decode, read_frame
from roost.mqtt.constants import ProtocolVersion
from roost.mqtt.packets import Packet

MAX = 268_435_460


class WSClient:
    def __init__(
        self,
        port: int,
        path: str = "/mqtt",
        subprotocols: tuple[str, ...] = ("mqtt",),
        context: ssl.SSLContext | None = None,
        timeout: float = 5.0,
    ) -> None:
        sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        if context is not None:
            sock = context.wrap_socket(sock, server_hostname="localhost")
        self.sock = sock
        self.ws = WSConnection(ConnectionType.CLIENT)
        self.path = path
        self.subprotocols = list(subprotocols)
        self.mqtt = bytearray()
        self.events: list[Event] = []
        self.closed = False

    def request_bytes(self) -> bytes:
        return self.ws.send(
            Request(host="localhost", target=self.path, subprotocols=self.subprotocols)
        )

    def handshake(self) -> Event:
        """Send the upgrade request; the AcceptConnection or RejectConnection event."""
        self.sock.sendall(self.request_bytes())
        return self.next_event((AcceptConnection, RejectConnection))

    def next_event(self, kinds: tuple[type, ...]) -> Event:
        while True:
            for i, event in enumerate(self.events):
                if isinstance(event, kinds):
                    return self.events.pop(i)
            self._read()

    def _read(self) -> None:
        data = self.sock.recv(65536)
        if not data:
            self.closed = True
            raise ConnectionError("closed")
        self.ws.receive_data(data)
        for event in self.ws.events():
            if isinstance(event, BytesMessage):
                self.mqtt += event.data
            else:
                self.events.append(event)

    def send(self, data: bytes, final: bool = True) -> None:
        self.sock.sendall(self.ws.send(Message(data=data, message_finished=final)))

    def send_event(self, event: Event) -> None:
        self.sock.sendall(self.ws.send(event))

    def recv_packet(self, version: ProtocolVersion = ProtocolVersion.V5) -> Packet:
        while True:
            frame = read_frame(bytes(self.mqtt), MAX)
            if frame is not None:
                first, body, length = frame
                packet = decode(first, body, version)
                body.release()
                del self.mqtt[:length]
                return packet
            self._read()

    def wait_closed(self) -> list[Event]:
        """Read until the server closes the socket; the events seen on the way."""
        try:
            while True:
                self._read()
        except (ConnectionError, OSError):
            pass
        return self.events

    def close(self) -> None:
        self.sock.close()


__all__ = [
    "AcceptConnection",
    "CloseConnection",
    "Ping",
    "Pong",
    "RejectConnection",
    "RejectData",
    "TextMessage",
    "WSClient",
]
