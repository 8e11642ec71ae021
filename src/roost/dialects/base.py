"""The Dialect interface: one device platform's rules as pure decisions (no I/O).

A listener selects a dialect (``[[listeners]] dialect = "..."``). The server asks it at
four points, and each answer is a value, never an action:

1. ``check_connect(connect)`` before CONNECT is negotiated: protocol versions, the
   client-id grammar, session rules (e.g. "clean session required": the dialect may
   return an adjusted ``Connect``), the will (topic policy, QoS cap, retain ignored).
2. ``authenticate(connect, client, credentials)`` once the CONNECT is well formed: the
   username grammar (-> tenant + identity), the credential check through the registry's
   read interface (``roost.auth.credentials.CredentialStore``, or None when no registry
   is configured), and the refusal reason code for the client's protocol version.
   ``Admission.authenticated`` False means "I did not decide on credentials": the
   server's AuthChain decides, as it did before dialects existed.
3. ``check_publish(client, topic, qos, retain, payload_size)`` in the PUBLISH pipeline:
   topic policy, reserved topics, payload size; a reason code refuses the message.
4. ``check_subscribe(client, topic_filter, qos, shared)`` per requested subscription
   (the inner filter of a ``$share``): topic policy, reserved topics.

What is a *capability* rather than a decision is in ``limits`` (``DialectLimits``):
maximum QoS, retain allowed / accepted-and-ignored / refused, wildcard and shared
subscriptions, persistent sessions, maximum packet size and client-id length. The
server folds them into the listener's effective ``MQTTConfig`` (only ever lowering a
limit), so the protocol layer enforces them and a v5 CONNACK advertises them.

Reason codes are MQTT 5 codes; the encoder maps them down for 3.x (0x87 -> 0x05,
0x86 -> 0x04, 0x85 -> 0x02; SUBACK failures -> 0x80). A dialect that wants different
codes per version looks at ``connect.protocol_version`` / ``client.protocol_version``.

How the dialects still to come map onto this interface:

- ``cumulocity-smartrest``: client id ``[connectionType:]deviceIdentifier[:template]``
  (``check_connect`` parses it; uniqueness is by deviceIdentifier, so ``Admission``
  gains a ``session_client_id`` that the server keys sessions and takeover on); username ``<tenant>/<user>`` as in Cumulocity Connect; QoS 0..2; clean session 0
  allowed; no will (``limits.will`` False: CONNECT with a will refused); retained flag
  ignored (``RetainPolicy.IGNORED``); ``check_publish`` allows only the SmartREST
  upstream topics (``s/us``, ``s/uc/<X-ID>``, ``s/ut/<X-ID>``, ``t|q|c/...`` modes, child
  ids as an extra level), ``check_subscribe`` only downstream ones (``s/ds``,
  ``s/dc/<X-ID>``, ``s/e``, ``s/dt``); payload transforms (CSV escaping) belong to the
  streams layer, not here. Done: ``roost.dialects.cumulocity_smartrest`` (a will is
  dropped rather than refused; topics mapped per device; refusals reported on ``s/e``
  through ``PublishErrors``).
- ``alibaba``: username ``<deviceName>&<productKey>``, client id
  ``<clientId>|securemode=..,signmethod=..,timestamp=..|``, password an HMAC over the
  sorted parameters with the device secret (``authenticate`` computes it with the
  secret from the registry; tenant = product key or instance id); QoS 0 and 1
  (``limits.maximum_qos`` 1); no will, no retained (``limits.will`` False,
  ``RetainPolicy.REFUSED``); subscription QoS not honoured (granted = 1, the sender's
  QoS is delivered); topics ``/<productKey>/<deviceName>/user/...`` and
  ``/sys/<productKey>/<deviceName>/...`` checked in ``check_publish`` /
  ``check_subscribe`` against the device's own key and name; ``$share`` names of
  letters, digits and ``_``; at most 20 user properties. Done: ``roost.dialects.alibaba``
  (will and retain allowed for 5.0 only, so checked per version in the dialect rather than
  in ``limits``; ``limits.honour_subscription_qos`` False; property and share-name rules through
  ``PacketRules``; sessions keyed on the device name; RRPC in ``roost.server.rrpc``).
- ``watson``: client id ``d:<org>:<type>:<id>`` (type and id up to 36 of
  ``[A-Za-z0-9_.-]``), tenant = org id (``quickstart`` anonymous, QoS 0 only, no
  subscriptions); username ``use-token-auth``, password the device token
  (``CredentialStore.check_token``); publish only ``iot-2/evt/<event>/fmt/<fmt>``,
  subscribe only ``iot-2/cmd/<command>/fmt/<fmt>`` (wildcards allowed in those slots)
  and ``iotdm-1/#`` for managed devices; payload at most 131072 bytes
  (``limits.max_payload_size``, checked in ``check_publish``); QoS 2 and RETAIN refused
  only on managed devices' ``iotdevice-1/...`` messages. Done: ``roost.dialects.watson``,
  which also maps topics (below).

Optional: a dialect whose clients name topics differently from how Roost routes them
(Watson: a device's ``iot-2/evt/...`` is its application's ``iot-2/type/<t>/id/<i>/evt/...``)
also implements ``TopicMapping``. Once a client is admitted the server asks it once for
that client's ``ClientTopics`` (None: no mapping), and then maps each PUBLISH topic and
SUBSCRIBE / UNSUBSCRIBE filter inbound (after the checks above, which see the client's own
form) and each delivered topic outbound. A dialect without it costs the delivery path one
attribute check.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from typing import Protocol, runtime_checkable

from roost.auth.base import ClientInfo
from roost.auth.credentials import CredentialStore
from roost.mqtt.packets import Connect, Properties
from roost.records import record


class RetainPolicy(Enum):
    """What a dialect does with the RETAIN flag of a PUBLISH (and of the will)."""

    ALLOWED = "allowed"
    # Accepted, then delivered and stored as if it had not been set.
    IGNORED = "ignored"
    # Refused: Retain Available is 0 (v5 DISCONNECT 0x9A; 3.x: the connection is closed).
    REFUSED = "refused"


@dataclass(frozen=True, slots=True, kw_only=True)
class DialectLimits:
    """Capabilities and limits of a dialect; None means "the server's own setting"."""

    max_packet_size: int | None = None
    max_client_id_length: int | None = None
    max_payload_size: int | None = None
    maximum_qos: int = 2
    retain: RetainPolicy = RetainPolicy.ALLOWED
    wildcard_subscriptions: bool = True
    shared_subscriptions: bool = True
    persistent_sessions: bool = True
    will: bool = True
    # False: the QoS a subscription asks for is not honoured; every accepted subscription
    # is granted `maximum_qos`, so a message is delivered at the QoS its sender chose (Alibaba).
    honour_subscription_qos: bool = True
    # Deliver every message at the QoS of the subscription it matched, not the lower of
    # that and the message's (SmartREST: "in the QoS the client defined when subscribing").
    subscription_qos: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class Refusal:
    """CONNECT refused with this (MQTT 5) reason code."""

    reason_code: int
    reason: str


@record(kw_only=True)  # one per CONNECT
class Admission:
    """CONNECT accepted by the dialect: who the client is."""

    tenant: str
    username: str | None = None
    device_id: str | None = None
    # True: the dialect verified credentials; False: the AuthChain decides.
    authenticated: bool = False
    # What sessions and takeover are keyed on, when not the whole client id (SmartREST:
    # the deviceIdentifier of `connectionType:deviceIdentifier:template`).
    session_client_id: str | None = None


class Dialect(Protocol):
    """A device platform's rules; see the module docstring for when each is asked."""

    @property
    def name(self) -> str: ...

    @property
    def limits(self) -> DialectLimits: ...

    def check_connect(self, connect: Connect) -> Connect | Refusal:
        """The CONNECT to go on with (possibly adjusted), or a refusal."""
        ...

    def authenticate(
        self, connect: Connect, client: ClientInfo, credentials: CredentialStore | None
    ) -> Admission | Refusal: ...

    def check_publish(
        self, client: ClientInfo, topic: str, qos: int, retain: bool, payload_size: int
    ) -> int | None:
        """None to let the PUBLISH through, else the reason code refusing it."""
        ...

    def check_subscribe(
        self, client: ClientInfo, topic_filter: str, qos: int, shared: bool
    ) -> int | None:
        """None to let the subscription through, else the SUBACK reason code."""
        ...


