"""The generic dialect: plain MQTT, registry credentials or anonymous, per config."""

from __future__ import annotations

from roost.auth.base import ClientInfo
from roost.auth.credentials import CredentialStore
from roost.dialects.base import Admission, DialectLimits, Refusal
from roost.mqtt.constants import ReasonCode
from roost.mqtt.packets import Connect


class GenericDialect:
    """No rules beyond MQTT's own. The tenant is the listener's.

    Without a registry the AuthChain decides every CONNECT (``authenticated`` False).
    With one: a username is checked as a password credential of the listener's tenant
    (wrong -> 0x86 / 3.x 0x04); no username but a verified TLS client certificate is
    looked up by its identity; nothing at all is anonymous, allowed only when
    ``allow_anonymous`` (else 0x87 / 3.x 0x05)."""

    __slots__ = ("allow_anonymous", "tenant")

    name = "generic"
    limits = DialectLimits()

    def __init__(self, tenant: str, allow_anonymous: bool = True) -> None:
        self.tenant = tenant
        self.allow_anonymous = allow_anonymous

    def check_connect(self, connect: Connect) -> Connect | Refusal:
        return connect

    def authenticate(
        self, connect: Connect, client: ClientInfo, credentials: CredentialStore | None
    ) -> Admission | Refusal:
        tenant = self.tenant
        if credentials is None:
            return Admission(tenant=tenant, username=connect.username)
        if connect.username is not None:
            principal = credentials.check_password(
                tenant, connect.username, connect.password or b""
            )
            if principal is None:
                return Refusal(
                    reason_code=ReasonCode.BAD_USER_NAME_OR_PASSWORD, reason="bad credentials"
                )
            return Admission(
                tenant=tenant,
                username=connect.username,
                device_id=principal.device_id,
                authenticated=True,
            )
        if client.certificate_identity is not None:
            principal = credentials.check_certificate(tenant, client.certificate_identity)
            if principal is not None:
                return Admission(tenant=tenant, device_id=principal.device_id, authenticated=True)
        if self.allow_anonymous:
            return Admission(tenant=tenant)
        return Refusal(reason_code=ReasonCode.NOT_AUTHORIZED, reason="anonymous not allowed")

    def check_publish(
        self, client: ClientInfo, topic: str, qos: int, retain: bool, payload_size: int
    ) -> int | None:
        return None

    def check_subscribe(
        self, client: ClientInfo, topic_filter: str, qos: int, shared: bool
    ) -> int | None:
        return None
