"""Server side of one MQTT connection, sans-IO: bytes in -> events, packets -> bytes out.

It frames and decodes what the client sends, enforces the rules of the connection's state
(CONNECT first and once, topic aliases, the inbound Receive Maximum quota, the maximum
packet size, keep alive) and encodes what the server sends within the client's limits.
Time comes in as `now`; nothing here does I/O.
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass, replace

from roost.empty import NO_IDS
from roost.errors import MQTTError, PacketTooLarge, UnsupportedProtocolVersion
from roost.mqtt.codec import (
    decode,
    decode_connect,
    decode_puback,
    decode_publish,
    encode,
    encode_ack,
    encode_publish,
    read_frame,
)
from roost.mqtt.constants import PacketType, ProtocolVersion, ReasonCode
from roost.mqtt.packets import (
    NO_PROPERTIES,
    Auth,
    Connack,
    Connect,
    Disconnect,
    Packet,
    Pingresp,
    Properties,
    Puback,
    Pubcomp,
    Publish,
    Pubrec,
    Pubrel,
    Suback,
    Subscribe,
    Unsuback,
    Unsubscribe,
)
from roost.protocol import events as ev
from roost.protocol.topic_alias import InboundAliases, OutboundAliases


class State(enum.Enum):
    AWAIT_CONNECT = "await_connect"  # nothing received yet
    CONNECTING = "connecting"  # CONNECT received, the server has not answered yet
    CONNECTED = "connected"  # CONNACK 0x00 sent
    CLOSED = "closed"  # nothing more is read or sent but what is queued


@dataclass(frozen=True, slots=True, kw_only=True)
class ConnectionLimits:
    """What the server accepts on this connection (from config and the listener)."""

    max_packet_size: int = 1_048_576
    receive_maximum: int = 64
    max_awaiting_rel: int = 64
    topic_alias_maximum: int = 10
    maximum_qos: int = 2
    retain_available: bool = True
    max_topic_length: int = 65_535
    max_topic_levels: int = 128


_PUBLISH = PacketType.PUBLISH
_PUBACK = PacketType.PUBACK
# A PUBACK's first byte: its type and the reserved flags 0 [MQTT-2.2.2-1].
_PUBACK_BYTE = PacketType.PUBACK << 4
_CONNECTED = State.CONNECTED
_CLOSED = State.CLOSED

# Packets a client never sends: receiving one is a Protocol Error.
_SERVER_ONLY = frozenset(
    {PacketType.CONNACK, PacketType.SUBACK, PacketType.UNSUBACK, PacketType.PINGRESP}
)

# What the server may send while a CONNECT waits for its answer [MQTT-3.2.0-1].
_BEFORE_CONNACK = frozenset({PacketType.CONNACK, PacketType.AUTH})

# Packets whose reason string and user properties may be withheld when the client asked
# for no problem information [MQTT-3.1.2-29].
_PROBLEM_INFO_ALWAYS = frozenset({PacketType.PUBLISH, PacketType.CONNACK, PacketType.DISCONNECT})


def _without_problem_info(packet: Packet, props: Properties) -> Packet:
    """The packet without its Reason String and User Properties."""
    stripped = replace(props, reason_string=None, user_properties=())
    return replace(packet, properties=stripped)  # type: ignore[arg-type]


# The encoded 3.x CONNACK 0x00, by (Session Present, protocol version).
_ACCEPTED: dict[tuple[bool, ProtocolVersion], bytes] = {}


class ServerConnection:
    """One client's connection as the server sees it."""

    # Thousands of idle connections are the norm: no per-instance dict, and structures
    # that most connections never need are made on first use.
    __slots__ = (
        "_deferred_failure",
        "_enhanced_auth",
        "_held",
        "_in",
        "_inbound_aliases",
        "_inbound_unacked",
        "_out",
        "_outbound_aliases",
        "_reading",
        "_topic_name_valid",
        "client_max_packet_size",
        "client_receive_maximum",
        "keep_alive",
        "last_received",
        "limits",
        "more_input",
        "request_problem_information",
        "session_expiry_interval",
        "state",
        "version",
    )

    def __init__(
        self,
        limits: ConnectionLimits,
        topic_name_valid: Callable[[str], bool],
        now: float = 0.0,
    ) -> None:
        self.limits = limits
        self._topic_name_valid = topic_name_valid
        self.state = State.AWAIT_CONNECT
        self.version: ProtocolVersion | None = None
        # The start of a packet not yet complete (a bytearray then), else empty.
        self._in: bytes | bytearray = b""
        self.more_input = False
        # Encoded packets not yet taken by data_to_send(), None when there are none.
        self._out: list[bytes] | None = None
        self.last_received = now
        self.keep_alive = 0
        # Negotiated from the client's CONNECT properties.
        self.client_receive_maximum = 65_535
        self.client_max_packet_size = 268_435_460
        self.request_problem_information = True
        self.session_expiry_interval = 0
        # CONNECT named an Authentication Method: only AUTH / DISCONNECT until CONNACK.
        self._enhanced_auth = False
        # True while receive_data frames input (failures then come from the client's bytes).
        self._reading = False
        # A rule broken by a packet pipelined behind CONNECT before the server answered it:
        # reported at once, sent after the CONNACK (see fail()).
        self._deferred_failure: tuple[int, str] | None = None
        # Answers to packets pipelined behind CONNECT (PINGRESP) wait for the CONNACK:
        # nothing but AUTH goes before it [MQTT-3.2.0-1].
        self._held: list[Packet] | None = None
        self._inbound_aliases: InboundAliases | None = None
        self._outbound_aliases: OutboundAliases | None = None
        # Inbound QoS 1/2 packet ids not yet completed (PUBACK/PUBCOMP not sent); shared
        # and empty until the first.
        self._inbound_unacked: set[int] = NO_IDS

    @property
    def closed(self) -> bool:
        return self.state is State.CLOSED

    # -- input ---------------------------------------------------------------------------

    def receive_data(self, data: bytes, now: float, limit: int = 0) -> list[ev.Event]:
        """Feed bytes from the network; returns the events they complete, in order.

        With `limit`, at most that many packets are taken; `more_input` then tells whether
        complete packets wait in the buffer (call again with b"" to take them)."""
        self.more_input = False
        if self.state is State.CLOSED or self._deferred_failure is not None:
            return []
        self.last_received = now
        buf = self._in
        if buf:
            buf += data  # the rest of a packet begun earlier (a bytearray)
        else:
            # Nothing buffered, the common case: frames are read from the bytes received
            # as they are; only the start of an incomplete packet is kept (below).
            buf = data
        events: list[ev.Event] = []
        offset = 0
        view = memoryview(buf)
        max_packet_size = self.limits.max_packet_size
        self._reading = True
        try:
            while self.state is not _CLOSED and self._deferred_failure is None:
                frame = read_frame(view, max_packet_size, offset)
                if frame is None:
                    break
                first_byte, body, length = frame
                del frame
                event = self._on_frame(first_byte, body)
                body.release()
                offset += length
                if event is not None:
                    events.append(event)
                    if len(events) == limit:
                        self.more_input = True
                        break
        except MQTTError as exc:
            events.append(self._failed_on_input(exc))
        finally:
            self._reading = False
        if offset == len(buf):
            self._in = b""
        elif buf is data or not isinstance(buf, bytearray):
            # The start of an incomplete packet, copied once (straight from the view).
            with view[offset:] as tail:
                self._in = bytearray(tail)
        elif offset:
            view.release()
            try:
                del buf[:offset]
            except BufferError:  # a view is still alive somewhere: copy instead
                self._in = buf[offset:]  # a bytearray's slice is one
        view.release()
        return events

    def _on_frame(self, first_byte: int, body: memoryview) -> ev.Event | None:
        packet_type = first_byte >> 4
        if self.state is _CONNECTED:
            # The common cases, straight to their decoder.
            assert self.version is not None
            if packet_type == _PUBLISH:
                return self._on_publish(decode_publish(first_byte & 0x0F, body, self.version))
            if first_byte == _PUBACK_BYTE:
                return ev.PubackReceived(decode_puback(body, self.version))
        if self.state is State.AWAIT_CONNECT:
            if packet_type != PacketType.CONNECT:
                # The first packet must be CONNECT [MQTT-3.1.0-1]: close without CONNACK.
                return self.close(ReasonCode.PROTOCOL_ERROR, "first packet is not CONNECT")
            return self._on_connect(first_byte, body)
        assert self.version is not None
        if packet_type == PacketType.CONNECT:
            # A second CONNECT is a Protocol Error [MQTT-3.1.0-2].
            return self.fail(ReasonCode.PROTOCOL_ERROR, "second CONNECT")
        if packet_type in _SERVER_ONLY:
            return self.fail(ReasonCode.PROTOCOL_ERROR, "packet type not sent by clients")
        packet = decode(first_byte, body, self.version)
        if (
            self.state is State.CONNECTING
            and self._enhanced_auth
            and packet_type not in (PacketType.AUTH, PacketType.DISCONNECT)
        ):
            # With an Authentication Method only AUTH or DISCONNECT may come before CONNACK
            # [MQTT-3.1.2-30]. Without one, clients may send packets right after CONNECT
            # (section 3.1.4); they are events after ConnectReceived, in order.
            return self.fail(ReasonCode.PROTOCOL_ERROR, "packet before CONNACK")
        return _HANDLERS[packet_type](self, packet)

    def _on_connect(self, first_byte: int, body: memoryview) -> ev.Event:
        try:
            connect = decode_connect(first_byte, body)
        except UnsupportedProtocolVersion as exc:
            requested = getattr(exc, "requested_version", None)
            if requested == ProtocolVersion.V5:
                self.version = ProtocolVersion.V5
            elif requested is not None:
                self.version = ProtocolVersion.V311
            if self.version is not None:
                # [MQTT-3.1.2-2]: CONNACK 0x84 (v5) / 0x01 (3.x), then close.
                self.refuse(ReasonCode.UNSUPPORTED_PROTOCOL_VERSION)
            return self.close(ReasonCode.UNSUPPORTED_PROTOCOL_VERSION, str(exc))
        except MQTTError:
            self.version = None
            raise
        self.version = connect.protocol_version
        self.state = State.CONNECTING
        props = connect.properties
        self.keep_alive = connect.keep_alive
        if connect.protocol_version == ProtocolVersion.V5:
            if props.receive_maximum is not None:
                self.client_receive_maximum = props.receive_maximum
            if props.maximum_packet_size is not None:
                self.client_max_packet_size = props.maximum_packet_size
            if props.request_problem_information == 0:
                self.request_problem_information = False
            if props.topic_alias_maximum:
                self._outbound_aliases = OutboundAliases(props.topic_alias_maximum)
            self.session_expiry_interval = props.session_expiry_interval or 0
            self._enhanced_auth = props.authentication_method is not None
        return ev.ConnectReceived(connect)

    def _on_publish(self, packet: Packet) -> ev.Event | None:
        assert isinstance(packet, Publish)
        assert self.version is not None
        limits = self.limits
        if packet.qos > limits.maximum_qos:
            # [MQTT-3.2.2-12]: QoS above Maximum QoS -> DISCONNECT 0x9B
            return self.fail(ReasonCode.QOS_NOT_SUPPORTED, "QoS not supported")
        if packet.retain and not limits.retain_available:
            # [MQTT-3.2.2-14]: RETAIN when Retain Available is 0 -> DISCONNECT 0x9A
            return self.fail(ReasonCode.RETAIN_NOT_SUPPORTED, "retain not supported")
        if packet.properties is NO_PROPERTIES:
            # No properties (every 3.x PUBLISH): no alias, response topic or identifier.
            if not packet.topic:
                # A zero-length Topic Name without a Topic Alias is a Protocol Error (3.3.2.1)
                return self.fail(ReasonCode.PROTOCOL_ERROR, "empty topic name without topic alias")
            if not self._topic_name_valid(packet.topic):
                # Wildcards, NUL [MQTT-3.3.2-2] [MQTT-4.7.3-1]
                return self.fail(ReasonCode.TOPIC_NAME_INVALID, "topic name invalid")
            if packet.qos:
                return self._inbound_publish(packet)
            return ev.PublishReceived(packet, False)
        if packet.properties.subscription_identifiers:
            # A client's PUBLISH carries no Subscription Identifier [MQTT-3.3.4-6]
            return self.fail(ReasonCode.PROTOCOL_ERROR, "subscription identifier in PUBLISH")
        response_topic = packet.properties.response_topic
        if response_topic is not None and not self._topic_name_valid(response_topic):
            # The Response Topic is a Topic Name: no wildcards [MQTT-3.3.2-14]
            return self.fail(ReasonCode.PROTOCOL_ERROR, "response topic invalid")
        alias = packet.properties.topic_alias
        topic = packet.topic
        if alias is None and not topic:
            # A zero-length Topic Name without a Topic Alias is a Protocol Error (3.3.2.1)
            return self.fail(ReasonCode.PROTOCOL_ERROR, "empty topic name without topic alias")
        if alias is not None:
            aliases = self._inbound_aliases
            if aliases is None:
                aliases = self._inbound_aliases = InboundAliases(limits.topic_alias_maximum)
            resolved = aliases.resolve(topic, alias)
            if isinstance(resolved, int):
                return self.fail(resolved, "topic alias invalid")
            topic = resolved
        if not self._topic_name_valid(topic):
            # Wildcards, NUL or an empty topic name [MQTT-3.3.2-2] [MQTT-4.7.3-1]
            return self.fail(ReasonCode.TOPIC_NAME_INVALID, "topic name invalid")
        if alias is not None or topic is not packet.topic:
            packet = replace(
                packet,
                topic=topic,
                properties=replace(packet.properties, topic_alias=None),
            )
        if packet.qos > 0:
            return self._inbound_publish(packet)
        return ev.PublishReceived(packet, False)

    def _inbound_publish(self, packet: Publish) -> ev.Event:
        """A QoS 1 / 2 PUBLISH: within the inbound quota, or a duplicate of a QoS 2 one."""
        packet_id = packet.packet_id
        assert packet_id is not None
        if packet_id in self._inbound_unacked:
            return ev.PublishReceived(packet, packet.qos == 2)
        limits = self.limits
        quota = (
            limits.receive_maximum
            if self.version == ProtocolVersion.V5
            else limits.max_awaiting_rel
        )
        if len(self._inbound_unacked) >= quota:
            # [MQTT-3.3.4-7]: more than Receive Maximum unacknowledged -> 0x93
            return self.fail(ReasonCode.RECEIVE_MAXIMUM_EXCEEDED, "receive maximum exceeded")
        if self._inbound_unacked is NO_IDS:
            self._inbound_unacked = set()
        self._inbound_unacked.add(packet_id)
        return ev.PublishReceived(packet, False)

    def _on_subscribe(self, packet: Packet) -> ev.Event | None:
        assert isinstance(packet, Subscribe)
        return ev.SubscribeReceived(packet)

    def _on_pingreq(self, packet: Packet) -> None:
        # [MQTT-3.12.4-1]: the server MUST send PINGRESP in response to PINGREQ.
        self.send(Pingresp())
        return None

    def _on_disconnect(self, packet: Packet) -> ev.Event:
        assert isinstance(packet, Disconnect)
        expiry = packet.properties.session_expiry_interval
        if expiry is not None and expiry != 0 and self.session_expiry_interval == 0:
            # Section 3.14.2.2.2: a non-zero expiry on DISCONNECT when CONNECT's was 0
            return self.fail(ReasonCode.PROTOCOL_ERROR, "session expiry interval was 0")
        self.state = State.CLOSED
        return ev.DisconnectReceived(packet)

    def _failed_on_input(self, exc: MQTTError) -> ev.Event:
        if isinstance(exc, PacketTooLarge):
            return self.fail(ReasonCode.PACKET_TOO_LARGE, str(exc))
        return self.fail(exc.reason_code, str(exc))

    # -- decisions from the server -------------------------------------------------------

    def accept(self, connack: Connack) -> None:
        """Send a successful CONNACK and enter the connected state; a failure deferred
        behind the CONNECT follows it as a DISCONNECT."""
        if self.state is State.CLOSED:
            return
        self.state = State.CONNECTED
        version = self.version
        if (
            connack.properties is NO_PROPERTIES
            and connack.reason_code == ReasonCode.SUCCESS
            and version is not None
            and version != ProtocolVersion.V5
        ):
            # The 3.x CONNACK 0x00 is one of two byte strings: encoded once.
            key = (connack.session_present, version)
            data = _ACCEPTED.get(key)
            if data is None:
                data = _ACCEPTED[key] = encode(connack, version)
            self._emit(data)
        else:
            self.send(connack)
        held, self._held = self._held, None
        for packet in held or ():
            self.send(packet)
        if self._deferred_failure is not None:
            reason_code, reason = self._deferred_failure
            self._deferred_failure = None
            self.fail(reason_code, reason)

    def refuse(self, reason_code: int, properties: Properties = NO_PROPERTIES) -> None:
        """Send CONNACK with a failure reason code; the server closes afterwards [MQTT-3.2.2-7]."""
        self._deferred_failure = None
        self._held = None
        self.send(Connack(session_present=False, reason_code=reason_code, properties=properties))
        self.state = State.CLOSED

    def fail(self, reason_code: int, reason: str) -> ev.ProtocolFailed:
        """Close because of an error; in v5 after CONNACK a DISCONNECT carries the reason
        [MQTT-4.13.1-1]. Before CONNACK, a CONNACK with the reason code is sent (v5).

        A packet pipelined behind a CONNECT the server has not answered yet fails without
        sending anything: the server answers the CONNECT first (one CONNACK only,
        [MQTT-3.2.0-2]), and accept() then sends the DISCONNECT."""
        if self.state is State.CLOSED:
            return ev.ProtocolFailed(reason_code, reason)
        if self.state is State.CONNECTING and self._reading and not self._enhanced_auth:
            self._deferred_failure = (reason_code, reason)
            return ev.ProtocolFailed(reason_code, reason)
        if self.version == ProtocolVersion.V5:
            if self.state is State.CONNECTED:
                props = (
                    Properties(reason_string=reason)
                    if self.request_problem_information
                    else NO_PROPERTIES
                )
                self.send(Disconnect(reason_code=reason_code, properties=props))
            elif self.state is State.CONNECTING:
                self.send(Connack(reason_code=reason_code))
        self.state = State.CLOSED
        return ev.ProtocolFailed(reason_code, reason)

    def close(self, reason_code: int, reason: str) -> ev.ProtocolFailed:
        """Close without sending anything."""
        self.state = State.CLOSED
        return ev.ProtocolFailed(reason_code, reason)

    def disconnect(self, reason_code: int, reason: str | None = None) -> None:
        """Server-initiated DISCONNECT (v5 only sends a packet) and close."""
        if self.state is State.CONNECTED and self.version == ProtocolVersion.V5:
            props = (
                Properties(reason_string=reason)
                if reason and self.request_problem_information
                else NO_PROPERTIES
            )
            self.send(Disconnect(reason_code=reason_code, properties=props))
        self.state = State.CLOSED

    def inbound_completed(self, packet_id: int) -> None:
        """The server sent PUBACK / PUBCOMP for an inbound exchange: the quota is freed."""
        self._inbound_unacked.discard(packet_id)

    # -- output --------------------------------------------------------------------------

    def send(self, packet: Packet) -> None:
        """Encode a packet for the client, within its Maximum Packet Size [MQTT-3.1.2-24].
        Nothing is sent once the connection is closed: no packet follows a DISCONNECT or a
        refusing CONNACK [MQTT-3.14.4-1]."""
        assert self.version is not None
        if self.state is State.CLOSED:
            return
        if self.state is State.CONNECTING and packet.packet_type not in _BEFORE_CONNACK:
            if self._held is None:
                self._held = []
            self._held.append(packet)
            return
        version = self.version
        if version == ProtocolVersion.V5:
            props: Properties | None = getattr(packet, "properties", None)
            if (
                props is not None
                and not self.request_problem_information
                and packet.packet_type not in _PROBLEM_INFO_ALWAYS
                and (props.reason_string is not None or props.user_properties)
            ):
                packet = _without_problem_info(packet, props)
            data = encode(packet, version)
            if len(data) > self.client_max_packet_size and props is not None:
                # Drop the reason string and user properties first [MQTT-3.1.2-25]
                data = encode(_without_problem_info(packet, props), version)
        else:
            data = encode(packet, version)
        self._emit(data)

    def send_publish(
        self,
        topic: str,
        payload: bytes,
        qos: int,
        retain: bool,
        dup: bool,
        packet_id: int | None,
        properties: Properties,
    ) -> bool:
        """Encode an outgoing PUBLISH, using a topic alias where the client allows one.
        Returns False (nothing sent) when it is larger than the client accepts."""
        assert self.version is not None
        wire_topic = topic
        aliases = self._outbound_aliases
        if aliases is not None:
            alias, known = aliases.assign(topic)
            if alias:
                properties = replace(properties, topic_alias=alias)
                if known:
                    wire_topic = ""
        data = encode_publish(
            wire_topic, payload, qos, retain, dup, packet_id, properties, self.version
        )
        if len(data) > self.client_max_packet_size:
            if wire_topic and properties.topic_alias is not None:
                # The alias was (re)assigned for this PUBLISH, which is not sent.
                assert aliases is not None
                aliases.forget(topic)
            return False
        out = self._out
        if out is None:
            self._out = [data]
        else:
            out.append(data)
        return True

    def send_puback(self, packet_id: int, reason_code: int = ReasonCode.SUCCESS) -> None:
        if self.state is _CONNECTED:
            # Without properties: nothing to withhold, never above a Maximum Packet Size.
            assert self.version is not None
            self._emit(encode_ack(_PUBACK, packet_id, reason_code, self.version))
        else:
            self.send(Puback(packet_id=packet_id, reason_code=reason_code))
        self.inbound_completed(packet_id)

    def send_pubrec(self, packet_id: int, reason_code: int = ReasonCode.SUCCESS) -> None:
        self.send(Pubrec(packet_id=packet_id, reason_code=reason_code))
        if reason_code >= 0x80:
            self.inbound_completed(packet_id)

    def send_pubrel(self, packet_id: int, reason_code: int = ReasonCode.SUCCESS) -> None:
        self.send(Pubrel(packet_id=packet_id, reason_code=reason_code))

    def send_pubcomp(self, packet_id: int, reason_code: int = ReasonCode.SUCCESS) -> None:
        self.send(Pubcomp(packet_id=packet_id, reason_code=reason_code))
        self.inbound_completed(packet_id)

    def send_suback(self, packet_id: int, reason_codes: tuple[int, ...]) -> None:
        self.send(Suback(packet_id=packet_id, reason_codes=reason_codes))

    def send_unsuback(self, packet_id: int, reason_codes: tuple[int, ...]) -> None:
        self.send(Unsuback(packet_id=packet_id, reason_codes=reason_codes))

    def send_auth(self, reason_code: int, properties: Properties) -> None:
        self.send(Auth(reason_code=reason_code, properties=properties))

    def _emit(self, data: bytes) -> None:
        out = self._out
        if out is None:
            self._out = [data]
        else:
            out.append(data)

    def data_to_send(self) -> bytes:
        """Everything encoded since the last call, as one buffer (one write per turn)."""
        out = self._out
        if out is None:
            return b""
        self._out = None
        return out[0] if len(out) == 1 else b"".join(out)

    # -- time ----------------------------------------------------------------------------

    def keep_alive_deadline(self) -> float | None:
        """When the connection must be closed if nothing arrives [MQTT-3.1.2-24 (3.1.1)]:
        one and a half times the keep alive after the last packet."""
        if self.keep_alive == 0:
            return None
        return self.last_received + 1.5 * self.keep_alive


