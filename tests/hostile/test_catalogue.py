"""The hostile-input catalogue: one named regression test per class of input behind known
MQTT broker CVEs. Each checks the spec's reaction, that the broker keeps serving others,
and (for floods) that memory stays bounded."""

from __future__ import annotations

import contextlib
import socket
import time

import pytest

from roost.mqtt.codec import encode
from roost.mqtt.constants import ProtocolVersion, ReasonCode
from roost.mqtt.packets import (
    Connack,
    Connect,
    Pingreq,
    Pingresp,
    Puback,
    Publish,
    Pubrec,
    Suback,
    Subscribe,
    Subscription,
)
from tests.conformance.support import (
    V5,
    V311,
    assert_broker_serves,
    client,
    connected,
    expect_bare_close,
    expect_disconnect,
)
from tests.conftest import BrokerHandle
from tests.hostile.conftest import CONNECT_TIMEOUT, rss_mb
from tests.rawclient import RawClient
from tests.vectors import MQTT, pkt, props, s, up

# How much the process may grow while a flood test runs.
MEMORY_SLACK_MB = 64.0


def raw_string(data: bytes) -> str:
    """A UTF-8 Encoded String field holding arbitrary bytes (hex)."""
    return f"{len(data):04x}" + data.hex()


def on(handle: BrokerHandle, listener: str, version: ProtocolVersion = V5) -> RawClient:
    return RawClient(handle.host, handle.server.ports[listener], version=version, timeout=3.0)


def closes_within(c: RawClient, seconds: float) -> list[object]:
    started = time.monotonic()
    got = c.expect_closed(seconds + 2)
    assert time.monotonic() - started < seconds + 2
    return list(got)


# -- lengths -----------------------------------------------------------------------------


def test_huge_remaining_length_without_body_before_connect(hbroker: BrokerHandle) -> None:
    """A CONNECT declaring 256 MB is refused from its header, not after a body arrives."""
    c = client(hbroker)
    c.send_raw(b"\x10\xff\xff\xff\x7f")
    started = time.monotonic()
    expect_bare_close(c)
    assert time.monotonic() - started < CONNECT_TIMEOUT / 2
    assert_broker_serves(hbroker)


def test_huge_remaining_length_without_body_after_connect(hbroker: BrokerHandle) -> None:
    """v5: DISCONNECT 0x95 Packet too large at once [MQTT-3.2.2-15 server side]."""
    c = connected(hbroker)
    c.send_raw(b"\x30\xff\xff\xff\x7f")
    expect_disconnect(c, ReasonCode.PACKET_TOO_LARGE)
    c3 = connected(hbroker, V311)
    c3.send_raw(b"\x30\xff\xff\xff\x7f")
    expect_bare_close(c3)
    assert_broker_serves(hbroker)


@pytest.mark.parametrize("version", [V5, V311])
def test_five_byte_remaining_length(hbroker: BrokerHandle, version: ProtocolVersion) -> None:
    """[MQTT-1.5.5]: at most four bytes; a fifth is a Malformed Packet (v5 0x81)."""
    c = connected(hbroker, version)
    c.send_raw(b"\x30\xff\xff\xff\xff\x01")
    if version == V5:
        expect_disconnect(c, ReasonCode.MALFORMED_PACKET)
    else:
        expect_bare_close(c)
    assert_broker_serves(hbroker)


def test_non_minimal_remaining_length(hbroker: BrokerHandle) -> None:
    """Non-minimal encodings of a length are read as their value (Roost's codec is liberal
    here, see mqtt/wire.py); nothing larger is allocated for them."""
    c = connected(hbroker)
    for encoded in (b"\xc0\x80\x00", b"\xc0\x80\x80\x00", b"\xc0\x80\x80\x80\x00"):
        c.send_raw(encoded)
        assert isinstance(c.recv(), Pingresp)
    c.close()
    assert_broker_serves(hbroker)


