"""The IBM Watson IoT Platform dialect (seed: ibm-watson-iot-mqtt.md), rule by rule.

Clients:
- devices ``d:<org>:<type>:<id>``, username ``use-token-auth``, password a device token of
  the registry device ``<type>:<id>`` in tenant ``<org>``;
- gateways ``g:<org>:<type>:<id>``, authenticated like devices (IBM's gateway
  documentation, "MQTT connectivity for gateways": the seed covers devices only);
- applications ``a:<org>:<appId>``, password an API key of the tenant (the username, where
  the platform put the key's name, is not checked);
- in the org ``quickstart``: no authentication, QoS 0 only, no commands, no device
  management, no durable sessions, at most one message per second per device.

Topics. A device names its own topics without saying who it is (``iot-2/evt/<e>/fmt/<f>``,
``iot-2/cmd/<c>/fmt/<f>``, ``iotdm-1/...``, ``iotdevice-1/...``); applications name the
device (``iot-2/type/<t>/id/<i>/evt|cmd/...``). Roost routes every message under the
application form (canonical): the device's topics and filters are rewritten inbound by
inserting ``type/<t>/id/<i>/`` after the first level, and deliveries to the device have it
taken out again (``TopicMapping``). So an event is one message whichever side looks at it,
and a device cannot even name another device's commands. Gateways speak the application
form: they publish events and subscribe to commands for themselves and, as IBM's gateways
without a resource group, for any device of their org; errors in their topics are
reported on their own ``iot-2/type/<t>/id/<i>/notify``.

Device management (Roost's reading of the seed, whose platform side is IBM's own service):
an application sends requests to a managed device on ``iotdm-1/type/<t>/id/<i>/...`` (the
device sees ``iotdm-1/...``) and reads its responses on ``iotdevice-1/type/<t>/id/<i>/...``
(the device publishes ``iotdevice-1/response``, ``iotdevice-1/mgmt/manage``, ...).
"""

from __future__ import annotations

import json
import re
import time
from dataclasses import replace

from roost.auth.base import ClientInfo
from roost.auth.credentials import CredentialStore
from roost.dialects.base import (
    Admission,
    ClientTopics,
    DialectLimits,
    PublishNotice,
    Refusal,
)
from roost.mqtt.constants import ProtocolVersion, ReasonCode
from roost.mqtt.packets import Connect

# "The maximum length is 36 characters ... a-z, A-Z, 0-9, dashes, underscores, dots."
_PART = r"[A-Za-z0-9_.\-]{1,36}"
_DEVICE_ID = re.compile(rf"d:({_PART}):({_PART}):({_PART})", re.ASCII)
_GATEWAY_ID = re.compile(rf"g:({_PART}):({_PART}):({_PART})", re.ASCII)
_APPLICATION_ID = re.compile(rf"a:({_PART}):({_PART})", re.ASCII)
# "The message payload is limited to a maximum of 131072 bytes."
MAX_PAYLOAD_SIZE = 131_072
TOKEN_USERNAME = "use-token-auth"
QUICKSTART = "quickstart"
# "messages sent from devices at a rate greater than 1 per second might be discarded"
QUICKSTART_INTERVAL = 1.0
# The rate table forgets devices quiet for a second once it holds this many.
_RATE_TABLE_PURGE = 4096

EVENTS = "iot-2"
DM_REQUESTS = "iotdm-1"
DM_RESPONSES = "iotdevice-1"
NOTIFY = "notify"
_MAPPED = (EVENTS, DM_REQUESTS, DM_RESPONSES)


def registry_device_id(device_type: str, device_id: str) -> str:
    """The registry device a Watson device authenticates as (ids are unique per type)."""
    return f"{device_type}:{device_id}"


def _named(level: str, wildcard: bool) -> bool:
    """A type, id, event, command or format slot: a non-empty name, or `+` if allowed."""
    if level == "+":
        return wildcard
    return bool(level) and "+" not in level and "#" not in level


def _device_event(levels: list[str]) -> bool:
    """`iot-2/evt/<event>/fmt/<format>` (topic names carry no wildcards)."""
    return (
        len(levels) == 5
        and levels[0] == EVENTS
        and levels[1] == "evt"
        and levels[3] == "fmt"
        and _named(levels[2], False)
        and _named(levels[4], False)
    )


