"""Hypothesis strategies that generate only valid MQTT packets for a given protocol version."""

from __future__ import annotations

from hypothesis import strategies as st

from roost.mqtt.constants import PacketType, ProtocolVersion
from roost.mqtt.packets import (
    NO_PROPERTIES,
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
from roost.mqtt.reason_codes import VALID_REASON_CODES

T = PacketType
V31, V311, V5 = ProtocolVersion.V31, ProtocolVersion.V311, ProtocolVersion.V5

# Any Unicode but U+0000 and lone surrogates (which UTF-8 cannot carry).
texts = st.text(
    alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"),
    max_size=12,
)
binaries = st.binary(max_size=24)
packet_ids = st.integers(1, 0xFFFF)
flags01 = st.integers(0, 1)
u16 = st.integers(0, 0xFFFF)
u32 = st.integers(0, 0xFFFF_FFFF)
subscription_identifier = st.integers(1, 268_435_455)
user_properties = st.lists(st.tuples(texts, texts), max_size=3).map(tuple)

_REASON_AND_USER = {"reason_string": texts, "user_properties": user_properties}
_MESSAGE = {
    "payload_format_indicator": flags01,
    "message_expiry_interval": u32,
    "content_type": texts,
    "response_topic": texts,
    "correlation_data": binaries,
    "user_properties": user_properties,
}
_CONTEXTS: dict[str, dict[str, st.SearchStrategy[object]]] = {
    "CONNECT": {
        "session_expiry_interval": u32,
        "request_problem_information": flags01,
        "request_response_information": flags01,
        "receive_maximum": st.integers(1, 0xFFFF),
        "topic_alias_maximum": u16,
        "user_properties": user_properties,
        "maximum_packet_size": st.integers(1, 0xFFFF_FFFF),
    },
    "CONNACK": {
        "session_expiry_interval": u32,
        "assigned_client_identifier": texts,
        "server_keep_alive": u16,
        "authentication_method": texts,
        "authentication_data": binaries,
        "response_information": texts,
        "server_reference": texts,
        "reason_string": texts,
        "receive_maximum": st.integers(1, 0xFFFF),
        "topic_alias_maximum": u16,
        "maximum_qos": flags01,
        "retain_available": flags01,
        "user_properties": user_properties,
        "maximum_packet_size": st.integers(1, 0xFFFF_FFFF),
        "wildcard_subscription_available": flags01,
        "subscription_identifier_available": flags01,
        "shared_subscription_available": flags01,
    },
    "PUBLISH": {
        **_MESSAGE,
        "subscription_identifiers": st.lists(subscription_identifier, max_size=3).map(tuple),
        "topic_alias": st.integers(1, 0xFFFF),
    },
    "WILL": {**_MESSAGE, "will_delay_interval": u32},
    "ACK": _REASON_AND_USER,
    "SUBSCRIBE": {
        "subscription_identifiers": st.lists(subscription_identifier, max_size=1).map(tuple),
        "user_properties": user_properties,
    },
    "UNSUBSCRIBE": {"user_properties": user_properties},
    "DISCONNECT": {
        **_REASON_AND_USER,
        "session_expiry_interval": u32,
        "server_reference": texts,
    },
    "AUTH": {**_REASON_AND_USER, "authentication_data": binaries},
}


def properties(context: str) -> st.SearchStrategy[Properties]:
    return st.fixed_dictionaries({}, optional=_CONTEXTS[context]).map(
        lambda values: Properties(**values)  # type: ignore[arg-type]
    )


def _props(version: ProtocolVersion, context: str) -> st.SearchStrategy[Properties]:
    return properties(context) if version == V5 else st.just(NO_PROPERTIES)


@st.composite
def connect_properties(draw: st.DrawFn) -> Properties:
    props = draw(properties("CONNECT"))
    method = draw(st.none() | texts)
    data = draw(st.none() | binaries) if method is not None else None
    return Properties(
        **{k: getattr(props, k) for k in _CONTEXTS["CONNECT"]},
        authentication_method=method,
        authentication_data=data,
    )


@st.composite
def connects(draw: st.DrawFn, version: ProtocolVersion) -> Connect:
    will = None
    if draw(st.booleans()):
        will = Will(
            topic=draw(texts),
            payload=draw(binaries),
            qos=draw(st.integers(0, 2)),
            retain=draw(st.booleans()),
            properties=draw(_props(version, "WILL")),
        )
    username = draw(st.none() | texts)
    password = draw(st.none() | binaries)
    if version != V5 and username is None:
        password = None
    return Connect(
        protocol_name="MQIsdp" if version == V31 else "MQTT",
        protocol_version=version,
        clean_start=draw(st.booleans()),
        keep_alive=draw(u16),
        client_id=draw(texts),
        will=will,
        username=username,
        password=password,
        properties=draw(connect_properties()) if version == V5 else NO_PROPERTIES,
    )


@st.composite
def connacks(draw: st.DrawFn, version: ProtocolVersion) -> Connack:
    if version == V5:
        code = draw(st.sampled_from(sorted(VALID_REASON_CODES[T.CONNACK])))
    else:
        code = draw(st.sampled_from([0x00, 0x84, 0x85, 0x88, 0x86, 0x87]))
    present = code == 0 and version != V31 and draw(st.booleans())
    return Connack(
        session_present=present, reason_code=code, properties=draw(_props(version, "CONNACK"))
    )


@st.composite
def publishes(draw: st.DrawFn, version: ProtocolVersion) -> Publish:
    qos = draw(st.integers(0, 2))
    return Publish(
        topic=draw(texts),
        payload=draw(st.binary(max_size=200)),
        qos=qos,
        retain=draw(st.booleans()),
        dup=qos > 0 and draw(st.booleans()),
        packet_id=draw(packet_ids) if qos else None,
        properties=draw(_props(version, "PUBLISH")),
    )


def _acks(
    cls: type, packet_type: PacketType, version: ProtocolVersion
) -> st.SearchStrategy[Packet]:
    if version != V5:
        return st.builds(cls, packet_id=packet_ids)
    return st.builds(
        cls,
        packet_id=packet_ids,
        reason_code=st.sampled_from(sorted(VALID_REASON_CODES[packet_type])),
        properties=properties("ACK"),
    )


def _subscriptions(version: ProtocolVersion) -> st.SearchStrategy[Subscription]:
    if version != V5:
        return st.builds(Subscription, topic_filter=texts, qos=st.integers(0, 2))
    return st.builds(
        Subscription,
        topic_filter=texts,
        qos=st.integers(0, 2),
        no_local=st.booleans(),
        retain_as_published=st.booleans(),
        retain_handling=st.integers(0, 2),
    )


def _codes(packet_type: PacketType) -> st.SearchStrategy[tuple[int, ...]]:
    codes = st.sampled_from(sorted(VALID_REASON_CODES[packet_type]))
    return st.lists(codes, min_size=1, max_size=5).map(tuple)


def subscribes(version: ProtocolVersion) -> st.SearchStrategy[Subscribe]:
    return st.builds(
        Subscribe,
        packet_id=packet_ids,
        subscriptions=st.lists(_subscriptions(version), min_size=1, max_size=4).map(tuple),
        properties=_props(version, "SUBSCRIBE"),
    )


def subacks(version: ProtocolVersion) -> st.SearchStrategy[Suback]:
    v3_codes = st.lists(st.sampled_from([0, 1, 2, 0x80]), min_size=1, max_size=5).map(tuple)
    return st.builds(
        Suback,
        packet_id=packet_ids,
        reason_codes=_codes(T.SUBACK) if version == V5 else v3_codes,
        properties=_props(version, "ACK"),
    )


def unsubscribes(version: ProtocolVersion) -> st.SearchStrategy[Unsubscribe]:
    return st.builds(
        Unsubscribe,
        packet_id=packet_ids,
        topic_filters=st.lists(texts, min_size=1, max_size=4).map(tuple),
        properties=_props(version, "UNSUBSCRIBE"),
    )


def unsubacks(version: ProtocolVersion) -> st.SearchStrategy[Unsuback]:
    if version != V5:
        return st.builds(Unsuback, packet_id=packet_ids)
    return st.builds(
        Unsuback,
        packet_id=packet_ids,
        reason_codes=_codes(T.UNSUBACK),
        properties=properties("ACK"),
    )


def disconnects(version: ProtocolVersion) -> st.SearchStrategy[Disconnect]:
    if version != V5:
        return st.just(Disconnect())
    return st.builds(
        Disconnect,
        reason_code=st.sampled_from(sorted(VALID_REASON_CODES[T.DISCONNECT])),
        properties=properties("DISCONNECT"),
    )


@st.composite
def auths(draw: st.DrawFn) -> Auth:
    if draw(st.booleans()):
        return Auth()
    props = draw(properties("AUTH"))
    return Auth(
        reason_code=draw(st.sampled_from(sorted(VALID_REASON_CODES[T.AUTH]))),
        properties=Properties(
            authentication_method=draw(texts),
            authentication_data=props.authentication_data,
            reason_string=props.reason_string,
            user_properties=props.user_properties,
        ),
    )


def packets(version: ProtocolVersion) -> st.SearchStrategy[Packet]:
    """Every packet type valid for `version`, in both directions."""
    choices: list[st.SearchStrategy[Packet]] = [
        connects(version),
        connacks(version),
        publishes(version),
        _acks(Puback, T.PUBACK, version),
        _acks(Pubrec, T.PUBREC, version),
        _acks(Pubrel, T.PUBREL, version),
        _acks(Pubcomp, T.PUBCOMP, version),
        subscribes(version),
        subacks(version),
        unsubscribes(version),
        unsubacks(version),
        st.just(Pingreq()),
        st.just(Pingresp()),
        disconnects(version),
    ]
    if version == V5:
        choices.append(auths())
    return st.one_of(choices)