def test_truncated_packets(hbroker: BrokerHandle) -> None:
    """A length field pointing past the end of its packet is Malformed (0x81); a packet cut
    off by the peer's close frees the connection; one left unfinished is closed after
    packet_timeout."""
    c = connected(hbroker)
    c.send_raw(bytes.fromhex(pkt("30", "000a 6162")))  # topic length 10, 2 bytes present
    expect_disconnect(c, ReasonCode.MALFORMED_PACKET)
    d = connected(hbroker, client_id="cut-off")
    d.send_raw(b"\x30\x64" + b"\x00\x01t" + b"x" * 10)  # 100 declared, 13 sent
    d.close()
    e = on(hbroker, "armoured")
    assert e.connect(client_id="unfinished", keep_alive=0).reason_code == 0  # type: ignore[attr-defined]
    e.send_raw(b"\x30\x64\x00\x01t")
    closes_within(e, 1.0 + 1.0)
    assert_broker_serves(hbroker)


# -- strings -----------------------------------------------------------------------------

BAD_STRINGS = {
    "nul": b"a\x00b",
    "invalid-utf8": b"a\xffb",
    "surrogate": b"\xed\xa0\x80",
    "overlong": b"\xc0\xaf",
}

CONNECT_FIELDS = {
    # CONNECT with the bad string in one field (v5, clean start, keep alive 60).
    "client-id": lambda bad: pkt("10", MQTT, "05 02 003c", props(), raw_string(bad)),
    "username": lambda bad: pkt("10", MQTT, "05 82 003c", props(), s("c"), raw_string(bad)),
    "will-topic": lambda bad: pkt(
        "10", MQTT, "05 06 003c", props(), s("c"), props(), raw_string(bad), "0000"
    ),
    "will-content-type": lambda bad: pkt(
        "10", MQTT, "05 06 003c", props(), s("c"), props("03" + raw_string(bad)), s("w"), "0000"
    ),
    "user-property-name": lambda bad: pkt(
        "10", MQTT, "05 02 003c", props("26" + raw_string(bad) + s("v")), s("c")
    ),
    "auth-method": lambda bad: pkt("10", MQTT, "05 02 003c", props("15" + raw_string(bad)), s("c")),
}

PACKET_FIELDS = {
    # Packets sent after a successful CONNECT.
    "publish-topic": lambda bad: pkt("30", raw_string(bad), props()),
    "publish-content-type": lambda bad: pkt("30", s("t"), props("03" + raw_string(bad))),
    "publish-response-topic": lambda bad: pkt("30", s("t"), props("08" + raw_string(bad))),
    "publish-user-property-value": lambda bad: pkt(
        "30", s("t"), props("26" + s("k") + raw_string(bad))
    ),
    "subscribe-filter": lambda bad: pkt("82", "0001", props(), raw_string(bad), "00"),
    "unsubscribe-filter": lambda bad: pkt("a2", "0001", props(), raw_string(bad)),
    "disconnect-reason-string": lambda bad: pkt("e0", "00", props("1f" + raw_string(bad))),
}


@pytest.mark.parametrize("bad", list(BAD_STRINGS), ids=list(BAD_STRINGS))
@pytest.mark.parametrize("field", list(CONNECT_FIELDS))
def test_bad_utf8_in_connect_fields(hbroker: BrokerHandle, field: str, bad: str) -> None:
    """[MQTT-1.5.4-1] [MQTT-1.5.4-2]: ill-formed UTF-8 or U+0000 is a Malformed Packet: the
    CONNECT is refused (CONNACK 0x81 or a bare close)."""
    c = client(hbroker)
    c.send_raw(bytes.fromhex(CONNECT_FIELDS[field](BAD_STRINGS[bad])))
    packets = c.expect_closed(3.0)
    assert all(isinstance(p, Connack) and p.reason_code >= 0x80 for p in packets), packets


@pytest.mark.parametrize("bad", list(BAD_STRINGS), ids=list(BAD_STRINGS))
@pytest.mark.parametrize("field", list(PACKET_FIELDS))
def test_bad_utf8_in_packet_fields(hbroker: BrokerHandle, field: str, bad: str) -> None:
    """The same after CONNECT: DISCONNECT 0x81 Malformed Packet, then close."""
    c = connected(hbroker)
    c.send_raw(bytes.fromhex(PACKET_FIELDS[field](BAD_STRINGS[bad])))
    expect_disconnect(c, ReasonCode.MALFORMED_PACKET)


def test_bad_strings_leave_the_broker_serving(hbroker: BrokerHandle) -> None:
    assert_broker_serves(hbroker)


