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
    # The group as subscribed: `$share/{group}/{filter}`.
    share_filter: str = field(init=False)

    def __post_init__(self) -> None:
        self.share_filter = f"$share/{self.group}/{self.topic_filter}"


@dataclass(slots=True)
class Target:
    """What one session receives for one message, after merging overlapping subscriptions."""

    client_id: str
    qos: int
    retain_as_published: bool
    subscription_identifiers: tuple[int, ...]
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

# What matches one topic: the merged targets of its non-shared subscriptions (None when one
# of them is No Local: then they are merged per publisher), those subscriptions, and the
# `$share` groups.
_Route = tuple[list[Target] | None, list[tuple[str, SessionSubscription]], list[ShareGroup]]

# Topics whose routes are kept; all are forgotten when there are more.
MAX_ROUTES = 10_000


def _merge(plain: list[tuple[str, SessionSubscription]], publisher: str | None) -> list[Target]:
    """One target per session [MQTT-3.3.4-2]: the highest QoS, Retain As Published if any
    subscription asks for it, every subscription identifier."""
    merged: dict[str, Target] = {}
    for client_id, sub in plain:
        options = sub.options
        # No Local: never back to the publisher's own subscription [MQTT-3.8.3-3]
        if options.no_local and client_id == publisher:
            continue
        identifier = sub.subscription_identifier
        ids = () if identifier is None else (identifier,)
        target = merged.get(client_id)
        if target is None:
            merged[client_id] = Target(client_id, options.qos, options.retain_as_published, ids)
        else:
            target.qos = max(target.qos, options.qos)
            target.retain_as_published = target.retain_as_published or options.retain_as_published
            target.subscription_identifiers += ids
    return list(merged.values())


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
        # Topic -> what matches it, until the subscriptions change (see route()).
        self._routes: dict[str, _Route] = {}

    def add(self, client_id: str, subscription: SessionSubscription) -> None:
        self._routes.clear()
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
        self._routes.clear()
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

    def route(
        self, topic: str, publisher: str | None, serve_groups: frozenset[str] | None = None
    ) -> list[Target]:
        """Targets for a message on `topic`: one per session for its non-shared
        subscriptions, merged [MQTT-3.3.4-2], and one per matching `$share` group; a
        client in both gets two copies (MQTT 5 section 4.8.2). `serve_groups`: only these
        groups (full filters) are served, the others get no target and keep their
        strategy's cursor (a message forwarded by another worker); None: all of them.

        What matches a topic is kept until the next subscription change (`_routes`); the
        member of each group is still picked per message, and No Local applied per
        publisher. The groups' targets come after all the others, so a list holds one iff
        its last target has a group. The list and targets may be shared with later calls:
        read them only."""
        route = self._routes.get(topic)
        if route is None:
            route = self._route(topic)
        merged, plain, groups = route
        if merged is None:
            # A No Local subscription matches: what is merged depends on the publisher.
            merged = _merge(plain, publisher)
        if not groups:
            return merged
        targets = list(merged)
        for group in groups:
            if serve_groups is not None and group.share_filter not in serve_groups:
                continue
            client_id = self._pick(group)
            sub = group.members[client_id]
            identifier = sub.subscription_identifier
            targets.append(
                Target(
                    client_id,
                    sub.options.qos,
                    sub.options.retain_as_published,
                    () if identifier is None else (identifier,),
                    group,
                )
            )
        return targets

    def _route(self, topic: str) -> _Route:
        """Match `topic` in the trie and keep the result for the next messages on it."""
        plain: list[tuple[str, SessionSubscription]] = []
        groups: list[ShareGroup] = []
        for key, value in self.trie.match(topic):
            if isinstance(value, ShareGroup):
                groups.append(value)
            else:
                assert isinstance(key, str)
                plain.append((key, value))
        no_local = any(sub.options.no_local for _, sub in plain)
        route = (None if no_local else _merge(plain, None), plain, groups)
        routes = self._routes
        if len(routes) >= MAX_ROUTES:
            routes.clear()
        routes[topic] = route
        return route

    def _pick(self, group: ShareGroup) -> str:
        is_online = self.is_online
        members = list(group.members)
        online = [m for m in members if is_online(m)]
        return self.strategy(group, online or members)
