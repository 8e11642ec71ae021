"""ACL rules (allow / deny, publish / subscribe, placeholders) compiled to a trie.

A rule's topic is a topic filter whose levels may hold placeholders: ``%t`` tenant,
``%c`` client id, ``%u`` username, ``%d`` device id. Rules are asked in order and the
first that matches decides; when none matches the authorizer abstains (the AuthChain's
next hook, or its default, decides).

A rule *matches* a topic when its filter, placeholders filled in for the asking client,
covers it: for a topic name that is ordinary topic matching; for a SUBSCRIBE's topic
filter the filter's own wildcards are taken literally, so ``a/#`` covers ``a/+/b`` but
``a/+`` does not cover ``a/#`` and ``a/b`` does not cover ``a/+``. A placeholder whose
value is missing, empty, or holds ``/``, ``+`` or ``#`` makes its rule not apply. A
``$share/{group}/{filter}`` is checked as ``{filter}``.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from enum import Enum

from roost.auth.base import Action, ClientInfo, Decision
from roost.core.topics import UNLIMITED, is_valid_topic_filter, parse_shared

PLACEHOLDERS = ("%t", "%c", "%u", "%d")


class Permission(Enum):
    ALLOW = "allow"
    DENY = "deny"


@dataclass(frozen=True, slots=True, kw_only=True)
class AclRule:
    permission: Permission
    # Actions the rule is about: publish, subscribe, or both.
    actions: frozenset[Action]
    topic: str

    @staticmethod
    def parse(permission: str, action: str, topic: str) -> AclRule:
        """From config words: allow|deny, publish|subscribe|all, a topic filter pattern."""
        try:
            perm = Permission(permission)
        except ValueError:
            raise ValueError(f"ACL permission must be allow or deny, not {permission!r}") from None
        if action == "all":
            actions = frozenset(Action)
        elif action in ("publish", "subscribe"):
            actions = frozenset({Action(action)})
        else:
            raise ValueError(f"ACL action must be publish, subscribe or all, not {action!r}")
        if not is_valid_topic_filter(topic, UNLIMITED, UNLIMITED):
            raise ValueError(f"ACL topic is not a valid topic filter: {topic!r}")
        return AclRule(permission=perm, actions=actions, topic=topic)


def placeholder_values(client: ClientInfo) -> dict[str, str | None]:
    return {
        "%t": client.tenant,
        "%c": client.client_id,
        "%u": client.username,
        "%d": client.device_id,
    }


def expand_level(level: str, values: dict[str, str | None]) -> str | None:
    """A rule level with its placeholders filled in; None when one cannot be."""
    for name in PLACEHOLDERS:
        if name in level:
            value = values[name]
            if not value or "/" in value or "+" in value or "#" in value:
                return None
            level = level.replace(name, value)
    return level


def _has_placeholder(level: str) -> bool:
    return any(name in level for name in PLACEHOLDERS)


# One rule stored in the trie: (its position, the rule).
_Entry = tuple[int, AclRule]


class _Node:
    __slots__ = ("children", "entries", "hash_entries", "plus", "templates")

    def __init__(self) -> None:
        self.children: dict[str, _Node] = {}
        # Levels holding a placeholder, compared after expansion.
        self.templates: dict[str, _Node] = {}
        self.plus: _Node | None = None
        self.entries: list[_Entry] = []
        self.hash_entries: list[_Entry] = []


class AclTrie:
    """Rules by topic level; `first_match` walks only the levels of the asked topic."""

    def __init__(self, rules: Iterable[AclRule] = ()) -> None:
        self._root = _Node()
        self.rules: list[AclRule] = []
        for rule in rules:
            self.add(rule)

    def add(self, rule: AclRule) -> None:
        index = len(self.rules)
        self.rules.append(rule)
        levels = rule.topic.split("/")
        hashed = levels[-1] == "#"
        if hashed:
            levels.pop()
        node = self._root
        for level in levels:
            if level == "+":
                if node.plus is None:
                    node.plus = _Node()
                node = node.plus
            else:
                table = node.templates if _has_placeholder(level) else node.children
                following = table.get(level)
                if following is None:
                    following = table[level] = _Node()
                node = following
        (node.hash_entries if hashed else node.entries).append((index, rule))

    def first_match(self, client: ClientInfo, action: Action, topic: str) -> AclRule | None:
        """The first rule (in order) for `action` covering `topic` (name or filter)."""
        levels = topic.split("/")
        depth = len(levels)
        values = placeholder_values(client)
        best: _Entry | None = None

        def consider(entries: list[_Entry]) -> None:
            nonlocal best
            for entry in entries:  # in rule order: the first for the action is this list's
                if action in entry[1].actions:
                    if best is None or entry[0] < best[0]:
                        best = entry
                    return

        dollar = topic.startswith("$")
        stack: list[tuple[_Node, int]] = [(self._root, 0)]
        while stack:
            node, index = stack.pop()
            at_root = index == 0
            if node.hash_entries and not (at_root and dollar):
                consider(node.hash_entries)
            if index == depth:
                consider(node.entries)
                continue
            level = levels[index]
            child = node.children.get(level)
            if child is not None:
                stack.append((child, index + 1))
            for template, following in node.templates.items():
                if expand_level(template, values) == level:
                    stack.append((following, index + 1))
            if node.plus is not None and level != "#" and not (at_root and dollar):
                stack.append((node.plus, index + 1))
        return None if best is None else best[1]


class AclAuthorizer:
    """An Authorizer for the AuthChain: the first matching rule allows or denies."""

    def __init__(self, rules: Sequence[AclRule]) -> None:
        self.trie = AclTrie(rules)

    def authorize(
        self, client: ClientInfo, action: Action, topic: str, qos: int, retain: bool
    ) -> Decision | None:
        try:
            shared = parse_shared(topic)
        except ValueError:
            return Decision.deny()
        if shared is not None:
            topic = shared.topic_filter
        rule = self.trie.first_match(client, action, topic)
        if rule is None:
            return None
        if rule.permission is Permission.ALLOW:
            return Decision.allow()
        return Decision.deny()
