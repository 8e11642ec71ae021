"""Per-tenant quotas: each tenant's limits, its usage counters and its publish token bucket.

Sans-IO like the rest of core: time comes in as `now` (a monotonic clock)."""

from __future__ import annotations

import math
from collections.abc import Callable

from roost.config import QuotaConfig
from roost.core.message import Message

SYS_PREFIX = "$SYS/"


class TenantUsage:
    """One tenant's limits (0 = none) and what it uses of them, with refusal counters."""

    __slots__ = (
        "burst",
        "connections",
        "limits",
        "publish_checked",
        "rate",
        "refused_connections",
        "refused_publishes",
        "refused_retained",
        "refused_subscriptions",
        "retained_bytes",
        "retained_messages",
        "sessions",
        "subscriptions",
        "tenant",
        "tokens",
        "updated",
    )

    def __init__(self, tenant: str, limits: QuotaConfig) -> None:
        self.tenant = tenant
        self.limits = limits
        self.connections = 0
        self.sessions = 0
        self.subscriptions = 0
        self.retained_messages = 0
        self.retained_bytes = 0
        self.refused_connections = 0
        self.refused_subscriptions = 0
        self.refused_publishes = 0
        self.refused_retained = 0
        self.rate = limits.publish_rate
        self.burst = float(limits.publish_burst or max(1, math.ceil(self.rate)))
        self.tokens = self.burst
        self.updated: float | None = None
        # Whether an inbound PUBLISH has anything to check (rate or retained quota).
        self.publish_checked = bool(
            self.rate or limits.max_retained_messages or limits.max_retained_bytes
        )

    def take_publish_token(self, now: float) -> bool:
        """The token bucket of `publish_rate`: False when the tenant is over its rate."""
        if not self.rate:
            return True
        if self.updated is not None:
            self.tokens = min(self.burst, self.tokens + (now - self.updated) * self.rate)
        self.updated = now
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            return True
        self.refused_publishes += 1
        return False

    def may_connect(self) -> bool:
        limit = self.limits.max_connections
        return not limit or self.connections < limit

    def may_open_session(self) -> bool:
        limit = self.limits.max_sessions
        return not limit or self.sessions < limit

    def may_subscribe(self, session_subscriptions: int) -> bool:
        """One more subscription, for a session that holds `session_subscriptions`."""
        per_session = self.limits.max_subscriptions_per_session
        total = self.limits.max_subscriptions
        return (not per_session or session_subscriptions < per_session) and (
            not total or self.subscriptions < total
        )

    def may_retain(self, message: Message, old: Message | None) -> bool:
        """Retaining `message` in place of `old` (None: a new topic) stays in the quota.
        The broker's own `$SYS` topics are not counted."""
        if message.topic.startswith(SYS_PREFIX):
            return True
        count, size = self.limits.max_retained_messages, self.limits.max_retained_bytes
        if count and old is None and self.retained_messages >= count:
            return False
        added = message.size - (0 if old is None else old.size)
        return not size or self.retained_bytes + added <= size

    def retained_changed(self, old: Message | None, new: Message | None) -> None:
        """The retained message of a topic went from `old` to `new` (None: none)."""
        sample = new if new is not None else old
        if sample is None or sample.topic.startswith(SYS_PREFIX):
            return
        if old is not None:
            self.retained_messages -= 1
            self.retained_bytes -= old.size
        if new is not None:
            self.retained_messages += 1
            self.retained_bytes += new.size

    def as_dict(self) -> dict[str, int]:
        """Usage and refusals, for $SYS and the API."""
        return {
            "connections": self.connections,
            "sessions": self.sessions,
            "subscriptions": self.subscriptions,
            "retained_messages": self.retained_messages,
            "retained_bytes": self.retained_bytes,
            "refused_connections": self.refused_connections,
            "refused_subscriptions": self.refused_subscriptions,
            "refused_publishes": self.refused_publishes,
            "refused_retained": self.refused_retained,
        }


class Quotas:
    """The usage record of every tenant seen, made on first use with its limits."""

    __slots__ = ("enabled", "limits_of", "usage")

    def __init__(self, limits_of: Callable[[str], QuotaConfig], enabled: bool) -> None:
        self.limits_of = limits_of
        # False when no tenant has any limit: nothing needs checking.
        self.enabled = enabled
        self.usage: dict[str, TenantUsage] = {}

    def of(self, tenant: str) -> TenantUsage:
        usage = self.usage.get(tenant)
        if usage is None:
            usage = self.usage[tenant] = TenantUsage(tenant, self.limits_of(tenant))
        return usage


def no_quotas() -> Quotas:
    """Quotas with no limit for anyone (the default, and for tests of the core alone)."""
    return Quotas(lambda tenant: QuotaConfig(), enabled=False)
