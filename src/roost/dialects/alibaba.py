"""The Alibaba Cloud IoT Platform dialect (seed: alibaba-iot-mqtt.md), rule by rule.

A device logs in with its device certificate (ProductKey, DeviceName, DeviceSecret) as
Alibaba publicly documents it:

- client id ``<clientId>|securemode=<m>,signmethod=<method>[,timestamp=<ts>][,...]|``;
- username ``<deviceName>&<productKey>``;
- password the hex HMAC (``hmacmd5``, ``hmacsha1``, ``hmacsha256``) keyed by the
  DeviceSecret over ``clientId<clientId>deviceName<dn>productKey<pk>[timestamp<ts>]``
  (the parameters sorted by name, each name followed by its value).

The tenant is the product key; the registry device is the device name in it, with a device
secret credential. Sessions and takeover are keyed on the device name (one connection per
device certificate), so a reconnect with another timestamp resumes the session.

Topics: a device uses its own ``/<pk>/<dn>/...`` (custom topics, ``/<pk>/<dn>/user/...``)
and ``/sys/<pk>/<dn>/...`` (system topics, RRPC ``/sys/<pk>/<dn>/rrpc/request|response/<id>``)
and, when its client id carries ``ext=1``, the custom-topic RRPC form
``/ext/rrpc/<id>/<pk>/<dn>/...``. A device's reply on ``/ext/rrpc/<id>/<topic>`` is routed as
``/ext/rrpc-response/<id>/<topic>`` (``TopicMapping``), so that it does not come back to the
device's own ``/ext/rrpc/+/<topic>`` subscription as another request.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from roost.auth.base import ClientInfo
from roost.auth.credentials import CredentialStore
from roost.dialects.base import Admission, DialectLimits, Refusal
from roost.mqtt.constants import ProtocolVersion, ReasonCode
from roost.mqtt.packets import Connect, Properties

# "The client ID cannot exceed 64 characters in length." (public connection guide)
MAX_CLIENT_ID_LENGTH = 64
# "Valid values of the keep-alive time: 30 to 1,200 seconds ... IoT Platform rejects the
# connection" (public connection guide).
MIN_KEEP_ALIVE = 30
MAX_KEEP_ALIVE = 1200
# "Maximum 20 properties. Keys cannot start with underscore (_). Combined key-value length
# cannot exceed 128 characters." / "ResponseTopic and CorrelationData each have a maximum
# length of 128 characters."
MAX_USER_PROPERTIES = 20
MAX_PROPERTY_LENGTH = 128
# signmethod as Alibaba spells it -> the hashlib digest.
SIGN_METHODS = {"hmacmd5": "md5", "hmacsha1": "sha1", "hmacsha256": "sha256"}
# "${ShareName}: A string that contains only letters, digits, and underscores (_)."
_SHARE_NAME = re.compile(r"[A-Za-z0-9_]+", re.ASCII)
# Product keys and device names: what is safe as one topic level and in the username.
_NAME = re.compile(r"[A-Za-z0-9_.:@-]{1,64}", re.ASCII)
_PARAM_KEY = re.compile(r"[A-Za-z0-9_]+", re.ASCII)

SYS = "sys"
EXT_RRPC = ("ext", "rrpc")
# Where a device's custom-topic RRPC replies are routed (see the module docstring).
RRPC_RESPONSE_ROOT = "/ext/rrpc-response/"


@dataclass(frozen=True, slots=True, kw_only=True)
class SignedClientId:
    """``<client_id>|k=v,...|`` taken apart."""

    client_id: str
    params: dict[str, str]

    @property
    def timestamp(self) -> str | None:
        return self.params.get("timestamp")

    @property
    def ext(self) -> bool:
        return self.params.get("ext") == "1"


def parse_client_id(mqtt_client_id: str) -> SignedClientId | None:
    """The client id's parts, or None unless it is ``<id>|securemode=..,signmethod=..|``."""
    client_id, bar, rest = mqtt_client_id.partition("|")
    if not bar or not rest.endswith("|") or not 1 <= len(client_id) <= MAX_CLIENT_ID_LENGTH:
        return None
    params: dict[str, str] = {}
    for item in rest[:-1].split(","):
        key, equals, value = item.partition("=")
        if not equals or _PARAM_KEY.fullmatch(key) is None or key in params or "|" in value:
            return None
        params[key] = value
    if not params.get("securemode") or not params.get("signmethod"):
        return None
    timestamp = params.get("timestamp")
    if timestamp is not None and not timestamp.isdigit():
        return None
    return SignedClientId(client_id=client_id, params=params)