def _device_commands(levels: list[str]) -> bool:
    """`iot-2/cmd/<command>/fmt/<format>`, `+` allowed for command and format."""
    return (
        len(levels) == 5
        and levels[0] == EVENTS
        and levels[1] == "cmd"
        and levels[3] == "fmt"
        and _named(levels[2], True)
        and _named(levels[4], True)
    )


def _application_topic(levels: list[str], kinds: tuple[str, ...], wildcard: bool) -> bool:
    """`iot-2/type/<t>/id/<i>/<kind>/<x>/fmt/<f>`, `+` in the four slots if `wildcard`."""
    return (
        len(levels) == 9
        and levels[0] == EVENTS
        and levels[1] == "type"
        and levels[3] == "id"
        and levels[5] in kinds
        and levels[7] == "fmt"
        and all(_named(levels[i], wildcard) for i in (2, 4, 6, 8))
    )


def _gateway_may_publish(levels: list[str], qos: int, retain: bool) -> bool:
    """Events of its own or of a device behind it; as a managed gateway, device-management
    messages on `iotdevice-1/type/<t>/id/<i>/...` at QoS 0 or 1, never retained."""
    if _application_topic(levels, ("evt",), False):
        return True
    return _application_dm(levels, DM_RESPONSES, False) and qos <= 1 and not retain


def _gateway_may_subscribe(levels: list[str], own: tuple[str, str]) -> bool:
    """Commands of any device (`+` in type, id, command, format), device-management requests
    `iotdm-1/type/<t>/id/<i>/#`, and its own notification topic."""
    return (
        _application_topic(levels, ("cmd",), True)
        or _application_dm(levels, DM_REQUESTS, True)
        or levels == [EVENTS, "type", own[0], "id", own[1], NOTIFY]
    )


def _notice_text(reason_code: int) -> str:
    if reason_code == ReasonCode.NOT_AUTHORIZED:
        return "the topic matches no topic rule of gateways"
    if reason_code == ReasonCode.IMPLEMENTATION_SPECIFIC_ERROR:
        return f"the payload is larger than {MAX_PAYLOAD_SIZE} bytes"
    if reason_code == ReasonCode.QUOTA_EXCEEDED:
        return "quota exceeded"
    return f"refused with reason code 0x{reason_code:02X}"


def _application_may_publish(levels: list[str], quickstart: bool) -> bool:
    """Events on a device's behalf, commands, device-management requests; in Quickstart
    nothing (applications there only watch devices' events)."""
    return not quickstart and (
        _application_topic(levels, ("evt", "cmd"), False)
        or _application_dm(levels, DM_REQUESTS, False)
    )


def _application_dm(levels: list[str], namespace: str, wildcard: bool) -> bool:
    """`<namespace>/type/<t>/id/<i>/...`: a managed device's requests or responses."""
    if len(levels) < 6 or levels[0] != namespace or levels[1] != "type" or levels[3] != "id":
        return False
    if not (_named(levels[2], wildcard) and _named(levels[4], wildcard)):
        return False
    rest = levels[5:]
    if not wildcard:
        return all(level and "+" not in level and "#" not in level for level in rest)
    return all(level for level in rest)


class _DeviceTopics:
    """A device's topics <-> the canonical (application) form."""

    __slots__ = ("_infix", "_prefixes")

    def __init__(self, device_type: str, device_id: str) -> None:
        self._infix = f"/type/{device_type}/id/{device_id}/"
        self._prefixes = tuple(namespace + self._infix for namespace in _MAPPED)

    def inbound_topic(self, topic: str) -> str:
        namespace, separator, rest = topic.partition("/")
        if separator and namespace in _MAPPED:
            return namespace + self._infix + rest
        return topic

    inbound_filter = inbound_topic

    def outbound_topic(self, topic: str) -> str:
        for prefix in self._prefixes:
            if topic.startswith(prefix):
                return prefix[: prefix.index("/")] + "/" + topic[len(prefix) :]
        return topic


