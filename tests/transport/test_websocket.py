"""MQTT over WebSocket (MQTT 5.0 section 6): upgrade, subprotocols, path, binary frames only,
packets split over frames and frames holding several packets, ping, close; paho over WS/WSS."""

from __future__ import annotations

from typing import Any

import pytest
from wsproto.events import AcceptConnection, CloseConnection, Ping, Pong, RejectConnection

from roost.mqtt.codec import encode
from roost.mqtt.constants import ProtocolVersion
from roost.mqtt.packets import Connack, Connect, Disconnect, Pingreq, Pingresp, Properties
from tests.conftest import BrokerHandle
from tests.integration.helpers import V5, V311
from tests.transport.certs import Certificates
from tests.transport.conftest import TransportClient, client_context
from tests.transport.wsclient import WSClient

V5P = ProtocolVersion.V5


def connect_bytes(client_id: str, version: ProtocolVersion = V5P) -> bytes:
    return encode(
        Connect(
            protocol_name="MQTT",
            protocol_version=version,
            client_id=client_id,
            clean_start=True,
            keep_alive=30,
            properties=Properties(),
        ),
        version,
    )


def ws_port(handle: BrokerHandle, name: str = "ws") -> int:
    return int(handle.server.ports[name])


@pytest.mark.parametrize("version", [V311, V5])
@pytest.mark.parametrize("listener", ["ws", "wss"])
def test_paho_over_websocket(
    tbroker: BrokerHandle, certs: Certificates, version: int, listener: str
) -> None:
    sub = TransportClient(tbroker, listener, certs, f"{listener}-s-{version}", version=version)
    pub = TransportClient(tbroker, listener, certs, f"{listener}-p-{version}", version=version)
    try:
        sub.connect()
        pub.connect()
        assert sub.subscribe("ws/+", 1) == [1]
        for i in range(20):
            pub.publish("ws/t", f"m{i}".encode(), 1)
        got = [m.payload for m in sub.expect_messages(20)]
        assert got == [f"m{i}".encode() for i in range(20)]
    finally:
        sub.close()
        pub.close()


@pytest.mark.parametrize(
    ("offered", "chosen"),
    [(("mqtt",), "mqtt"), (("mqttv3.1",), "mqttv3.1"), (("chat", "mqttv3.1", "mqtt"), "mqtt")],
)
def test_subprotocol_negotiation(tbroker: BrokerHandle, offered: Any, chosen: str) -> None:
    c = WSClient(ws_port(tbroker), subprotocols=offered)
    event = c.handshake()
    assert isinstance(event, AcceptConnection) and event.subprotocol == chosen
    c.send(connect_bytes(f"sp-{chosen}"))
    assert isinstance(c.recv_packet(), Connack)
    c.close()


def test_no_mqtt_subprotocol_is_refused(tbroker: BrokerHandle) -> None:
    c = WSClient(ws_port(tbroker), subprotocols=("chat",))
    event = c.handshake()
    assert isinstance(event, RejectConnection) and event.status_code == 400
    c.close()


def test_other_path_is_not_found(tbroker: BrokerHandle) -> None:
    c = WSClient(ws_port(tbroker), path="/other")
    event = c.handshake()
    assert isinstance(event, RejectConnection) and event.status_code == 404
    c.close()


def test_query_string_is_ignored_for_the_path(tbroker: BrokerHandle) -> None:
    c = WSClient(ws_port(tbroker), path="/mqtt?token=1")
    assert isinstance(c.handshake(), AcceptConnection)
    c.close()


def test_plain_http_request_is_refused(tbroker: BrokerHandle) -> None:
    import socket

    sock = socket.create_connection(("127.0.0.1", ws_port(tbroker)), timeout=5)
    sock.sendall(b"GET /mqtt HTTP/1.1\r\nHost: localhost\r\n\r\n")
    answer = b""
    while chunk := sock.recv(4096):
        answer += chunk
    assert answer.startswith(b"HTTP/1.1 4"), answer[:40]
    sock.close()


