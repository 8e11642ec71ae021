"""Fixtures for the transport tests: generated certificates, a broker with one listener
of each kind, and paho clients over any of them."""

from __future__ import annotations

import contextlib
import dataclasses
import socket
import ssl
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest

from roost.config import ListenerConfig
from tests.conftest import BrokerHandle, start_broker
from tests.integration.helpers import V5, Client
from tests.transport.certs import Certificates, Device
from tests.transport.recorder import Recorder

# Listener name -> (paho transport, TLS, client certificate sent by default).
KINDS = {
    "default": ("tcp", False),
    "tls": ("tcp", True),
    "mtls": ("tcp", True),
    "ws": ("websockets", False),
    "wss": ("websockets", True),
}


def listeners_for(certs: Certificates, **overrides: Any) -> tuple[ListenerConfig, ...]:
    """A listener of each transport on 127.0.0.1 port 0, plus mutual-TLS variants."""
    tls = {"tls_certfile": str(certs.server_pem), "tls_keyfile": str(certs.server_pem)}
    mtls = {
        **tls,
        "tls_cafile": str(certs.ca_pem),
        "tls_crlfile": str(certs.crl_pem),
        "client_certificates": "require",
    }

    def make(name: str, transport: str, **kw: Any) -> ListenerConfig:
        return ListenerConfig(
            name=name, transport=transport, host="127.0.0.1", port=0, **{**kw, **overrides}
        )

    return (
        make("tls", "tls", **tls),
        make("mtls", "tls", **mtls),
        make("mtls-match", "tls", **mtls, require_identity_match_client_id=True),
        make("mtls-san", "tls", **mtls, identity_from="san"),
        make("mtls-allow", "tls", **{**mtls, "client_certificates": "allow"}),
        make("ws", "ws"),
        make("wss", "wss", **tls),
        make("wss-mtls", "wss", **mtls),
    )


@pytest.fixture(scope="module")
def recorder() -> Recorder:
    return Recorder()


@pytest.fixture(scope="session")
def certs(tmp_path_factory: pytest.TempPathFactory) -> Certificates:
    return Certificates(tmp_path_factory.mktemp("certs"))


@pytest.fixture(scope="module")
def tbroker(certs: Certificates) -> Iterator[BrokerHandle]:
    """One broker (memory durability) with every kind of listener."""
    handle = start_broker(durability="memory", listeners=listeners_for(certs))
    yield handle
    handle.stop()


def on_listener(handle: BrokerHandle, listener: str) -> BrokerHandle:
    """The same broker, with `port` the port of `listener`."""
    return dataclasses.replace(handle, port=handle.server.ports[listener])


def client_context(
    certs: Certificates, device: Device | None = None, ca: Path | None = None
) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=str(ca or certs.ca_pem))
    if device is not None:
        context.load_cert_chain(str(device.pem))
    return context


class TransportClient(Client):
    """tests.integration.helpers.Client over TLS and / or WebSocket."""

    def __init__(
        self,
        handle: BrokerHandle,
        listener: str,
        certs: Certificates,
        client_id: str = "",
        version: int = V5,
        clean_session: bool | None = None,
        device: Device | None = None,
    ) -> None:
        super().__init__(
            on_listener(handle, listener), client_id, version=version, clean_session=clean_session
        )
        transport = "websockets" if listener.startswith("ws") else "tcp"
        kwargs: dict[str, Any] = {"client_id": client_id, "protocol": version}
        if version != V5:
            kwargs["clean_session"] = True if clean_session is None else clean_session
        old, self.paho = (
            self.paho,
            mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, transport=transport, **kwargs),
        )
        for name in (
            "on_connect",
            "on_disconnect",
            "on_message",
            "on_subscribe",
            "on_unsubscribe",
            "on_publish",
        ):
            setattr(self.paho, name, getattr(old, name))
        self.client_id = self.paho._client_id.decode()
        if listener.startswith(("tls", "mtls", "wss")):
            if device is None and "mtls" in listener:
                device = certs.device
            self.paho.tls_set_context(client_context(certs, device))
        if transport == "websockets":
            self.paho.ws_set_options(path="/mqtt")

    def connect(self, *args: Any, **kwargs: Any) -> Any:
        """As the base class; then writes from the test thread only queue for the client's
        own thread (paho's WebSocket wrapper is not safe for writes from two threads)."""
        try:
            return super().connect(*args, **kwargs)
        finally:
            if self._thread is not None:
                self.paho._thread = self._thread

    def _close_socket(self) -> None:
        sock = self.paho.socket()
        if sock is None:
            return
        raw = getattr(sock, "_socket", sock)  # paho's WebSocket wrapper holds the socket
        with contextlib.suppress(OSError):
            raw.shutdown(socket.SHUT_RDWR)
        with contextlib.suppress(OSError):
            sock.close()


def tls_socket(port: int, context: ssl.SSLContext) -> ssl.SSLSocket:
    raw = socket.create_connection(("127.0.0.1", port), timeout=5)
    return context.wrap_socket(raw, server_hostname="localhost")