def parse_username(username: str | None) -> tuple[str, str] | None:
    """(deviceName, productKey) of ``<deviceName>&<productKey>``, or None."""
    if username is None:
        return None
    device_name, amp, product_key = username.partition("&")
    if not amp or _NAME.fullmatch(device_name) is None or _NAME.fullmatch(product_key) is None:
        return None
    return device_name, product_key


def sign_content(signed: SignedClientId, device_name: str, product_key: str) -> str:
    """What the password signs: the parameters sorted by name, each name then its value."""
    content = f"clientId{signed.client_id}deviceName{device_name}productKey{product_key}"
    if signed.timestamp is not None:
        content += f"timestamp{signed.timestamp}"
    return content


def own_topic(levels: list[str], product_key: str, device_name: str, ext: bool) -> bool:
    """Whether a topic name or filter (split on `/`) is one of the device's own:
    ``/<pk>/<dn>/...``, ``/sys/<pk>/<dn>/...``, and with ``ext`` ``/ext/rrpc/<id>/<pk>/<dn>/...``.
    The product key and device name levels must be literal (no wildcard)."""
    if len(levels) < 4 or levels[0] != "":
        return False
    if levels[1] == product_key:
        return levels[2] == device_name
    if levels[1] == SYS:
        return len(levels) >= 5 and levels[2] == product_key and levels[3] == device_name
    if ext and tuple(levels[1:3]) == EXT_RRPC:
        return (
            len(levels) >= 7
            and levels[3] not in ("", "#")
            and levels[4] == product_key
            and levels[5] == device_name
        )
    return False


def property_violation(properties: Properties) -> int | None:
    """The reason code for properties the seed does not allow, or None."""
    user_properties = properties.user_properties
    if len(user_properties) > MAX_USER_PROPERTIES:
        return ReasonCode.QUOTA_EXCEEDED
    for key, value in user_properties:
        if key.startswith("_") or len(key) + len(value) > MAX_PROPERTY_LENGTH:
            return ReasonCode.IMPLEMENTATION_SPECIFIC_ERROR
    response_topic, correlation = properties.response_topic, properties.correlation_data
    if response_topic is not None and len(response_topic) > MAX_PROPERTY_LENGTH:
        return ReasonCode.IMPLEMENTATION_SPECIFIC_ERROR
    if correlation is not None and len(correlation) > MAX_PROPERTY_LENGTH:
        return ReasonCode.IMPLEMENTATION_SPECIFIC_ERROR
    return None


class RrpcReplyTopics:
    """A device with ``ext=1``: its replies on ``/ext/rrpc/<id>/<topic>`` are routed as
    ``/ext/rrpc-response/<id>/<topic>``; everything else is left as it is."""

    __slots__ = ()

    def inbound_topic(self, topic: str) -> str:
        if topic.startswith("/ext/rrpc/"):
            return RRPC_RESPONSE_ROOT + topic[len("/ext/rrpc/") :]
        return topic

    def inbound_filter(self, topic_filter: str) -> str:
        return topic_filter

    def outbound_topic(self, topic: str) -> str:
        return topic


def _has_ext(client: ClientInfo) -> bool:
    signed = parse_client_id(client.client_id)
    return signed is not None and signed.ext


def _identity(client: ClientInfo) -> tuple[str, str]:
    """(productKey, deviceName) of an admitted client."""
    parsed = parse_username(client.username)
    return ("", "") if parsed is None else (parsed[1], parsed[0])


