"""ACL rules compiled to a trie agree with a naive, rule-by-rule matcher."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from roost.auth.acl import AclAuthorizer, AclRule, AclTrie, expand_level, placeholder_values
from roost.auth.base import Action, ClientInfo
from roost.mqtt.constants import ProtocolVersion


def client(
    tenant: str = "t", client_id: str = "c1", username: str | None = "u1", device: str | None = "d1"
) -> ClientInfo:
    return ClientInfo(
        tenant=tenant,
        client_id=client_id,
        username=username,
        protocol_version=ProtocolVersion.V5,
        listener="l",
        peer="p",
        device_id=device,
    )


def covers(rule_filter: str, topic: str) -> bool:
    """Naive: does `rule_filter` cover `topic` (a name, or a filter taken literally)?"""
    if topic.startswith("$") and rule_filter[:1] in ("+", "#"):
        return False
    rule_levels = rule_filter.split("/")
    levels = topic.split("/")
    for i, level in enumerate(rule_levels):
        if level == "#":
            return True
        if i >= len(levels):
            return False
        if level == "+":
            if levels[i] == "#":
                return False
        elif level != levels[i]:
            return False
    return len(rule_levels) == len(levels)


def naive(rules: list[AclRule], who: ClientInfo, action: Action, topic: str) -> AclRule | None:
    values = placeholder_values(who)
    for rule in rules:
        if action not in rule.actions:
            continue
        expanded = [expand_level(level, values) for level in rule.topic.split("/")]
        if any(level is None for level in expanded):
            continue
        if covers("/".join(level for level in expanded if level is not None), topic):
            return rule
    return None


LEVELS = st.sampled_from(["a", "b", "t", "c1", "u1", "d1", "$SYS", "x", ""])
RULE_LEVELS = st.sampled_from(["a", "b", "+", "%t", "%c", "%u", "%d", "x-%c", "$SYS", ""])


@st.composite
def rule_filters(draw: st.DrawFn) -> str:
    levels = draw(st.lists(RULE_LEVELS, min_size=1, max_size=4))
    if draw(st.booleans()):
        levels.append("#")
    return "/".join(levels)


@st.composite
def topics(draw: st.DrawFn) -> str:
    levels = draw(st.lists(LEVELS | st.just("x-c1"), min_size=1, max_size=5))
    if draw(st.booleans()):  # a subscription filter with its own wildcards
        i = draw(st.integers(0, len(levels) - 1))
        levels[i] = "+"
        if draw(st.booleans()):
            levels.append("#")
    return "/".join(levels)


rules_st = st.lists(
    st.builds(
        AclRule.parse,
        st.sampled_from(["allow", "deny"]),
        st.sampled_from(["publish", "subscribe", "all"]),
        rule_filters().filter(bool),
    ),
    max_size=8,
)
clients_st = st.builds(
    client,
    tenant=st.sampled_from(["t", "a"]),
    client_id=st.sampled_from(["c1", "b", "a/b"]),
    username=st.sampled_from(["u1", None, "", "a"]),
    device=st.sampled_from(["d1", None, "x#"]),
)


@settings(max_examples=400, deadline=None)
@given(rules_st, clients_st, st.sampled_from(list(Action)), topics().filter(bool))
def test_trie_agrees_with_naive_matcher(rules, who, action, topic):
    assert AclTrie(rules).first_match(who, action, topic) == naive(rules, who, action, topic)


def test_placeholders_fill_in_the_asking_client():
    authorizer = AclAuthorizer(
        [
            AclRule.parse("allow", "publish", "%t/devices/%d/up"),
            AclRule.parse("allow", "subscribe", "%t/devices/%c/down/#"),
            AclRule.parse("allow", "all", "users/%u/#"),
            AclRule.parse("deny", "all", "#"),
        ]
    )
    me = client()
    assert authorizer.authorize(me, Action.PUBLISH, "t/devices/d1/up", 0, False).allowed
    assert not authorizer.authorize(me, Action.PUBLISH, "t/devices/d2/up", 0, False).allowed
    assert not authorizer.authorize(me, Action.SUBSCRIBE, "t/devices/d1/up", 0, False).allowed
    assert authorizer.authorize(me, Action.SUBSCRIBE, "t/devices/c1/down/+", 0, False).allowed
    assert not authorizer.authorize(me, Action.SUBSCRIBE, "t/devices/+/down", 0, False).allowed
    assert authorizer.authorize(me, Action.SUBSCRIBE, "users/u1/#", 0, False).allowed
    anonymous = client(username=None)
    assert not authorizer.authorize(anonymous, Action.SUBSCRIBE, "users//x", 0, False).allowed


def test_share_checked_against_inner_filter():
    authorizer = AclAuthorizer(
        [AclRule.parse("allow", "subscribe", "jobs/#"), AclRule.parse("deny", "all", "#")]
    )
    me = client()
    assert authorizer.authorize(me, Action.SUBSCRIBE, "$share/g/jobs/+", 0, False).allowed
    assert not authorizer.authorize(me, Action.SUBSCRIBE, "$share/g/other", 0, False).allowed


def test_no_rule_matches_abstains():
    authorizer = AclAuthorizer([AclRule.parse("deny", "publish", "a/#")])
    assert authorizer.authorize(client(), Action.PUBLISH, "b", 0, False) is None


def test_invalid_rules_refused():
    import pytest

    for args in (("maybe", "all", "a"), ("allow", "read", "a"), ("allow", "all", "a/#/b")):
        with pytest.raises(ValueError):
            AclRule.parse(*args)