class WatsonDialect:
    """Watson IoT: device and application client ids, token / API-key authentication,
    per-role topic rules, 128 KiB payloads, the Quickstart org.

    Where the seed leaves room, Roost decides (docs/dialects.md):
    - Credentials that fail, a device or gateway username other than `use-token-auth`, an
      unknown org: 0x87 (3.x 0x05). Another client-id shape: 0x85 (3.x 0x02); so is a
      gateway in Quickstart. Scalable applications (`A:`) are not offered.
    - A topic a client may not use: PUBLISH dropped (v5 PUBACK 0x87), SUBSCRIBE 0x87 (3.x
      0x80). A payload over 131072 bytes: dropped (v5 0x83). In Quickstart a QoS 1 or 2
      PUBLISH is dropped (v5 0x87) and a second message within a second too (0x97, which
      QoS 0 never shows);
      Quickstart applications only subscribe to events.
    - Managed devices publish on `iotdevice-1/...` with QoS 0 or 1 and without RETAIN.
    - Shared subscriptions are not offered."""

    __slots__ = ("_last_publish",)

    name = "watson"
    limits = DialectLimits(max_payload_size=MAX_PAYLOAD_SIZE, shared_subscriptions=False)

    def __init__(self) -> None:
        # Quickstart devices: client id -> when their last accepted message came (monotonic
        # seconds). The one piece of state of this dialect: a rate is not a pure decision.
        self._last_publish: dict[str, float] = {}

    # -- CONNECT --------------------------------------------------------------------------

    def check_connect(self, connect: Connect) -> Connect | Refusal:
        client_id = connect.client_id
        device = _DEVICE_ID.fullmatch(client_id)
        gateway = _GATEWAY_ID.fullmatch(client_id)
        quickstart = client_id.split(":", 2)[1:2] == [QUICKSTART]
        if (
            device is None and gateway is None and _APPLICATION_ID.fullmatch(client_id) is None
        ) or (gateway is not None and quickstart):
            return Refusal(
                reason_code=ReasonCode.CLIENT_IDENTIFIER_NOT_VALID,
                reason="client id must be d:<org>:<type>:<id>, g:<org>:<type>:<id> (not in "
                "Quickstart) or a:<org>:<app>",
            )
        will = connect.will
        if will is not None:
            levels = will.topic.split("/")
            if device is not None:
                allowed = _device_event(levels)
            elif gateway is not None:
                allowed = _application_topic(levels, ("evt",), False)
            else:
                allowed = _application_may_publish(levels, quickstart)
            if not allowed:
                code = (
                    ReasonCode.TOPIC_NAME_INVALID
                    if connect.protocol_version == ProtocolVersion.V5
                    else ReasonCode.NOT_AUTHORIZED
                )
                return Refusal(reason_code=code, reason="will topic not allowed")
            if device is not None:
                # A device's will is one of its events: routed as the application form.
                will = replace(
                    will, topic=_DeviceTopics(device[2], device[3]).inbound_topic(will.topic)
                )
            if quickstart and will.qos:
                will = replace(will, qos=0)
        if quickstart and (not connect.clean_start or connect.properties.session_expiry_interval):
            # Quickstart keeps no session: clean session 0 is treated as 1, and a v5
            # client asking for a Session Expiry Interval is told 0.
            connect = replace(
                connect,
                clean_start=True,
                properties=replace(connect.properties, session_expiry_interval=None),
            )
        if will is not connect.will:
            connect = replace(connect, will=will)
        return connect

    def authenticate(
        self, connect: Connect, client: ClientInfo, credentials: CredentialStore | None
    ) -> Admission | Refusal:
        role, org, rest = client.client_id.split(":", 2)
        if org == QUICKSTART:
            # "authentication (or registration) is not required"
            return Admission(tenant=QUICKSTART, username=connect.username, authenticated=True)
        refused = Refusal(reason_code=ReasonCode.NOT_AUTHORIZED, reason="invalid credentials")
        if role in ("d", "g") and connect.username != TOKEN_USERNAME:
            return refused
        if credentials is None:
            # No registry: the tenant is the org, the AuthChain decides.
            return Admission(tenant=org, username=connect.username)
        if not credentials.has_tenant(org) or connect.password is None:
            return refused
        if role in ("d", "g"):
            # A gateway is a registry device too, with a token of its own.
            device_type, _, device_id = rest.partition(":")
            principal = credentials.check_token(
                org, registry_device_id(device_type, device_id), connect.password
            )
            if principal is None:
                return refused
            return Admission(
                tenant=org,
                username=connect.username,
                device_id=principal.device_id,
                authenticated=True,
            )
        if credentials.check_api_key(org, connect.password) is None:
            return refused
        return Admission(tenant=org, username=connect.username, authenticated=True)

    def client_topics(self, client: ClientInfo) -> ClientTopics | None:
        device = _DEVICE_ID.fullmatch(client.client_id)
        return None if device is None else _DeviceTopics(device[2], device[3])

    # -- PUBLISH and SUBSCRIBE ------------------------------------------------------------

    def check_publish(
        self, client: ClientInfo, topic: str, qos: int, retain: bool, payload_size: int
    ) -> int | None:
        client_id = client.client_id
        quickstart = client.tenant == QUICKSTART
        levels = topic.split("/")
        if client_id.startswith("g:"):
            if not _gateway_may_publish(levels, qos, retain):
                return ReasonCode.NOT_AUTHORIZED
        elif client_id.startswith("d:"):
            if _device_event(levels):
                pass
            elif levels[0] == DM_RESPONSES and len(levels) > 1 and not quickstart:
                # Managed devices: QoS 0 or 1, "must not be retained messages".
                if qos > 1 or retain:
                    return ReasonCode.NOT_AUTHORIZED
            else:
                return ReasonCode.NOT_AUTHORIZED
        elif not _application_may_publish(levels, quickstart):
            return ReasonCode.NOT_AUTHORIZED
        if payload_size > MAX_PAYLOAD_SIZE:
            return ReasonCode.IMPLEMENTATION_SPECIFIC_ERROR
        if quickstart:
            if qos:
                return ReasonCode.NOT_AUTHORIZED
            return self._quickstart_rate(client_id)
        return None

    def _quickstart_rate(self, client_id: str) -> int | None:
        now = time.monotonic()
        last = self._last_publish
        previous = last.get(client_id)
        if previous is not None and now - previous < QUICKSTART_INTERVAL:
            return ReasonCode.QUOTA_EXCEEDED
        if previous is None and len(last) >= _RATE_TABLE_PURGE:
            for key in [k for k, t in last.items() if now - t >= QUICKSTART_INTERVAL]:
                del last[key]
        last[client_id] = now
        return None

    def check_subscribe(
        self, client: ClientInfo, topic_filter: str, qos: int, shared: bool
    ) -> int | None:
        quickstart = client.tenant == QUICKSTART
        levels = topic_filter.split("/")
        if client.client_id.startswith("g:"):
            _, _, gateway_type, gateway_id = client.client_id.split(":", 3)
            if _gateway_may_subscribe(levels, (gateway_type, gateway_id)):
                return None
            return ReasonCode.NOT_AUTHORIZED
        if client.client_id.startswith("d:"):
            # Quickstart: no commands, no device management.
            if quickstart:
                return ReasonCode.NOT_AUTHORIZED
            if _device_commands(levels) or (levels[0] == DM_REQUESTS and len(levels) > 1):
                return None
            return ReasonCode.NOT_AUTHORIZED
        if _application_topic(levels, ("evt",) if quickstart else ("evt", "cmd"), True):
            return None
        if not quickstart and _application_dm(levels, DM_RESPONSES, True):
            return None
        return ReasonCode.NOT_AUTHORIZED

    # -- gateway notifications ------------------------------------------------------------

    def publish_refused(
        self, client: ClientInfo, topic: str, reason_code: int
    ) -> PublishNotice | None:
        """A gateway hears of its refused PUBLISH on its notification topic."""
        return _gateway_notice(client, "publish", topic, reason_code)

    def subscribe_refused(
        self, client: ClientInfo, topic_filter: str, reason_code: int
    ) -> PublishNotice | None:
        """A gateway hears of its refused subscriptions on its notification topic."""
        return _gateway_notice(client, "subscribe", topic_filter, reason_code)


def _gateway_notice(
    client: ClientInfo, request: str, topic: str, reason_code: int
) -> PublishNotice | None:
    """The JSON notification IBM documents for gateways (`Request`, `Time`, `Topic`, `Type`,
    `Id`, `Client`, `RC`, `Message`), on `iot-2/type/<t>/id/<i>/notify` of the gateway.
    `RC` is Roost's MQTT 5 reason code; `Type` and `Id` are those the topic names."""
    gateway = _GATEWAY_ID.fullmatch(client.client_id)
    if gateway is None:
        return None
    levels = topic.split("/")
    named = len(levels) > 4 and levels[1] == "type" and levels[3] == "id"
    body = {
        "Request": request,
        "Time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "Topic": topic,
        "Type": levels[2] if named else "",
        "Id": levels[4] if named else "",
        "Client": client.client_id,
        "RC": reason_code,
        "Message": _notice_text(reason_code),
    }
    return PublishNotice(
        topic=f"{EVENTS}/type/{gateway[2]}/id/{gateway[3]}/{NOTIFY}",
        payload=json.dumps(body).encode(),
    )
