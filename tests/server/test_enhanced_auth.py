"""MQTT 5 enhanced authentication (section 4.12) through the pluggable hook, and the
authenticator / authorizer chain, over a real socket."""

from __future__ import annotations

from collections.abc import Callable

from roost.auth.base import (
    Action,
    AuthChain,
    AuthOutcome,
    AuthStep,
    ClientInfo,
    Decision,
    EnhancedAuthenticator,
)
from roost.mqtt.constants import ProtocolVersion, ReasonCode
from roost.mqtt.packets import Auth, Connack, Connect, Disconnect, Properties, Suback
from tests.conftest import BrokerHandle
from tests.rawclient import RawClient


class ChallengeResponse:
    """A two-step method for the test: the server sends a nonce, the client returns it
    reversed; a client that sends b"bad" fails."""

    def __init__(self) -> None:
        self.nonce = b"nonce-123"

    def start(self, client: ClientInfo, data: bytes | None) -> AuthStep:
        if data == b"bad":
            return AuthStep(outcome=AuthOutcome.FAILURE, reason_code=ReasonCode.NOT_AUTHORIZED)
        return AuthStep(outcome=AuthOutcome.CONTINUE, data=self.nonce)

    def step(self, client: ClientInfo, data: bytes | None) -> AuthStep:
        if data == self.nonce[::-1]:
            return AuthStep(outcome=AuthOutcome.SUCCESS, data=b"welcome")
        return AuthStep(outcome=AuthOutcome.FAILURE, reason_code=ReasonCode.NOT_AUTHORIZED)


def factory(method: str) -> EnhancedAuthenticator | None:
    return ChallengeResponse() if method == "TEST-CR" else None


def auth_broker(broker_factory: Callable[..., BrokerHandle]) -> BrokerHandle:
    return broker_factory(auth=AuthChain(enhanced={"TEST-CR": factory}))


def connect_with_method(client: RawClient, method: str, data: bytes | None = None) -> None:
    client.send(
        Connect(
            protocol_version=ProtocolVersion.V5,
            client_id="auth-client",
            properties=Properties(authentication_method=method, authentication_data=data),
        )
    )


def test_enhanced_auth_challenge_then_success(broker_factory: Callable[..., BrokerHandle]) -> None:
    """[MQTT-4.12.0-2] AUTH 0x18 continues; CONNACK 0x00 carries the method [MQTT-4.12.0-5]."""
    broker = auth_broker(broker_factory)
    client = RawClient(broker.host, broker.port)
    connect_with_method(client, "TEST-CR", b"hello")
    challenge = client.recv()
    assert isinstance(challenge, Auth)
    assert challenge.reason_code == ReasonCode.CONTINUE_AUTHENTICATION
    assert challenge.properties.authentication_data == b"nonce-123"
    client.send(
        Auth(
            reason_code=ReasonCode.CONTINUE_AUTHENTICATION,
            properties=Properties(
                authentication_method="TEST-CR", authentication_data=b"321-ecnon"
            ),
        )
    )
    connack = client.recv()
    assert isinstance(connack, Connack)
    assert connack.reason_code == ReasonCode.SUCCESS
    assert connack.properties.authentication_method == "TEST-CR"
    assert connack.properties.authentication_data == b"welcome"
    assert isinstance(client.subscribe("t/#"), Suback)


def test_enhanced_auth_wrong_answer_refused(broker_factory: Callable[..., BrokerHandle]) -> None:
    broker = auth_broker(broker_factory)
    client = RawClient(broker.host, broker.port)
    connect_with_method(client, "TEST-CR")
    client.recv()
    client.send(
        Auth(
            reason_code=ReasonCode.CONTINUE_AUTHENTICATION,
            properties=Properties(authentication_method="TEST-CR", authentication_data=b"wrong"),
        )
    )
    got = client.expect_closed()
    assert [type(p) for p in got] == [Connack]
    assert got[0].reason_code == ReasonCode.NOT_AUTHORIZED  # type: ignore[union-attr]


