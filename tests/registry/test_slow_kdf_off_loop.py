"""A password check with a slow KDF runs off the event loop: while one client's
credentials are being verified, the broker keeps serving everyone else, and the packets
that client sent behind its CONNECT are handled after the check, in order."""

from __future__ import annotations

from roost.config import RegistryConfig
from roost.mqtt.constants import ProtocolVersion
from roost.mqtt.packets import (
    Connack,
    Connect,
    Puback,
    Publish,
    Suback,
    Subscribe,
    Subscription,
)
from tests.conftest import start_broker
from tests.dialects.support import registry_of
from tests.rawclient import RawClient

SLOW_N = 1 << 17  # scrypt with N = 2**17: a few hundred milliseconds per check


def test_slow_password_check_does_not_stall_others() -> None:
    broker = start_broker(
        registry=RegistryConfig(enabled=True, allow_anonymous=True, scrypt_n=SLOW_N)
    )
    try:
        registry = registry_of(broker)
        assert registry.tenant("default") is not None  # made at start
        registry.add_device("default", "dev")
        registry.add_password("default", "dev", "dev-user", "correct horse")

        other = RawClient(broker.host, broker.port)
        assert isinstance(other.connect("other"), Connack)
        assert isinstance(other.subscribe("echo/#", qos=1), Suback)

        slow = RawClient(broker.host, broker.port, ProtocolVersion.V5)
        # CONNECT and, pipelined behind it, a SUBSCRIBE: both wait for the check.
        slow.send_raw(
            _encode(
                Connect(
                    protocol_version=ProtocolVersion.V5,
                    client_id="dev",
                    username="dev-user",
                    password=b"correct horse",
                )
            )
            + _encode(
                Subscribe(packet_id=9, subscriptions=(Subscription(topic_filter="slow/#", qos=1),))
            )
        )
        # Meanwhile the other client is served: a full QoS 1 round trip through the broker.
        other.publish("echo/1", b"ping", qos=1, packet_id=1)
        got = [other.recv(timeout=2), other.recv(timeout=2)]
        assert {type(p) for p in got} == {Puback, Publish}
        # ... before the slow client has its answer (scrypt N=2**17 takes far longer).
        try:
            early = slow.recv(timeout=0.01)
        except TimeoutError:
            early = None
        assert early is None
        connack = slow.recv(timeout=20)
        assert isinstance(connack, Connack) and connack.reason_code == 0
        suback = slow.recv(timeout=5)
        assert isinstance(suback, Suback) and suback.packet_id == 9 and suback.reason_codes == (1,)
    finally:
        broker.stop()


def _encode(packet: Connect | Subscribe) -> bytes:
    from roost.mqtt.codec import encode

    return encode(packet, ProtocolVersion.V5)
