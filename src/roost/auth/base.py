"""Authenticator / authorizer interfaces and the chain that asks them in order.

Each hook returns a Decision, or None to let the next hook decide. When every hook
abstains, the chain's default applies (allow-all until the device registry arrives).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import Enum
from typing import Protocol

from roost.mqtt.constants import ProtocolVersion, ReasonCode
from roost.mqtt.packets import Connect
from roost.records import record


@record(kw_only=True)  # one per connection
class ClientInfo:
    """Who is asking: what the connection knows about its client."""

    tenant: str
    client_id: str
    username: str | None
    protocol_version: ProtocolVersion
    listener: str
    peer: str
    # The subject (CN or SAN) of the verified TLS client certificate, if any.
    certificate_identity: str | None = None
    # The registry device this connection authenticated as (dialects set it), if any.
    device_id: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Decision:
    allowed: bool
    reason_code: int = ReasonCode.SUCCESS
    reason: str | None = None
    # An authenticator may move the client into a tenant (dialects do).
    tenant: str | None = None

    @staticmethod
    def allow(tenant: str | None = None) -> Decision:
        if tenant is None:
            return _ALLOW
        return Decision(allowed=True, tenant=tenant)

    @staticmethod
    def deny(reason_code: int = ReasonCode.NOT_AUTHORIZED, reason: str | None = None) -> Decision:
        return Decision(allowed=False, reason_code=reason_code, reason=reason)


# The plain "allowed" answer, made once (a Decision is immutable).
_ALLOW = Decision(allowed=True)


class Action(Enum):
    PUBLISH = "publish"
    SUBSCRIBE = "subscribe"


class Authenticator(Protocol):
    def authenticate(self, connect: Connect, client: ClientInfo) -> Decision | None: ...


class Authorizer(Protocol):
    def authorize(
        self, client: ClientInfo, action: Action, topic: str, qos: int, retain: bool
    ) -> Decision | None: ...


class AuthOutcome(Enum):
    SUCCESS = "success"
    CONTINUE = "continue"
    FAILURE = "failure"


@dataclass(frozen=True, slots=True, kw_only=True)
class AuthStep:
    """One step of MQTT 5 enhanced authentication (section 4.12)."""

    outcome: AuthOutcome
    data: bytes | None = None
    reason_code: int = ReasonCode.NOT_AUTHORIZED


class EnhancedAuthenticator(Protocol):
    """An Authentication Method; `start` sees CONNECT's data, `step` each AUTH's data.

    The object is created per connection by `EnhancedAuthFactory`, so it may keep state."""

    def start(self, client: ClientInfo, data: bytes | None) -> AuthStep: ...

    def step(self, client: ClientInfo, data: bytes | None) -> AuthStep: ...


class EnhancedAuthFactory(Protocol):
    def __call__(self, method: str) -> EnhancedAuthenticator | None: ...


class AuthChain:
    """Asks each hook in order; the first Decision wins."""

    def __init__(
        self,
        authenticators: Sequence[Authenticator] = (),
        authorizers: Sequence[Authorizer] = (),
        enhanced: dict[str, EnhancedAuthFactory] | None = None,
        default_allow: bool = True,
    ) -> None:
        self.authenticators = list(authenticators)
        self.authorizers = list(authorizers)
        self.enhanced = dict(enhanced or {})
        self.default_allow = default_allow

    @property
    def allows_everything(self) -> bool:
        """No authorizer and an allowing default: every action is allowed (fast path)."""
        return not self.authorizers and self.default_allow

    def authenticate(self, connect: Connect, client: ClientInfo) -> Decision:
        for hook in self.authenticators:
            decision = hook.authenticate(connect, client)
            if decision is not None:
                return decision
        if self.default_allow:
            return Decision.allow()
        return Decision.deny(ReasonCode.NOT_AUTHORIZED)

    def authorize(
        self, client: ClientInfo, action: Action, topic: str, qos: int, retain: bool
    ) -> Decision:
        for hook in self.authorizers:
            decision = hook.authorize(client, action, topic, qos, retain)
            if decision is not None:
                return decision
        if self.default_allow:
            return Decision.allow()
        return Decision.deny(ReasonCode.NOT_AUTHORIZED)

    def enhanced_for(self, method: str) -> EnhancedAuthenticator | None:
        factory = self.enhanced.get(method)
        return None if factory is None else factory(method)