# -- topics ------------------------------------------------------------------------------


@pytest.mark.parametrize("topic", ["a/+", "a/#", "#", "+", "a/b+", "sport/#/x"])
def test_wildcards_in_publish_topic(hbroker: BrokerHandle, topic: str) -> None:
    """[MQTT-3.3.2-2]: no wildcards in a Topic Name: v5 DISCONNECT 0x90, 3.1.1 close."""
    c = connected(hbroker)
    c.send_raw(bytes.fromhex(pkt("30", s(topic), props(), "00")))
    expect_disconnect(c, ReasonCode.TOPIC_NAME_INVALID)
    c3 = connected(hbroker, V311)
    c3.send_raw(bytes.fromhex(pkt("30", s(topic), "00")))
    expect_bare_close(c3)


def test_very_deep_topics_and_filters(hbroker: BrokerHandle) -> None:
    """Topics and filters deeper than max_topic_levels (128) are refused before the trie
    sees them; within the limit they work."""
    deep = "/".join(["a"] * 20_000)
    c = connected(hbroker)
    suback = c.subscribe(deep + "/#", qos=1)
    assert isinstance(suback, Suback) and suback.reason_codes == (ReasonCode.TOPIC_FILTER_INVALID,)
    c.publish(deep, b"x")
    expect_disconnect(c, ReasonCode.TOPIC_NAME_INVALID)
    ok = "/".join(["l"] * 128)
    d = connected(hbroker)
    suback = d.subscribe(ok, qos=0)
    assert isinstance(suback, Suback) and suback.reason_codes == (0,)
    d.publish(ok, b"deep")
    message = d.recv()
    assert isinstance(message, Publish) and message.topic == ok
    d.close()
    assert_broker_serves(hbroker)


# -- properties ---------------------------------------------------------------------------


def test_flood_of_user_properties(hbroker: BrokerHandle) -> None:
    """~170,000 user properties in one 1 MB PUBLISH: refused with PUBACK 0x97 (more than
    max_user_properties); memory stays bounded; on CONNECT: CONNACK 0x97."""
    before = rss_mb()
    flood = up("k", "") * 170_000  # 6 bytes each
    c = connected(hbroker)
    c.send_raw(bytes.fromhex(pkt("32", s("flood"), "0001", props(flood), "00")))
    ack = c.recv(10)
    assert isinstance(ack, Puback) and ack.reason_code == ReasonCode.QUOTA_EXCEEDED
    c.close()
    d = client(hbroker)
    d.send_raw(bytes.fromhex(pkt("10", MQTT, "05 02 003c", props(up("k", "") * 5_000), s("f"))))
    connack = d.recv()
    assert isinstance(connack, Connack) and connack.reason_code == ReasonCode.QUOTA_EXCEEDED
    assert rss_mb() - before < MEMORY_SLACK_MB
    assert_broker_serves(hbroker)


@pytest.mark.parametrize(
    "duplicated",
    ["0100 0101", "0200000001 0200000002", "03" + s("a") + "03" + s("b"), "2300 01 2300 02"],
    ids=["payload-format", "message-expiry", "content-type", "topic-alias"],
)
def test_duplicated_properties(hbroker: BrokerHandle, duplicated: str) -> None:
    """A property other than User Property / Subscription Identifier given twice is a
    Protocol Error (v5 section 2.2.2.2): DISCONNECT 0x82."""
    c = connected(hbroker)
    c.send_raw(bytes.fromhex(pkt("30", s("dup"), props(duplicated), "00")))
    expect_disconnect(c, ReasonCode.PROTOCOL_ERROR)


def test_property_length_beyond_the_packet(hbroker: BrokerHandle) -> None:
    c = connected(hbroker)
    c.send_raw(bytes.fromhex(pkt("30", s("t"), "7f 01")))
    expect_disconnect(c, ReasonCode.MALFORMED_PACKET)
    assert_broker_serves(hbroker)


# -- flags and packet types ------------------------------------------------------------------