__all__ = ["Connect", "ConnectionLimits", "ServerConnection", "State", "Unsubscribe"]


def _event(kind: Callable[[Packet], ev.Event]) -> Callable[[ServerConnection, Packet], ev.Event]:
    def handle(conn: ServerConnection, packet: Packet) -> ev.Event:
        return kind(packet)

    return handle


# The transition table for a connected client: packet type -> what the connection does.
_HANDLERS: dict[int, Callable[[ServerConnection, Packet], ev.Event | None]] = {
    PacketType.PUBLISH: ServerConnection._on_publish,
    PacketType.PUBACK: _event(ev.PubackReceived),  # type: ignore[arg-type]
    PacketType.PUBREC: _event(ev.PubrecReceived),  # type: ignore[arg-type]
    PacketType.PUBREL: _event(ev.PubrelReceived),  # type: ignore[arg-type]
    PacketType.PUBCOMP: _event(ev.PubcompReceived),  # type: ignore[arg-type]
    PacketType.SUBSCRIBE: ServerConnection._on_subscribe,
    PacketType.UNSUBSCRIBE: _event(ev.UnsubscribeReceived),  # type: ignore[arg-type]
    PacketType.PINGREQ: ServerConnection._on_pingreq,
    PacketType.DISCONNECT: ServerConnection._on_disconnect,
    PacketType.AUTH: _event(ev.AuthReceived),  # type: ignore[arg-type]
}
