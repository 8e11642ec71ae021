"""Closing connections over real sockets: the server survives peers that are already gone."""

from __future__ import annotations

import asyncio
import socket
import struct
import threading
import time

from roost.mqtt.constants import ProtocolVersion
from tests.integration.helpers import V311, raw


def test_server_stop_with_a_peer_already_reset_mqtt_3_14_4(broker_factory):
    """[MQTT-3.14.4-1] / section 4.13: when the server shuts down it closes every Network
    Connection; a client whose connection was already reset must not make that fail.

    The shutdown starts on the broker's loop before it has read the reset (the loop is
    held busy on purpose), so the server half-closes a socket that is no longer
    connected."""
    handle = broker_factory()
    client = raw(handle, ProtocolVersion.V311)
    client.connect("gone")
    started, closed = threading.Event(), threading.Event()

    async def stop_after_reset() -> None:
        started.set()
        closed.wait(5)  # blocks the loop: the reset is not read before stop()
        time.sleep(0.05)
        await handle.server.stop()

    done = asyncio.run_coroutine_threadsafe(stop_after_reset(), handle.loop)
    assert started.wait(5)
    client.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    client.close()  # RST, not FIN
    closed.set()
    done.result(10)  # no OSError (ENOTCONN) out of RoostServer.stop()


def test_server_shutdown_sends_disconnect_0x8b_to_v5_clients_mqtt_4_13(
    broker_factory, client_factory
):
    """v5 4.13 / 3.14.2.1: a server shutting down sends DISCONNECT 0x8B (Server shutting
    down) to v5 clients before closing [MQTT-3.14.0-1]; 3.1.1 clients see the connection
    closed."""
    handle = broker_factory()
    v5 = client_factory(handle, "v5-client")
    v5.connect()
    v311 = client_factory(handle, "v311-client", version=V311)
    v311.connect()
    handle.stop()
    assert v5.expect_disconnect().reason_code == 0x8B
    v311.expect_disconnect()