class ClientTopics(Protocol):
    """One client's topic mapping: its own form <-> the form Roost routes (canonical)."""

    def inbound_topic(self, topic: str) -> str:
        """The canonical topic of a PUBLISH (and of the will) from this client."""
        ...

    def inbound_filter(self, topic_filter: str) -> str:
        """The canonical filter of a SUBSCRIBE / UNSUBSCRIBE from this client."""
        ...

    def outbound_topic(self, topic: str) -> str:
        """The topic a canonical message is delivered to this client on."""
        ...


@runtime_checkable
class TopicMapping(Protocol):
    """Implemented by a dialect that maps topics; the others need not say anything."""

    def client_topics(self, client: ClientInfo) -> ClientTopics | None: ...


def topic_mapping(dialect: Dialect) -> TopicMapping | None:
    """The dialect's topic mapping, or None when it does not map topics."""
    return dialect if isinstance(dialect, TopicMapping) else None


@dataclass(frozen=True, slots=True, kw_only=True)
class PublishNotice:
    """A message to the publisher of a refused PUBLISH, on `topic` (the client's own form)."""

    topic: str
    payload: bytes


@runtime_checkable
class PublishErrors(Protocol):
    """Implemented by a dialect that tells a client about its refused PUBLISH packets
    (SmartREST: an error line on `s/e`); the others need not say anything."""

    def publish_refused(
        self, client: ClientInfo, topic: str, reason_code: int
    ) -> PublishNotice | None: ...


@runtime_checkable
class PacketRules(Protocol):
    """Implemented by a dialect with rules on MQTT 5 properties and on `$share` names
    (Alibaba); the others need not say anything. Asked after `check_publish` and before
    `check_subscribe`; None lets the packet through, a reason code refuses it."""

    def check_publish_properties(self, client: ClientInfo, properties: Properties) -> int | None:
        """The PUBLISH's properties (user properties, response topic, correlation data)."""
        ...

    def check_share_name(self, client: ClientInfo, share_name: str) -> int | None:
        """The ShareName of a `$share/<ShareName>/<filter>` subscription."""
        ...


@runtime_checkable
class SubscribeErrors(Protocol):
    """Implemented by a dialect that tells a client about its refused subscriptions (Watson
    gateways: a notification on their `notify` topic), after the SUBACK."""

    def subscribe_refused(
        self, client: ClientInfo, topic_filter: str, reason_code: int
    ) -> PublishNotice | None: ...