def test_unknown_authentication_method_gets_0x8c(
    broker_factory: Callable[..., BrokerHandle],
) -> None:
    """[MQTT-4.12.0-1] an unsupported Authentication Method: CONNACK 0x8C, close."""
    broker = auth_broker(broker_factory)
    client = RawClient(broker.host, broker.port)
    connect_with_method(client, "NOPE")
    got = client.expect_closed()
    assert len(got) == 1 and isinstance(got[0], Connack)
    assert got[0].reason_code == ReasonCode.BAD_AUTHENTICATION_METHOD


def test_re_authentication_after_connect(broker_factory: Callable[..., BrokerHandle]) -> None:
    """Re-authentication with AUTH 0x19 and the same method (section 4.12.1)."""
    broker = auth_broker(broker_factory)
    client = RawClient(broker.host, broker.port)
    connect_with_method(client, "TEST-CR")
    client.recv()
    answer = Properties(authentication_method="TEST-CR", authentication_data=b"321-ecnon")
    client.send(Auth(reason_code=ReasonCode.CONTINUE_AUTHENTICATION, properties=answer))
    assert isinstance(client.recv(), Connack)
    client.send(
        Auth(
            reason_code=ReasonCode.RE_AUTHENTICATE,
            properties=Properties(authentication_method="TEST-CR"),
        )
    )
    again = client.recv()
    assert isinstance(again, Auth) and again.reason_code == ReasonCode.CONTINUE_AUTHENTICATION
    client.send(Auth(reason_code=ReasonCode.CONTINUE_AUTHENTICATION, properties=answer))
    done = client.recv()
    assert isinstance(done, Auth) and done.reason_code == ReasonCode.SUCCESS


def test_auth_without_method_in_use_is_protocol_error(broker: BrokerHandle) -> None:
    """An AUTH when no method was set at CONNECT is a Protocol Error: DISCONNECT 0x82."""
    client = RawClient(broker.host, broker.port)
    client.connect()
    client.send(
        Auth(
            reason_code=ReasonCode.RE_AUTHENTICATE, properties=Properties(authentication_method="X")
        )
    )
    got = client.expect_closed()
    assert len(got) == 1 and isinstance(got[0], Disconnect)
    assert got[0].reason_code == ReasonCode.PROTOCOL_ERROR


class DenyUser:
    def authenticate(self, connect: Connect, client: ClientInfo) -> Decision | None:
        if connect.username == "mallory":
            return Decision.deny(ReasonCode.BAD_USER_NAME_OR_PASSWORD)
        return None


class ReadOnly:
    def authorize(
        self, client: ClientInfo, action: Action, topic: str, qos: int, retain: bool
    ) -> Decision | None:
        if action is Action.PUBLISH and topic.startswith("ro/"):
            return Decision.deny()
        if action is Action.SUBSCRIBE and topic.startswith("secret"):
            return Decision.deny()
        return None


def test_authenticator_chain_refuses_v311_with_code_4(
    broker_factory: Callable[..., BrokerHandle],
) -> None:
    """3.1.1 CONNACK return code 0x04 for bad user name or password."""
    broker = broker_factory(auth=AuthChain(authenticators=[DenyUser()]))
    client = RawClient(broker.host, broker.port, ProtocolVersion.V311)
    got = client.connect(username="mallory", password=b"x")
    assert isinstance(got, Connack)
    assert got.reason_code == ReasonCode.BAD_USER_NAME_OR_PASSWORD  # decoded up from 0x04
    ok = RawClient(broker.host, broker.port, ProtocolVersion.V311)
    assert ok.connect(username="alice", password=b"x").reason_code == 0  # type: ignore[union-attr]


def test_authorizer_denies_publish_and_subscribe(
    broker_factory: Callable[..., BrokerHandle],
) -> None:
    broker = broker_factory(auth=AuthChain(authorizers=[ReadOnly()]))
    client = RawClient(broker.host, broker.port)
    client.connect()
    suback = client.subscribe("secret/x", qos=1)
    assert isinstance(suback, Suback) and suback.reason_codes == (ReasonCode.NOT_AUTHORIZED,)
    client.publish("ro/x", b"p", qos=1, packet_id=7)
    puback = client.recv()
    assert puback.reason_code == ReasonCode.NOT_AUTHORIZED  # type: ignore[union-attr]