def test_text_frame_closes_the_connection(tbroker: BrokerHandle) -> None:
    """[MQTT-6.0.0-1]: data not in binary frames closes the Network Connection."""
    c = WSClient(ws_port(tbroker))
    c.handshake()
    c.send(connect_bytes("text"))
    assert isinstance(c.recv_packet(), Connack)
    c.sock.sendall(c.ws.send(__import__("wsproto").events.TextMessage(data="hello")))
    events = c.wait_closed()
    assert any(isinstance(e, CloseConnection) and e.code == 1003 for e in events), events


def test_packets_split_over_frames_and_many_in_one_frame(tbroker: BrokerHandle) -> None:
    """[MQTT-6.0.0-2]: a frame may hold several or partial MQTT packets."""
    c = WSClient(ws_port(tbroker))
    c.handshake()
    data = connect_bytes("split")
    for i in range(len(data)):
        c.send(data[i : i + 1], final=True)
    assert isinstance(c.recv_packet(), Connack)
    c.send(encode(Pingreq(), V5P) * 5)
    for _ in range(5):
        assert isinstance(c.recv_packet(), Pingresp)
    # One MQTT packet in a fragmented WebSocket message.
    ping = encode(Pingreq(), V5P)
    c.send(ping[:1], final=False)
    c.send(ping[1:], final=True)
    assert isinstance(c.recv_packet(), Pingresp)
    c.close()


def test_handshake_and_connect_a_byte_at_a_time(tbroker: BrokerHandle) -> None:
    c = WSClient(ws_port(tbroker))
    for byte in c.request_bytes():
        c.sock.sendall(bytes((byte,)))
    assert isinstance(c.next_event((AcceptConnection,)), AcceptConnection)
    c.send(connect_bytes("bytewise"))
    assert isinstance(c.recv_packet(), Connack)
    c.close()


def test_ping_is_answered_with_pong(tbroker: BrokerHandle) -> None:
    c = WSClient(ws_port(tbroker))
    c.handshake()
    c.send_event(Ping(payload=b"hi"))
    pong = c.next_event((Pong,))
    assert isinstance(pong, Pong) and pong.payload == b"hi"
    c.close()


def test_client_close_frame_is_answered_and_the_session_ends(tbroker: BrokerHandle) -> None:
    c = WSClient(ws_port(tbroker))
    c.handshake()
    c.send(connect_bytes("closer"))
    assert isinstance(c.recv_packet(), Connack)
    c.send_event(CloseConnection(code=1000))
    events = c.wait_closed()
    assert any(isinstance(e, CloseConnection) for e in events), events

    def gone() -> bool:
        return ("default", "closer") not in tbroker.server.ctx.connections

    import time

    deadline = time.monotonic() + 3
    while not tbroker.call(gone):
        assert time.monotonic() < deadline
        time.sleep(0.02)


def test_server_disconnect_sends_a_close_frame(tbroker: BrokerHandle) -> None:
    c = WSClient(ws_port(tbroker))
    c.handshake()
    c.send(connect_bytes("taken"))
    assert isinstance(c.recv_packet(), Connack)
    d = WSClient(ws_port(tbroker))
    d.handshake()
    d.send(connect_bytes("taken"))
    assert isinstance(d.recv_packet(), Connack)
    disconnect = c.recv_packet()
    assert isinstance(disconnect, Disconnect) and disconnect.reason_code == 0x8E
    events = c.wait_closed()
    assert any(isinstance(e, CloseConnection) and e.code == 1000 for e in events), events
    d.close()


def test_wss_with_raw_client(tbroker: BrokerHandle, certs: Certificates) -> None:
    c = WSClient(ws_port(tbroker, "wss"), context=client_context(certs))
    assert isinstance(c.handshake(), AcceptConnection)
    c.send(connect_bytes("wss-raw"))
    assert isinstance(c.recv_packet(), Connack)
    c.close()