MAL = ReasonCode.MALFORMED_PACKET
RESERVED = {
    "subscribe": (pkt("80", "0001", props(), s("t"), "00"), MAL),  # [MQTT-3.8.1-1]
    "unsubscribe": (pkt("a0", "0001", props(), s("t")), MAL),  # [MQTT-3.10.1-1]
    "pubrel": (pkt("60", "0001"), MAL),  # [MQTT-3.6.1-1]
    "publish-qos3": (pkt("36", s("t"), "0001", props()), MAL),  # [MQTT-3.3.1-4]
    "pingreq": (pkt("c1"), MAL),
    "disconnect": (pkt("e2", "00"), MAL),
    "options-reserved": (pkt("82", "0001", props(), s("t"), "c0"), MAL),  # [MQTT-3.8.3-5]
    # Maximum QoS 3 and Retain Handling 3 are Protocol Errors (v5 section 3.8.3.1).
    "options-qos3": (pkt("82", "0001", props(), s("t"), "03"), ReasonCode.PROTOCOL_ERROR),
    "options-retain-handling-3": (
        pkt("82", "0001", props(), s("t"), "30"),
        ReasonCode.PROTOCOL_ERROR,
    ),
}


@pytest.mark.parametrize("case", list(RESERVED))
def test_reserved_flag_bits(hbroker: BrokerHandle, case: str) -> None:
    """Reserved bits set: Malformed Packet (DISCONNECT 0x81); reserved values of the
    subscription options: Protocol Error (0x82)."""
    data, code = RESERVED[case]
    c = connected(hbroker)
    c.send_raw(bytes.fromhex(data))
    expect_disconnect(c, code)


def test_reserved_connect_flag(hbroker: BrokerHandle) -> None:
    """[MQTT-3.1.2-3]: the reserved CONNECT flag must be 0, else close."""
    c = client(hbroker)
    c.send_raw(bytes.fromhex(pkt("10", MQTT, "05 03 003c", props(), s("c"))))
    packets = c.expect_closed(3.0)
    assert all(isinstance(p, Connack) and p.reason_code >= 0x80 for p in packets), packets


@pytest.mark.parametrize(
    "data",
    ["20020000", pkt("90", "0001", "00", "00"), pkt("b0", "0001", "00"), "d000"],
    ids=["connack", "suback", "unsuback", "pingresp"],
)
def test_server_only_packets_sent_by_a_client(hbroker: BrokerHandle, data: str) -> None:
    """v5: DISCONNECT 0x82 Protocol Error; 3.1.1: close."""
    c = connected(hbroker)
    c.send_raw(bytes.fromhex(data))
    expect_disconnect(c, ReasonCode.PROTOCOL_ERROR)


def test_second_connect(hbroker: BrokerHandle) -> None:
    """[MQTT-3.1.0-2]: a second CONNECT is a Protocol Error: v5 DISCONNECT 0x82, 3.1.1 close."""
    c = connected(hbroker)
    c.send(Connect(protocol_name="MQTT", protocol_version=V5, client_id="again"))
    expect_disconnect(c, ReasonCode.PROTOCOL_ERROR)
    c3 = connected(hbroker, V311)
    c3.send(Connect(protocol_name="MQTT", protocol_version=V311, client_id="again"))
    expect_bare_close(c3)
    assert_broker_serves(hbroker)


@pytest.mark.parametrize(
    "packet",
    [
        Publish(topic="t", payload=b"x"),
        Pingreq(),
        Subscribe(packet_id=1, subscriptions=(Subscription(topic_filter="t"),)),
    ],
    ids=["publish", "pingreq", "subscribe"],
)
def test_packets_before_connect(hbroker: BrokerHandle, packet: object) -> None:
    """[MQTT-3.1.0-1]: the first packet must be CONNECT: close without answer."""
    c = client(hbroker)
    c.send_raw(encode(packet, V5))  # type: ignore[arg-type]
    expect_bare_close(c)


@pytest.mark.parametrize("client_id", ["+", "#", "a/+", "dev#1"])
@pytest.mark.parametrize("version", [V5, V311])
def test_client_ids_with_wildcards(
    hbroker: BrokerHandle, client_id: str, version: ProtocolVersion
) -> None:
    """Client ids end up in topic templates and ACL patterns: one holding `+` or `#` is
    refused with CONNACK 0x85 (v5) / 0x02 (3.1.1, read back as 0x85), then close."""
    c = client(hbroker, version)
    connack = c.connect(client_id=client_id)
    assert isinstance(connack, Connack)
    assert connack.reason_code == ReasonCode.CLIENT_IDENTIFIER_NOT_VALID
    assert c.expect_closed(3.0) == []