class AlibabaDialect:
    """Alibaba IoT Platform: signed device login, QoS 0 and 1, subscription QoS not
    honoured, will and retained messages for MQTT 5.0 only, per-device topics, user
    property limits, `$share` names of letters, digits and `_`.

    Where the seed leaves room, Roost decides (docs/dialects.md):
    - MQTT 3.1, 3.1.1 and 5.0. A client id not of the signed form, or whose own part is
      empty or over 64 characters: 0x02 (v5 0x85). Keep alive outside 30..1200 s: refused
      (v5 0x83; 3.x 0x03, the nearest 3.x has).
    - A bad signature, an unknown signmethod, a malformed username or password: 0x04 (v5
      0x86). An unknown product key or device, one without a device secret, a disabled
      one: 0x05 (v5 0x87). The timestamp is signed but not checked for freshness.
    - 3.x: a will refuses the CONNECT (0x05); a retained PUBLISH is dropped. 5.0: both
      allowed (the will on one of the device's own topics, else 0x90).
    - Another device's topic, or one outside the schemes: PUBLISH dropped (v5 PUBACK 0x87),
      SUBSCRIBE 0x80 (v5 0x87). A share name with other characters: v5 0x8F (3.x 0x80).
    - Properties beyond the seed's limits: PUBLISH dropped, v5 PUBACK 0x97 for more than 20
      user properties, 0x83 for the other rules; a will with them refuses the CONNECT."""

    __slots__ = ()

    name = "alibaba"
    limits = DialectLimits(maximum_qos=1, honour_subscription_qos=False)

    # -- CONNECT --------------------------------------------------------------------------

    def check_connect(self, connect: Connect) -> Connect | Refusal:
        signed = parse_client_id(connect.client_id)
        if signed is None:
            return Refusal(
                reason_code=ReasonCode.CLIENT_IDENTIFIER_NOT_VALID,
                reason="client id must be <clientId>|securemode=..,signmethod=..|",
            )
        if not MIN_KEEP_ALIVE <= connect.keep_alive <= MAX_KEEP_ALIVE:
            return Refusal(
                reason_code=ReasonCode.IMPLEMENTATION_SPECIFIC_ERROR,
                reason="keep alive must be 30..1200 seconds",
            )
        will = connect.will
        if will is None:
            return connect
        if connect.protocol_version != ProtocolVersion.V5:
            return Refusal(reason_code=ReasonCode.NOT_AUTHORIZED, reason="no will in MQTT 3.x")
        identity = parse_username(connect.username)
        if identity is None or not own_topic(
            will.topic.split("/"), identity[1], identity[0], signed.ext
        ):
            return Refusal(reason_code=ReasonCode.TOPIC_NAME_INVALID, reason="will topic")
        refused = property_violation(will.properties)
        if refused is not None:
            return Refusal(reason_code=refused, reason="will properties")
        return connect

    def authenticate(
        self, connect: Connect, client: ClientInfo, credentials: CredentialStore | None
    ) -> Admission | Refusal:
        bad = Refusal(reason_code=ReasonCode.BAD_USER_NAME_OR_PASSWORD, reason="bad credentials")
        signed = parse_client_id(connect.client_id)
        identity = parse_username(connect.username)
        if signed is None or identity is None:
            return bad
        device_name, product_key = identity
        digest = SIGN_METHODS.get(signed.params["signmethod"])
        if credentials is None:
            # No registry: the tenant is the product key, the AuthChain decides.
            return Admission(
                tenant=product_key, username=connect.username, session_client_id=device_name
            )
        if not credentials.has_tenant(product_key) or not credentials.has_device_secret(
            product_key, device_name
        ):
            return Refusal(reason_code=ReasonCode.NOT_AUTHORIZED, reason="unknown device")
        try:
            mac = bytes.fromhex((connect.password or b"").decode("ascii"))
        except ValueError:
            return bad
        if digest is None or not mac:
            return bad
        content = sign_content(signed, device_name, product_key).encode()
        principal = credentials.check_hmac(product_key, device_name, content, digest, mac)
        if principal is None:
            return bad
        return Admission(
            tenant=product_key,
            username=connect.username,
            device_id=principal.device_id,
            authenticated=True,
            session_client_id=device_name,
        )

    def client_topics(self, client: ClientInfo) -> RrpcReplyTopics | None:
        signed = parse_client_id(client.client_id)
        return RrpcReplyTopics() if signed is not None and signed.ext else None

    # -- PUBLISH and SUBSCRIBE ------------------------------------------------------------

    def check_publish(
        self, client: ClientInfo, topic: str, qos: int, retain: bool, payload_size: int
    ) -> int | None:
        if retain and client.protocol_version != ProtocolVersion.V5:
            return ReasonCode.IMPLEMENTATION_SPECIFIC_ERROR
        return self._check_topic(client, topic)

    def check_subscribe(
        self, client: ClientInfo, topic_filter: str, qos: int, shared: bool
    ) -> int | None:
        return self._check_topic(client, topic_filter)

    def check_publish_properties(self, client: ClientInfo, properties: Properties) -> int | None:
        return property_violation(properties)

    def check_share_name(self, client: ClientInfo, share_name: str) -> int | None:
        if _SHARE_NAME.fullmatch(share_name) is None:
            return ReasonCode.TOPIC_FILTER_INVALID
        return None

    @staticmethod
    def _check_topic(client: ClientInfo, topic: str) -> int | None:
        product_key, device_name = _identity(client)
        ext = topic.startswith("/ext/") and _has_ext(client)
        if own_topic(topic.split("/"), product_key, device_name, ext):
            return None
        return ReasonCode.NOT_AUTHORIZED
