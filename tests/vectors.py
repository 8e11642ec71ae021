"""The shared table of MQTT packet vectors: raw bytes <-> packet, or bytes -> expected error.

Used by the codec tests, the connection / state-machine tests and to seed the fuzzers:

    from tests.vectors import VECTORS

The hex of each vector is assembled below with tiny helpers that only concatenate and
count bytes (`pkt` adds the fixed header's Remaining Length, `props` a Property Length,
`s` / `b` a two-byte length prefix); they share no code with roost.mqtt.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from roost.errors import (
    MalformedPacket,
    MQTTError,
    ProtocolViolation,
    UnsupportedProtocolVersion,
)
from roost.mqtt.constants import ProtocolVersion
from roost.mqtt.packets import (
    Auth,
    Connack,
    Connect,
    Disconnect,
    Packet,
    Pingreq,
    Pingresp,
    Properties,
    Puback,
    Pubcomp,
    Publish,
    Pubrec,
    Pubrel,
    Suback,
    Subscribe,
    Subscription,
    Unsuback,
    Unsubscribe,
    Will,
)

Sender = Literal["client", "server", "both"]


@dataclass(frozen=True)
class Vector:
    """One packet on the wire and what decoding it must give.

    name:       unique, "<packet>-<version>-<what>".
    statements: normative statement ids of the specs the vector exercises, e.g.
                ("MQTT-3.3.1-4",); empty where the rule has no id.
    version:    the protocol version the connection speaks (for CONNECT: the version the
                packet asks for; CONNECT is decoded without a known version).
    hex:        the whole packet (fixed header included), lowercase hex without spaces.
    expected:   the decoded packet, or the MQTTError subclass framing/decoding raises.
    canonical:  for valid vectors, whether encode(expected, version) gives back `hex`
                (False where the bytes use an encoding freedom Roost's encoder does not use).
    sender:     who may send this packet type: "client", "server" or "both".
    """

    name: str
    statements: tuple[str, ...]
    version: ProtocolVersion
    hex: str
    expected: Packet | type[MQTTError]
    canonical: bool = True
    sender: Sender = "both"
    data: bytes = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "data", bytes.fromhex(self.hex))

    @property
    def valid(self) -> bool:
        return not isinstance(self.expected, type)

    @property
    def packet(self) -> Packet:
        assert not isinstance(self.expected, type), self.name
        return self.expected

    @property
    def error(self) -> type[MQTTError]:
        assert isinstance(self.expected, type), self.name
        return self.expected


# --- hex helpers ----------------------------------------------------------------------


def _clean(*parts: str) -> str:
    return "".join("".join(parts).split()).lower()


def _varint(n: int) -> str:
    out = []
    while True:
        byte, n = n % 128, n // 128
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out).hex()


def s(text: str) -> str:
    """A UTF-8 Encoded String."""
    raw = text.encode("utf-8")
    return f"{len(raw):04x}" + raw.hex()


def b(hex_data: str) -> str:
    """Binary Data from hex."""
    data = _clean(hex_data)
    return f"{len(data) // 2:04x}" + data


def props(*parts: str) -> str:
    """Property Length + properties."""
    data = _clean(*parts)
    return _varint(len(data) // 2) + data


def pkt(first: str, *parts: str) -> str:
    """Fixed header (first byte + Remaining Length) + body."""
    body = _clean(*parts)
    return first + _varint(len(body) // 2) + body


def up(key: str, value: str) -> str:
    """A User Property."""
    return "26" + s(key) + s(value)


_SENDERS: dict[int, Sender] = {1: "client", 8: "client", 10: "client", 12: "client"}
_SENDERS |= {2: "server", 9: "server", 11: "server", 13: "server"}

VECTORS: list[Vector] = []


def v(
    name: str,
    statements: tuple[str, ...],
    version: ProtocolVersion,
    hex_data: str,
    expected: Packet | type[MQTTError],
    *,
    canonical: bool = True,
    sender: Sender | None = None,
) -> None:
    hex_data = _clean(hex_data)
    if sender is None:
        sender = _SENDERS.get(int(hex_data[0], 16), "both")
    VECTORS.append(Vector(name, statements, version, hex_data, expected, canonical, sender))


V31, V311, V5 = ProtocolVersion.V31, ProtocolVersion.V311, ProtocolVersion.V5
MAL, PV, UNSUP = MalformedPacket, ProtocolViolation, UnsupportedProtocolVersion
NOP = Properties()
MQTT, MQISDP = s("MQTT"), s("MQIsdp")

# fmt: off
# --- CONNECT --------------------------------------------------------------------------

v("connect-311-minimal", ("MQTT-3.1.2-1",), V311, pkt("10", MQTT, "04 02 003c", s("c1")),
  Connect(keep_alive=60, client_id="c1"))
v("connect-31-minimal", (), V31, pkt("10", MQISDP, "03 02 003c", s("c1")),
  Connect(protocol_name="MQIsdp", protocol_version=V31, keep_alive=60, client_id="c1"))
v("connect-311-empty-client-id", ("MQTT-3.1.3-6",), V311, pkt("10", MQTT, "04 00 0000", s("")),
  Connect(clean_start=False))
v("connect-311-will-user-password", ("MQTT-3.1.2-9", "MQTT-3.1.2-19", "MQTT-3.1.2-21"), V311,
  pkt("10", MQTT, "04 ee ffff", s("cid"), s("w/t"), b("6279"), s("user"), b("00 01 ff")),
  Connect(clean_start=True, keep_alive=65535, client_id="cid",
          will=Will(topic="w/t", payload=b"by", qos=1, retain=True),
          username="user", password=b"\x00\x01\xff"))
v("connect-31-will-user-password", (), V31,
  pkt("10", MQISDP, "03 d6 000a", s("a-client"), s("w"), b(""), s("ü"), b("70")),
  Connect(protocol_name="MQIsdp", protocol_version=V31, keep_alive=10, client_id="a-client",
          will=Will(topic="w", payload=b"", qos=2), username="ü", password=b"p"))
v("connect-311-username-only", ("MQTT-3.1.2-19",), V311,
  pkt("10", MQTT, "04 82 0000", s("c"), s("u")), Connect(client_id="c", username="u"))
v("connect-5-minimal", (), V5, pkt("10", MQTT, "05 02 003c", props(), s("c1")),
  Connect(protocol_version=V5, keep_alive=60, client_id="c1"))
v("connect-5-all-properties", (), V5,
  pkt("10", MQTT, "05 c2 001e",
      props("11 00000078", "15" + s("SCRAM"), "16" + b("0102"), "17 00", "19 01", "21 0014",
            "22 000a", up("k", "v"), up("k", "v2"), "27 00010000"),
      s("dev-1"), s("alice"), b("736563726574")),
  Connect(protocol_version=V5, keep_alive=30, client_id="dev-1", username="alice",
          password=b"secret",
          properties=Properties(session_expiry_interval=120, authentication_method="SCRAM",
                                authentication_data=b"\x01\x02", request_problem_information=0,
                                request_response_information=1, receive_maximum=20,
                                topic_alias_maximum=10, user_properties=(("k", "v"), ("k", "v2")),
                                maximum_packet_size=65536)))
v("connect-5-will-properties", (), V5,
  pkt("10", MQTT, "05 36 0000", props(), s(""),
      props("01 01", "02 0000003c", "03" + s("text/plain"), "08" + s("resp"), "09" + b("cafe"),
            "18 00000005", up("a", "b")),
      s("w/t"), b("68 69")),
  Connect(protocol_version=V5, will=Will(
      topic="w/t", payload=b"hi", qos=2, retain=True,
      properties=Properties(payload_format_indicator=1, message_expiry_interval=60,
                            content_type="text/plain", response_topic="resp",
                            correlation_data=b"\xca\xfe", will_delay_interval=5,
                            user_properties=(("a", "b"),)))))
v("connect-5-password-without-username", (), V5,
  pkt("10", MQTT, "05 42 0000", props(), s("c"), b("7077")),
  Connect(protocol_version=V5, client_id="c", password=b"pw"))
v("connect-5-property-id-non-minimal-varint", ("MQTT-1.5.5-1",), V5,
  pkt("10", MQTT, "05 02 0000", props("91 00 0000000a"), s("c")),
  Connect(protocol_version=V5, client_id="c", properties=Properties(session_expiry_interval=10)),
  canonical=False)
v("connect-311-reserved-flag", ("MQTT-3.1.2-3",), V311, pkt("10", MQTT, "04 03 0000", s("c")), MAL)
v("connect-5-reserved-flag", ("MQTT-3.1.2-3",), V5, pkt("10", MQTT, "05 03 0000", props(), s("c")), MAL)
v("connect-31-reserved-flag", (), V31, pkt("10", MQISDP, "03 01 0000", s("c")), MAL)
v("connect-311-will-qos-without-will-flag", ("MQTT-3.1.2-11", "MQTT-3.1.2-13"), V311,
  pkt("10", MQTT, "04 0a 0000", s("c")), MAL)
v("connect-311-will-retain-without-will-flag", ("MQTT-3.1.2-11", "MQTT-3.1.2-15"), V311,
  pkt("10", MQTT, "04 22 0000", s("c")), MAL)
v("connect-311-will-qos-3", ("MQTT-3.1.2-14",), V311,
  pkt("10", MQTT, "04 1e 0000", s("c"), s("w"), b("")), MAL)
v("connect-5-will-qos-without-will-flag", ("MQTT-3.1.2-11",), V5,
  pkt("10", MQTT, "05 12 0000", props(), s("c")), MAL)
v("connect-5-will-qos-3", ("MQTT-3.1.2-12",), V5,
  pkt("10", MQTT, "05 1e 0000", props(), s("c"), props(), s("w"), b("")), MAL)
v("connect-5-will-retain-without-will-flag", ("MQTT-3.1.2-13",), V5,
  pkt("10", MQTT, "05 22 0000", props(), s("c")), MAL)
v("connect-311-password-without-username", ("MQTT-3.1.2-22",), V311,
  pkt("10", MQTT, "04 42 0000", s("c"), b("70")), PV)
v("connect-31-password-without-username", ("MQTT-3.1.2-22",), V31,
  pkt("10", MQISDP, "03 42 0000", s("c"), b("70")), PV)
v("connect-unknown-level-6", ("MQTT-3.1.2-2",), V5, pkt("10", MQTT, "06 02 0000", s("c")), UNSUP)
v("connect-mqtt-name-level-3", ("MQTT-3.1.2-2",), V311, pkt("10", MQTT, "03 02 0000", s("c")), UNSUP)
v("connect-mqisdp-name-level-4", ("MQTT-3.1.2-2",), V311, pkt("10", MQISDP, "04 02 0000", s("c")), UNSUP)
v("connect-unknown-protocol-name", ("MQTT-3.1.2-1",), V311, pkt("10", s("MQTX"), "04 02 0000", s("c")), UNSUP)
v("connect-311-fixed-header-flags", ("MQTT-2.2.2-1", "MQTT-2.2.2-2"), V311,
  pkt("11", MQTT, "04 02 0000", s("c")), MAL)
v("connect-5-fixed-header-flags", ("MQTT-2.1.3-1",), V5, pkt("18", MQTT, "05 02 0000", props(), s("c")), MAL)
v("connect-311-trailing-bytes", (), V311, pkt("10", MQTT, "04 02 0000", s("c"), "00"), MAL)
v("connect-311-will-fields-missing", ("MQTT-3.1.2-9",), V311, pkt("10", MQTT, "04 06 0000", s("c")), MAL)
v("connect-311-username-missing", ("MQTT-3.1.2-19",), V311, pkt("10", MQTT, "04 82 0000", s("c")), MAL)
v("connect-311-truncated-keep-alive", (), V311, pkt("10", MQTT, "04 02 00"), MAL)
v("connect-311-client-id-ill-formed-utf8", ("MQTT-1.5.3-1",), V311,
  pkt("10", MQTT, "04 02 0000", "0002 c328"), MAL)
v("connect-311-client-id-null-character", ("MQTT-1.5.3-2",), V311,
  pkt("10", MQTT, "04 02 0000", "0003 610062"), MAL)
v("connect-5-client-id-null-character", ("MQTT-1.5.4-2",), V5,
  pkt("10", MQTT, "05 02 0000", props(), "0001 00"), MAL)
v("connect-5-client-id-surrogate", ("MQTT-1.5.4-1",), V5,
  pkt("10", MQTT, "05 02 0000", props(), "0003 eda080"), MAL)
v("connect-5-username-overlong-utf8", ("MQTT-1.5.4-1",), V5,
  pkt("10", MQTT, "05 82 0000", props(), s("c"), "0002 c0af"), MAL)
v("connect-5-receive-maximum-0", (), V5, pkt("10", MQTT, "05 02 0000", props("21 0000"), s("c")), PV)
v("connect-5-maximum-packet-size-0", (), V5,
  pkt("10", MQTT, "05 02 0000", props("27 00000000"), s("c")), PV)
v("connect-5-request-problem-information-2", (), V5,
  pkt("10", MQTT, "05 02 0000", props("17 02"), s("c")), PV)
v("connect-5-request-response-information-2", (), V5,
  pkt("10", MQTT, "05 02 0000", props("19 02"), s("c")), PV)
v("connect-5-session-expiry-twice", (), V5,
  pkt("10", MQTT, "05 02 0000", props("11 00000001 11 00000002"), s("c")), PV)
v("connect-5-authentication-method-twice", (), V5,
  pkt("10", MQTT, "05 02 0000", props("15" + s("a"), "15" + s("b")), s("c")), PV)
v("connect-5-maximum-qos-not-allowed", (), V5,
  pkt("10", MQTT, "05 02 0000", props("24 01"), s("c")), MAL)
v("connect-5-unknown-property", (), V5, pkt("10", MQTT, "05 02 0000", props("05 01"), s("c")), MAL)
v("connect-5-authentication-data-without-method", (), V5,
  pkt("10", MQTT, "05 02 0000", props("16" + b("01")), s("c")), PV)
v("connect-5-will-session-expiry-not-allowed", (), V5,
  pkt("10", MQTT, "05 06 0000", props(), s("c"), props("11 00000001"), s("w"), b("")), MAL)
v("connect-5-will-delay-outside-will", (), V5,
  pkt("10", MQTT, "05 02 0000", props("18 00000001"), s("c")), MAL)
v("connect-5-will-payload-format-2", (), V5,
  pkt("10", MQTT, "05 06 0000", props(), s("c"), props("01 02"), s("w"), b("")), PV)
v("connect-5-property-length-past-end", (), V5, pkt("10", MQTT, "05 02 0000", "0a 11 0000"), MAL)
v("connect-5-property-value-truncated", (), V5,
  pkt("10", MQTT, "05 02 0000", "03 11 0000", s("c")), MAL)

# --- CONNACK --------------------------------------------------------------------------

v("connack-311-accepted", (), V311, "20020000", Connack())
v("connack-311-session-present", ("MQTT-3.2.2-2",), V311, "20020100", Connack(session_present=True))
v("connack-311-unacceptable-version", ("MQTT-3.1.2-2",), V311, "20020001", Connack(reason_code=0x84))
v("connack-311-identifier-rejected", (), V311, "20020002", Connack(reason_code=0x85))
v("connack-311-server-unavailable", (), V311, "20020003", Connack(reason_code=0x88))
v("connack-311-bad-user-name-or-password", (), V311, "20020004", Connack(reason_code=0x86))
v("connack-311-not-authorized", (), V311, "20020005", Connack(reason_code=0x87))
v("connack-31-accepted", (), V31, "20020000", Connack())
v("connack-311-return-code-6", (), V311, "20020006", PV)
v("connack-311-reserved-flags", (), V311, "20020200", MAL)
v("connack-311-session-present-on-refusal", ("MQTT-3.2.2-4",), V311, "20020105", PV)
v("connack-311-trailing-bytes", (), V311, "2003000000", MAL)
v("connack-311-fixed-header-flags", ("MQTT-2.2.2-2",), V311, "21020000", MAL)
v("connack-5-minimal", (), V5, "2003000000", Connack())
v("connack-5-all-properties", (), V5,
  pkt("20", "01 00",
      props("11 0000003c", "12" + s("auto-1"), "13 0078", "15" + s("SCRAM"), "16" + b("ff"),
            "1a" + s("resp/"), "1c" + s("other:1883"), "1f" + s("welcome"), "21 0040",
            "22 0005", "24 01", "25 00", up("x", "y"), "27 00100000", "28 00", "29 01", "2a 00")),
  Connack(session_present=True, properties=Properties(
      session_expiry_interval=60, assigned_client_identifier="auto-1", server_keep_alive=120,
      authentication_method="SCRAM", authentication_data=b"\xff", response_information="resp/",
      server_reference="other:1883", reason_string="welcome", receive_maximum=64,
      topic_alias_maximum=5, maximum_qos=1, retain_available=0, user_properties=(("x", "y"),),
      maximum_packet_size=1048576, wildcard_subscription_available=0,
      subscription_identifier_available=1, shared_subscription_available=0)))
v("connack-5-refused-with-reason-string", (), V5, pkt("20", "00 87", props("1f" + s("no"))),
  Connack(reason_code=0x87, properties=Properties(reason_string="no")))
v("connack-5-unsupported-version", ("MQTT-3.1.2-2",), V5, "2003008400", Connack(reason_code=0x84))
v("connack-5-invalid-reason-code", (), V5, "2003001000", PV)
v("connack-5-session-present-on-refusal", ("MQTT-3.2.2-6",), V5, "2003018000", PV)
v("connack-5-maximum-qos-2", (), V5, pkt("20", "00 00", props("24 02")), PV)
v("connack-5-retain-available-2", (), V5, pkt("20", "00 00", props("25 02")), PV)
v("connack-5-wildcard-available-2", (), V5, pkt("20", "00 00", props("28 02")), PV)
v("connack-5-subscription-identifier-available-2", (), V5, pkt("20", "00 00", props("29 02")), PV)
v("connack-5-shared-available-2", (), V5, pkt("20", "00 00", props("2a 02")), PV)
v("connack-5-receive-maximum-0", (), V5, pkt("20", "00 00", props("21 0000")), PV)
v("connack-5-maximum-packet-size-0", (), V5, pkt("20", "00 00", props("27 00000000")), PV)
v("connack-5-server-keep-alive-twice", (), V5, pkt("20", "00 00", props("13 0001 13 0002")), PV)
v("connack-5-topic-alias-not-allowed", (), V5, pkt("20", "00 00", props("23 0001")), MAL)
v("connack-5-request-problem-information-not-allowed", (), V5,
  pkt("20", "00 00", props("17 01")), MAL)
v("connack-5-missing-property-length", (), V5, "20020000", MAL)

# --- PUBLISH --------------------------------------------------------------------------

v("publish-311-qos0", (), V311, pkt("30", s("a/b"), "68656c6c6f"), Publish(topic="a/b", payload=b"hello"))
v("publish-311-qos1-dup-retain", (), V311, pkt("3b", s("a/b"), "0001", "00ff"),
  Publish(topic="a/b", payload=b"\x00\xff", qos=1, retain=True, dup=True, packet_id=1))
v("publish-311-qos2", (), V311, pkt("34", s("t"), "ffff", "78"),
  Publish(topic="t", payload=b"x", qos=2, packet_id=65535))
v("publish-311-empty-payload-retain", (), V311, pkt("31", s("t")), Publish(topic="t", retain=True))
v("publish-31-qos1", (), V31, pkt("32", s("t"), "0102", "7a"),
  Publish(topic="t", payload=b"z", qos=1, packet_id=0x0102))
v("publish-311-wildcard-topic-not-checked-here", (), V311, pkt("30", s("a/#")),
  Publish(topic="a/#"))
v("publish-311-large-payload", (), V311, pkt("30", s("big"), "ab" * 300),
  Publish(topic="big", payload=b"\xab" * 300))
v("publish-311-qos3", ("MQTT-3.3.1-4",), V311, pkt("36", s("t"), "0001"), MAL)
v("publish-5-qos3", ("MQTT-3.3.1-4",), V5, pkt("37", s("t"), "0001", props()), MAL)
v("publish-311-dup-qos0", ("MQTT-3.3.1-2",), V311, pkt("38", s("t")), MAL)
v("publish-311-qos1-packet-id-0", ("MQTT-2.3.1-1",), V311, pkt("32", s("t"), "0000"), PV)
v("publish-5-qos2-packet-id-0", ("MQTT-2.2.1-3",), V5, pkt("34", s("t"), "0000", props()), PV)
v("publish-311-topic-truncated", (), V311, pkt("30", "000a 6162"), MAL)
v("publish-311-packet-id-truncated", (), V311, pkt("32", s("t"), "00"), MAL)
v("publish-311-topic-ill-formed-utf8", ("MQTT-1.5.3-1",), V311, pkt("30", "0001 ff"), MAL)
v("publish-5-topic-null-character", ("MQTT-1.5.4-2",), V5, pkt("30", "0001 00", props()), MAL)
v("publish-5-qos0", (), V5, pkt("30", s("a/b"), props(), "6869"), Publish(topic="a/b", payload=b"hi"))
v("publish-5-all-properties", ("MQTT-3.3.4-4",), V5,
  pkt("35", s("a/b"), "0007",
      props("01 01", "02 0000000a", "03" + s("application/json"), "08" + s("reply/to"),
            "09" + b("00ff"), "0b 01", "0b ffffff7f", "23 0001", up("k", "v"), up("k", "v")),
      "7b7d"),
  Publish(topic="a/b", payload=b"{}", qos=2, retain=True, packet_id=7, properties=Properties(
      payload_format_indicator=1, message_expiry_interval=10, content_type="application/json",
      response_topic="reply/to", correlation_data=b"\x00\xff",
      subscription_identifiers=(1, 268435455), topic_alias=1,
      user_properties=(("k", "v"), ("k", "v")))),
  sender="server")
v("publish-5-topic-alias-empty-topic", (), V5, pkt("30", s(""), props("23 0002"), "00"),
  Publish(topic="", payload=b"\x00", properties=Properties(topic_alias=2)))
v("publish-5-property-length-non-minimal", ("MQTT-1.5.5-1",), V5, pkt("30", s("t"), "8000", "01"),
  Publish(topic="t", payload=b"\x01"), canonical=False)
v("publish-5-subscription-identifier-0", (), V5, pkt("30", s("t"), props("0b 00")), PV)
v("publish-5-topic-alias-0", ("MQTT-3.3.2-8",), V5, pkt("30", s("t"), props("23 0000")), PV)
v("publish-5-payload-format-indicator-2", (), V5, pkt("30", s("t"), props("01 02")), PV)
v("publish-5-message-expiry-twice", (), V5,
  pkt("30", s("t"), props("02 00000001 02 00000001")), PV)
v("publish-5-content-type-twice", (), V5, pkt("30", s("t"), props("03" + s("a"), "03" + s("a"))), PV)
v("publish-5-correlation-data-twice", (), V5, pkt("30", s("t"), props("09" + b("01"), "09" + b("01"))), PV)
v("publish-5-topic-alias-twice", (), V5, pkt("30", s("t"), props("23 0001 23 0001")), PV)
v("publish-5-session-expiry-not-allowed", (), V5, pkt("30", s("t"), props("11 00000001")), MAL)
v("publish-5-will-delay-not-allowed", (), V5, pkt("30", s("t"), props("18 00000001")), MAL)
v("publish-5-subscription-identifier-5-byte-varint", ("MQTT-1.5.5-1",), V5,
  pkt("30", s("t"), props("0b ffffffff01")), MAL)
v("publish-5-property-length-5-byte-varint", (), V5, pkt("30", s("t"), "8080808001"), MAL)
v("publish-5-user-property-truncated", (), V5, pkt("30", s("t"), props("26 0001 61 0005 62")), MAL)
v("publish-5-property-length-missing", (), V5, pkt("32", s("t"), "0001"), MAL)

# --- PUBACK / PUBREC / PUBREL / PUBCOMP -------------------------------------------------

v("puback-311", (), V311, "40020001", Puback(packet_id=1))
v("pubrec-311", (), V311, "50020002", Pubrec(packet_id=2))
v("pubrel-311", (), V311, "62020003", Pubrel(packet_id=3))
v("pubcomp-311", (), V311, "7002ff04", Pubcomp(packet_id=0xFF04))
v("pubrel-31", (), V31, "62021234", Pubrel(packet_id=0x1234))
v("puback-5-short", (), V5, "40020001", Puback(packet_id=1))
v("puback-5-no-matching-subscribers", (), V5, "4003000110", Puback(packet_id=1, reason_code=0x10))
v("puback-5-reason-string-user-property", (), V5,
  pkt("40", "0009 97", props("1f" + s("quota"), up("a", "1"))),
  Puback(packet_id=9, reason_code=0x97,
         properties=Properties(reason_string="quota", user_properties=(("a", "1"),))))
v("pubrec-5-unspecified-error", (), V5, "5003000a80", Pubrec(packet_id=10, reason_code=0x80))
v("pubrec-5-with-properties", (), V5, pkt("50", "000b 00", props(up("x", ""))),
  Pubrec(packet_id=11, properties=Properties(user_properties=(("x", ""),))))
v("pubrel-5-packet-identifier-not-found", (), V5, "6203000592", Pubrel(packet_id=5, reason_code=0x92))
v("pubcomp-5-reason-string", (), V5, pkt("70", "0006 00", props("1f" + s("ok"))),
  Pubcomp(packet_id=6, properties=Properties(reason_string="ok")))
v("puback-5-explicit-success-empty-properties", (), V5, "400400010000", Puback(packet_id=1),
  canonical=False)
v("puback-5-explicit-success", (), V5, "4003000100", Puback(packet_id=1), canonical=False)
v("pubrel-311-fixed-header-flags", ("MQTT-2.2.2-1", "MQTT-2.2.2-2"), V311, "60020001", MAL)
v("pubrel-5-fixed-header-flags", ("MQTT-2.1.3-1",), V5, "63020001", MAL)
v("puback-311-fixed-header-flags", ("MQTT-2.2.2-2",), V311, "41020001", MAL)
v("pubcomp-5-fixed-header-flags", ("MQTT-2.1.3-1",), V5, "78020001", MAL)
v("puback-311-packet-id-0", ("MQTT-2.3.1-1",), V311, "40020000", PV)
v("pubcomp-5-packet-id-0", (), V5, "70020000", PV)
v("puback-311-trailing-bytes", (), V311, "4003000100", MAL)
v("puback-311-truncated", (), V311, "400100", MAL)
v("pubrec-5-truncated", (), V5, "500100", MAL)
v("pubrel-5-invalid-reason-code", (), V5, "6203000110", PV)
v("puback-5-invalid-reason-code", (), V5, "4003000192", PV)
v("puback-5-payload-format-not-allowed", (), V5, pkt("40", "0001 00", props("01 01")), MAL)
v("pubcomp-5-reason-string-twice", (), V5, pkt("70", "0001 00", props("1f" + s("a"), "1f" + s("b"))), PV)
v("pubrec-5-trailing-bytes", (), V5, pkt("50", "0001 00", props(), "00"), MAL)

# --- SUBSCRIBE ------------------------------------------------------------------------

v("subscribe-311", (), V311, pkt("82", "000a", s("a/b"), "01"),
  Subscribe(packet_id=10, subscriptions=(Subscription(topic_filter="a/b", qos=1),)))
v("subscribe-311-several", (), V311, pkt("82", "0001", s("a/+"), "00", s("#"), "01", s("$share/g/x"), "02"),
  Subscribe(packet_id=1, subscriptions=(
      Subscription(topic_filter="a/+"), Subscription(topic_filter="#", qos=1),
      Subscription(topic_filter="$share/g/x", qos=2))))
v("subscribe-31-dup-flag", (), V31, pkt("8a", "0002", s("t"), "02"),
  Subscribe(packet_id=2, subscriptions=(Subscription(topic_filter="t", qos=2),)), canonical=False)
v("pubrel-31-dup-flag", (), V31, "6a021234", Pubrel(packet_id=0x1234), canonical=False)
v("subscribe-31", (), V31, pkt("82", "0002", s("t"), "02"),
  Subscribe(packet_id=2, subscriptions=(Subscription(topic_filter="t", qos=2),)))
v("subscribe-5-options-and-properties", (), V5,
  pkt("82", "0003", props("0b 80 01", up("u", "v")), s("a/b"), "2d", s("c"), "10"),
  Subscribe(packet_id=3, subscriptions=(
      Subscription(topic_filter="a/b", qos=1, no_local=True, retain_as_published=True,
                   retain_handling=2),
      Subscription(topic_filter="c", retain_handling=1)),
      properties=Properties(subscription_identifiers=(128,), user_properties=(("u", "v"),))))
v("subscribe-311-no-topic-filter", ("MQTT-3.8.3-3",), V311, "82020001", PV)
v("subscribe-5-no-topic-filter", ("MQTT-3.8.3-2",), V5, "8203000100", PV)
v("subscribe-311-reserved-option-bits", ("MQTT-3-8.3-4",), V311, pkt("82", "0001", s("t"), "04"), MAL)
v("subscribe-311-qos3", ("MQTT-3-8.3-4",), V311, pkt("82", "0001", s("t"), "03"), MAL)
v("subscribe-5-reserved-option-bits", ("MQTT-3.8.3-5",), V5, pkt("82", "0001", props(), s("t"), "40"), MAL)
v("subscribe-5-qos3", (), V5, pkt("82", "0001", props(), s("t"), "03"), PV)
v("subscribe-5-retain-handling-3", (), V5, pkt("82", "0001", props(), s("t"), "30"), PV)
v("subscribe-311-fixed-header-flags", ("MQTT-3.8.1-1", "MQTT-2.2.2-2"), V311, pkt("80", "0001", s("t"), "00"), MAL)
v("subscribe-5-fixed-header-flags", ("MQTT-3.8.1-1",), V5, pkt("83", "0001", props(), s("t"), "00"), MAL)
v("subscribe-311-packet-id-0", ("MQTT-2.3.1-1",), V311, pkt("82", "0000", s("t"), "00"), PV)
v("subscribe-5-subscription-identifier-twice", (), V5,
  pkt("82", "0001", props("0b 01 0b 02"), s("t"), "00"), PV)
v("subscribe-5-subscription-identifier-0", (), V5, pkt("82", "0001", props("0b 00"), s("t"), "00"), PV)
v("subscribe-311-options-missing", (), V311, pkt("82", "0001", s("t")), MAL)
v("subscribe-5-topic-alias-not-allowed", (), V5, pkt("82", "0001", props("23 0001"), s("t"), "00"), MAL)
v("subscribe-311-topic-filter-ill-formed-utf8", ("MQTT-1.5.3-1",), V311, pkt("82", "0001", "0001 80", "00"), MAL)

# --- SUBACK ---------------------------------------------------------------------------

v("suback-311", (), V311, pkt("90", "000a", "00 01 02 80"),
  Suback(packet_id=10, reason_codes=(0, 1, 2, 0x80)))
v("suback-5-all-reason-codes", (), V5,
  pkt("90", "0001", props("1f" + s("see codes")), "00 01 02 80 83 87 8f 91 97 9e a1 a2"),
  Suback(packet_id=1, reason_codes=(0, 1, 2, 0x80, 0x83, 0x87, 0x8F, 0x91, 0x97, 0x9E, 0xA1, 0xA2),
         properties=Properties(reason_string="see codes")))
v("suback-311-invalid-return-code", (), V311, pkt("90", "0001", "03"), PV)
v("suback-5-invalid-reason-code", (), V5, pkt("90", "0001", props(), "10"), PV)
v("suback-311-no-return-code", (), V311, "90020001", PV)
v("suback-311-fixed-header-flags", ("MQTT-2.2.2-2",), V311, pkt("92", "0001", "00"), MAL)
v("suback-5-packet-id-0", (), V5, pkt("90", "0000", props(), "00"), PV)
v("suback-5-subscription-identifier-not-allowed", (), V5, pkt("90", "0001", props("0b 01"), "00"), MAL)

# --- UNSUBSCRIBE / UNSUBACK -------------------------------------------------------------

v("unsubscribe-311", (), V311, pkt("a2", "0001", s("a/b"), s("c/#")),
  Unsubscribe(packet_id=1, topic_filters=("a/b", "c/#")))
v("unsubscribe-5-user-property", (), V5, pkt("a2", "0002", props(up("k", "v")), s("x")),
  Unsubscribe(packet_id=2, topic_filters=("x",), properties=Properties(user_properties=(("k", "v"),))))
v("unsubscribe-311-no-topic-filter", ("MQTT-3.10.3-2",), V311, "a2020001", PV)
v("unsubscribe-5-no-topic-filter", ("MQTT-3.10.3-2",), V5, "a203000100", PV)
v("unsubscribe-311-fixed-header-flags", ("MQTT-3.10.1-1",), V311, pkt("a0", "0001", s("t")), MAL)
v("unsubscribe-5-reason-string-not-allowed", (), V5, pkt("a2", "0001", props("1f" + s("r")), s("t")), MAL)
v("unsubscribe-311-packet-id-0", ("MQTT-2.3.1-1",), V311, pkt("a2", "0000", s("t")), PV)
v("unsubscribe-311-topic-filter-truncated", (), V311, pkt("a2", "0001", "0005 61"), MAL)
v("unsuback-311", (), V311, "b0020001", Unsuback(packet_id=1))
v("unsuback-5", (), V5, pkt("b0", "0004", props("1f" + s("r")), "00 11 80 83 87 8f 91"),
  Unsuback(packet_id=4, reason_codes=(0, 0x11, 0x80, 0x83, 0x87, 0x8F, 0x91),
           properties=Properties(reason_string="r")))
v("unsuback-311-trailing-bytes", (), V311, "b003000100", MAL)
v("unsuback-5-no-reason-code", (), V5, "b003000100", PV)
v("unsuback-5-invalid-reason-code", (), V5, "b00400010001", PV)
v("unsuback-5-fixed-header-flags", ("MQTT-2.1.3-1",), V5, "b1040001 0000", MAL)

# --- PINGREQ / PINGRESP / DISCONNECT / AUTH ---------------------------------------------

v("pingreq-311", (), V311, "c000", Pingreq())
v("pingreq-5", (), V5, "c000", Pingreq())
v("pingresp-311", (), V311, "d000", Pingresp())
v("pingresp-5", (), V5, "d000", Pingresp())
v("pingreq-remaining-length-non-minimal", ("MQTT-1.5.5-1",), V311, "c08000", Pingreq(), canonical=False)
v("pingreq-311-trailing-bytes", (), V311, "c00100", MAL)
v("pingresp-5-trailing-bytes", (), V5, "d00100", MAL)
v("pingreq-311-fixed-header-flags", ("MQTT-2.2.2-2",), V311, "c100", MAL)
v("disconnect-311", (), V311, "e000", Disconnect())
v("disconnect-31", (), V31, "e000", Disconnect())
v("disconnect-5-normal", (), V5, "e000", Disconnect())
v("disconnect-5-with-will", (), V5, "e00104", Disconnect(reason_code=0x04), sender="client")
v("disconnect-5-properties", (), V5,
  pkt("e0", "9c", props("11 00000000", "1c" + s("b:1883"), "1f" + s("moved"), up("a", "b"))),
  Disconnect(reason_code=0x9C, properties=Properties(
      session_expiry_interval=0, server_reference="b:1883", reason_string="moved",
      user_properties=(("a", "b"),))))
v("disconnect-5-explicit-normal", (), V5, "e0020000", Disconnect(), canonical=False)
v("disconnect-311-trailing-bytes", (), V311, "e00100", MAL)
v("disconnect-5-invalid-reason-code", (), V5, "e00101", PV)
v("disconnect-311-fixed-header-flags", ("MQTT-2.2.2-2",), V311, "e200", MAL)
v("disconnect-5-receive-maximum-not-allowed", (), V5, pkt("e0", "00", props("21 0001")), MAL)
v("disconnect-5-trailing-bytes", (), V5, pkt("e0", "00", props(), "00"), MAL)
v("auth-5-success", (), V5, "f000", Auth())
v("auth-5-continue", (), V5, pkt("f0", "18", props("15" + s("SCRAM"), "16" + b("0a0b"))),
  Auth(reason_code=0x18,
       properties=Properties(authentication_method="SCRAM", authentication_data=b"\x0a\x0b")))
v("auth-5-re-authenticate", (), V5,
  pkt("f0", "19", props("15" + s("K"), "1f" + s("again"), up("p", "q"))),
  Auth(reason_code=0x19, properties=Properties(authentication_method="K", reason_string="again",
                                               user_properties=(("p", "q"),))))
v("auth-311-reserved-packet-type", ("MQTT-2.2.2-2",), V311, "f000", MAL)
v("auth-5-fixed-header-flags", ("MQTT-2.1.3-1",), V5, "f100", MAL)
v("auth-5-invalid-reason-code", (), V5, pkt("f0", "01", props("15" + s("K"))), PV)
v("auth-5-missing-authentication-method", (), V5, "f0021800", PV)
v("auth-5-property-length-missing", (), V5, "f00118", MAL)
v("auth-5-session-expiry-not-allowed", (), V5, pkt("f0", "18", props("15" + s("K"), "11 00000001")), MAL)
v("reserved-packet-type-0-311", (), V311, "0000", MAL)
v("reserved-packet-type-0-5", (), V5, "0000", MAL)

# --- framing --------------------------------------------------------------------------

v("remaining-length-5-bytes", ("MQTT-1.5.5-1",), V311, "30ffffffff01", MAL)
v("remaining-length-5-bytes-v5", ("MQTT-1.5.5-1",), V5, "c0 80 80 80 80 00", MAL)
v("remaining-length-4-bytes-non-minimal", ("MQTT-1.5.5-1",), V5, "e0 80 80 80 00", Disconnect(),
  canonical=False)

# fmt: on

__all__ = ["VECTORS", "Vector", "b", "pkt", "props", "s", "up"]