# -- resource exhaustion ---------------------------------------------------------------------


def test_hundreds_of_thousands_of_unfinished_qos2_ids(hbroker: BrokerHandle) -> None:
    """200,000 QoS 2 PUBLISH never released: the ids cycle within the Receive Maximum (64),
    each duplicate answered with PUBREC again and not delivered twice; one id beyond the
    quota is DISCONNECT 0x93. The broker's state for the client stays at 64 ids."""
    before = rss_mb()
    c = connected(hbroker, client_id="qos2-flood")
    window = 64
    batch = b"".join(
        encode(Publish(topic="q2", payload=b"p", qos=2, packet_id=i + 1), V5) for i in range(window)
    )
    sent = 0
    c.sock.settimeout(10)
    while sent < 200_000:
        c.send_raw(batch)
        sent += window
        for _ in range(window):
            assert isinstance(c.recv(10), Pubrec)
    session = hbroker.call(lambda: hbroker.server.broker.sessions[("default", "qos2-flood")])
    assert len(session.awaiting_rel) == window
    c.publish("q2", b"one too many", qos=2, packet_id=window + 1)
    expect_disconnect(c, ReasonCode.RECEIVE_MAXIMUM_EXCEEDED)
    c3 = connected(hbroker, V311, client_id="qos2-flood-311")
    c3.send_raw(
        b"".join(
            encode(Publish(topic="q2", payload=b"p", qos=2, packet_id=i + 1), V311)
            for i in range(window + 1)
        )
    )
    # 3.1.1 has no DISCONNECT from the server: the 65th unfinished id closes the connection
    # (answers to the packets read in the same chunk may or may not go out first).
    packets = c3.expect_closed(5.0)
    assert len(packets) <= window and all(isinstance(p, Pubrec) for p in packets)
    assert rss_mb() - before < MEMORY_SLACK_MB
    assert_broker_serves(hbroker)


def test_thousands_of_idle_sockets_that_never_connect(hbroker: BrokerHandle) -> None:
    """3,000 connections that never send CONNECT: others are served meanwhile, and every
    idle one is closed after connect_timeout; memory stays bounded."""
    before = rss_mb()
    socks = []
    for _ in range(3_000):
        sock = socket.create_connection(("127.0.0.1", hbroker.port), timeout=10)
        socks.append(sock)
    assert_broker_serves(hbroker)
    deadline = time.monotonic() + CONNECT_TIMEOUT + 10
    for sock in socks:
        sock.settimeout(max(0.1, deadline - time.monotonic()))
        with contextlib.suppress(ConnectionResetError):
            assert sock.recv(1) == b""
        sock.close()
    assert hbroker.call(lambda: len(hbroker.server.ctx.handlers)) < 10
    assert rss_mb() - before < MEMORY_SLACK_MB
    assert_broker_serves(hbroker)


@pytest.mark.parametrize("listener", ["default", "ws"])
def test_byte_per_second_connect(hbroker: BrokerHandle, listener: str) -> None:
    """A CONNECT (or WebSocket upgrade) trickling in a byte at a time is cut off by the
    connect timeout, which counts from accept and is not extended by each byte."""
    sock = socket.create_connection(("127.0.0.1", hbroker.server.ports[listener]), timeout=10)
    data = (
        encode(Connect(protocol_name="MQTT", protocol_version=V5, client_id="slow"), V5)
        if listener == "default"
        else b"GET /mqtt HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n"
    )
    started = time.monotonic()
    closed = False
    for byte in data:
        try:
            sock.sendall(bytes((byte,)))
        except OSError:
            closed = True
            break
        time.sleep(0.25)
        sock.settimeout(0.01)
        try:
            if sock.recv(1) == b"":
                closed = True
                break
        except TimeoutError:
            pass
        except OSError:
            closed = True
            break
    elapsed = time.monotonic() - started
    assert closed, "the trickling connection was never closed"
    assert CONNECT_TIMEOUT - 0.3 < elapsed < CONNECT_TIMEOUT + 1.5
    sock.close()
    assert_broker_serves(hbroker)
