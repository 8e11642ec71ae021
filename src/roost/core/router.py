"""The router: which sessions receive a message; one merged entry per session, one member
per $share group."""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field

from roost.core.session import SessionSubscription
from roost.core.topics import parse_shared
from roost.core.trie import SubscriptionTrie


@dataclass(frozen=True, slots=True)
class ShareKey:
    """Trie key of a shared subscription group."""

    group: str


@dataclass(slots=True)
class ShareGroup:
    """The members of one `$share/{group}/{filter}` and the strategy's cursor."""

    group: str
    topic_filter: str
    members: dict[str, SessionSubscription] = field(default_factory=dict)
    cursor: int = 0

    @property
    def share_filter(self) -> str:
        """The group as subscribed: `$share/{group}/{filter}`."""
        return f"$share/{self.group}/{self.topic_filter}"


@dataclass(slots=True)
class Target:
    """What one session receives for one message, after merging overlapping subscriptions."""

    client_id: str
    qos: int
    retain_as_published: bool
    subscription_identifiers: list[int]
    # The `$share` group this target was picked from (None: a non-shared subscription).
    group: ShareGroup | None = None


# A strategy picks one member of a group: (group, candidates in join order) -> client id.
ShareStrategy = Callable[[ShareGroup, list[str]], str]


def round_robin(group: ShareGroup, candidates: list[str]) -> str:
    group.cursor = (group.cursor + 1) % len(candidates)
    return candidates[group.cursor]


def random_member(group: ShareGroup, candidates: list[str]) -> str:
    return random.choice(candidates)


def first_member(group: ShareGroup, candidates: list[str]) -> str:
    return candidates[0]


STRATEGIES: dict[str, ShareStrategy] = {
    "round_robin": round_robin,
    "random": random_member,
    "first": first_member,
}

RouteKey = str | ShareKey
RouteValue = SessionSubscription | ShareGroup


class Router:
    """Subscriptions of one tenant, indexed by topic filter."""

    def __init__(
        self,
        strategy: ShareStrategy = round_robin,
        is_online: Callable[[str], bool] = lambda client_id: True,
    ) -> None:
        self.is_online = is_online
        self.trie: SubscriptionTrie[RouteKey, RouteValue] = SubscriptionTrie()
        self.groups: dict[tuple[str, str], ShareGroup] = {}
        self.strategy = strategy
        # Told (filter, +1 / -1) when a session's subscription is added or removed (the
        # worker processes' filter summaries); None when there is nobody to tell.
        self.on_change: Callable[[str, int], None] | None = None

    def add(self, client_id: str, subscription: SessionSubscription) -> None:
        shared = parse_shared(subscription.topic_filter)
        on_change = self.on_change
        if shared is None:
            if self.trie.add(subscription.topic_filter, client_id, subscription) and on_change:
                on_change(subscription.topic_filter, 1)
            return
        gkey = (shared.group, shared.topic_filter)
        group = self.groups.get(gkey)
        if group is None:
            group = ShareGroup(shared.group, shared.topic_filter)
            self.groups[gkey] = group
            self.trie.add(shared.topic_filter, ShareKey(shared.group), group)
        if on_change is not None and client_id not in group.members:
            on_change(subscription.topic_filter, 1)
        group.members[client_id] = subscription

    def remove(self, client_id: str, topic_filter: str) -> bool:
        shared = parse_shared(topic_filter)
        if shared is None:
            removed = self.trie.remove(topic_filter, client_id)
            if removed and self.on_change is not None:
                self.on_change(topic_filter, -1)
            return removed
        gkey = (shared.group, shared.topic_filter)
        group = self.groups.get(gkey)
        if group is None or group.members.pop(client_id, None) is None:
            return False
        if not group.members:
            del self.groups[gkey]
            self.trie.remove(shared.topic_filter, ShareKey(shared.group))
        if self.on_change is not None:
            self.on_change(topic_filter, -1)
        return True

    def route(self, topic: str, publisher: str | None) -> list[Target]:
        """Targets for a message on `topic`: one per session for its non-shared
        subscriptions, merged [MQTT-3.3.4-2], and one per matching `$share` group; a
        client in both gets two copies (MQTT 5 section 4.8.2)."""
        merged: dict[str, Target] = {}
        shared: list[Target] = []
        for key, value in self.trie.match(topic):
            if isinstance(value, ShareGroup):
                client_id = self._pick(value)
                sub = value.members[client_id]
                shared.append(
                    Target(
                        client_id,
                        sub.options.qos,
                        sub.options.retain_as_published,
                        [sub.subscription_identifier]
                        if sub.subscription_identifier is not None
                        else [],
                        value,
                    )
                )
                continue
            assert isinstance(key, str)
            client_id, sub = key, value
            # No Local: never back to the publisher's own subscription [MQTT-3.8.3-3]
            if sub.options.no_local and client_id == publisher:
                continue
            target = merged.get(client_id)
            if target is None:
                target = Target(client_id, sub.options.qos, sub.options.retain_as_published, [])
                merged[client_id] = target
            else:
                target.qos = max(target.qos, sub.options.qos)
                target.retain_as_published = (
                    target.retain_as_published or sub.options.retain_as_published
                )
            if sub.subscription_identifier is not None:
                target.subscription_identifiers.append(sub.subscription_identifier)
        if shared:
            return [*merged.values(), *shared]
        return list(merged.values())

    def _pick(self, group: ShareGroup) -> str:
        is_online = self.is_online
        members = list(group.members)
        online = [m for m in members if is_online(m)]
        return self.strategy(group, online or members)
