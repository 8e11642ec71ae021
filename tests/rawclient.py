"""A minimal MQTT client over a raw socket, using Roost's codec, for protocol-level tests:
it can send any bytes, and tells apart a DISCONNECT, a CONNACK and a closed connection."""

from __future__ import annotations

import socket
import time

from roost.mqtt.codec import decode, encode, read_frame
from roost.mqtt.constants import ProtocolVersion
from roost.mqtt.packets import Connect, Packet, Properties, Publish, Subscribe, Subscription

MAX = 268_435_460


class Closed(Exception):
    """The broker closed the connection."""


class RawClient:
    def __init__(
        self,
        host: str,
        port: int,
        version: ProtocolVersion = ProtocolVersion.V5,
        timeout: float = 5.0,
        source_address: tuple[str, int] | None = None,
    ) -> None:
        self.sock = socket.create_connection((host, port), timeout, source_address)
        self.version = version
        self.buffer = bytearray()
        self.timeout = timeout

    def send_raw(self, data: bytes) -> None:
        self.sock.sendall(data)

    def send(self, packet: Packet) -> None:
        self.sock.sendall(encode(packet, self.version))

    def connect(
        self,
        client_id: str = "raw",
        clean_start: bool = True,
        keep_alive: int = 60,
        properties: Properties | None = None,
        **kw: object,
    ) -> Packet:
        self.send(
            Connect(
                protocol_name="MQIsdp" if self.version == ProtocolVersion.V31 else "MQTT",
                protocol_version=self.version,
                client_id=client_id,
                clean_start=clean_start,
                keep_alive=keep_alive,
                properties=properties or Properties(),
                **kw,  # type: ignore[arg-type]
            )
        )
        return self.recv()

    def subscribe(self, topic_filter: str, qos: int = 0, packet_id: int = 1) -> Packet:
        self.send(
            Subscribe(
                packet_id=packet_id,
                subscriptions=(Subscription(topic_filter=topic_filter, qos=qos),),
            )
        )
        return self.recv()

    def publish(
        self,
        topic: str,
        payload: bytes = b"",
        qos: int = 0,
        packet_id: int | None = None,
        retain: bool = False,
    ) -> None:
        self.send(
            Publish(topic=topic, payload=payload, qos=qos, packet_id=packet_id, retain=retain)
        )

    def recv(self, timeout: float | None = None) -> Packet:
        """The next packet; raises Closed if the broker closed, TimeoutError if none came."""
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
        while True:
            frame = read_frame(bytes(self.buffer), MAX)
            if frame is not None:
                first, body, length = frame
                packet = decode(first, bytes(body), self.version)
                del self.buffer[:length]
                return packet
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError("no packet")
            self.sock.settimeout(left)
            try:
                chunk = self.sock.recv(65536)
            except TimeoutError as exc:
                raise TimeoutError("no packet") from exc
            except ConnectionResetError as exc:
                raise Closed() from exc
            if not chunk:
                raise Closed()
            self.buffer += chunk

    def expect_closed(self, timeout: float = 5.0) -> list[Packet]:
        """Read until the broker closes; returns what it sent first (e.g. a DISCONNECT)."""
        got: list[Packet] = []
        while True:
            try:
                got.append(self.recv(timeout))
            except Closed:
                return got

    def close(self) -> None:
        self.sock.close()
