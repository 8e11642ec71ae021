"""The subscription trie against a naive matcher; pruning; deep topics."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from tests.core.reference import naive_matches, topic_filters, topic_names

from roost.core.trie import SubscriptionTrie

keys = st.sampled_from(["k1", "k2", "k3"])
operations = st.lists(
    st.tuples(st.sampled_from(["add", "add", "remove"]), topic_filters, keys), max_size=40
)

Model = dict[tuple[str, str], int]


def apply(trie: SubscriptionTrie[str, int], ops: list[tuple[str, str, str]]) -> Model:
    """Run ``ops`` on ``trie`` and on a dict model, checking every return value."""
    model: Model = {}
    for serial, (op, topic_filter, key) in enumerate(ops):
        if op == "add":
            assert trie.add(topic_filter, key, serial) is ((topic_filter, key) not in model)
            model[(topic_filter, key)] = serial
        else:
            assert trie.remove(topic_filter, key) is ((topic_filter, key) in model)
            model.pop((topic_filter, key), None)
        assert len(trie) == len(model)
    return model


def expected_matches(model: Model, topic_name: str) -> list[tuple[str, int]]:
    return sorted((key, value) for (f, key), value in model.items() if naive_matches(f, topic_name))


@settings(max_examples=300, deadline=None)
@given(ops=operations, names=st.lists(topic_names, min_size=1, max_size=10))
def test_trie_agrees_with_naive_matcher(ops: list[tuple[str, str, str]], names: list[str]) -> None:
    # [MQTT-4.7.1-2] [MQTT-4.7.1-3] [MQTT-4.7.2-1], including after removes
    trie: SubscriptionTrie[str, int] = SubscriptionTrie()
    model = apply(trie, ops)
    for topic_name in names:
        assert sorted(trie.match(topic_name)) == expected_matches(model, topic_name)
    assert sorted(trie.items()) == sorted((f, k, v) for (f, k), v in model.items())
    for (topic_filter, key), value in model.items():
        assert trie.get(topic_filter, key) == value


@settings(max_examples=200, deadline=None)
@given(ops=operations)
def test_trie_prunes_after_removing_everything(ops: list[tuple[str, str, str]]) -> None:
    trie: SubscriptionTrie[str, int] = SubscriptionTrie()
    model = apply(trie, ops)
    for topic_filter, key in list(model):
        assert trie.remove(topic_filter, key)
    assert len(trie) == 0
    assert trie.node_count() == 1
    assert trie._root.is_empty()
    assert list(trie.items()) == []


# -- examples --------------------------------------------------------------------------


def test_overlapping_subscriptions_give_one_entry_per_filter() -> None:
    trie: SubscriptionTrie[str, str] = SubscriptionTrie()
    trie.add("sport/#", "s1", "all sport")
    trie.add("sport/+/player1", "s1", "player1")
    trie.add("sport/tennis/player1", "s2", "exact")
    assert sorted(trie.match("sport/tennis/player1")) == [
        ("s1", "all sport"),
        ("s1", "player1"),
        ("s2", "exact"),
    ]
    assert trie.match("sport") == [("s1", "all sport")]  # [MQTT-4.7.1-2]
    assert trie.match("news") == []


def test_add_replaces_and_remove_reports() -> None:
    trie: SubscriptionTrie[str, int] = SubscriptionTrie()
    assert trie.add("a/+", "k", 1) is True
    assert trie.add("a/+", "k", 2) is False
    assert len(trie) == 1
    assert trie.match("a/b") == [("k", 2)]
    assert trie.get("a/+", "k") == 2
    assert trie.get("a/#", "k") is None
    assert trie.remove("a/#", "k") is False
    assert trie.remove("a/+", "other") is False
    assert trie.remove("x/y", "k") is False
    assert trie.remove("a/+", "k") is True
    assert trie.remove("a/+", "k") is False
    assert len(trie) == 0
    assert trie.node_count() == 1


def test_dollar_topics_and_wildcards() -> None:
    # [MQTT-4.7.2-1]
    trie: SubscriptionTrie[str, str] = SubscriptionTrie()
    trie.add("#", "all", "")
    trie.add("+/monitor/Clients", "plus", "")
    trie.add("$SYS/#", "sys", "")
    trie.add("$SYS/+/Clients", "sysplus", "")
    assert sorted(k for k, _ in trie.match("$SYS/monitor/Clients")) == ["sys", "sysplus"]
    assert sorted(k for k, _ in trie.match("SYS/monitor/Clients")) == ["all", "plus"]


def test_empty_levels() -> None:
    # [MQTT-4.7.3-1] zero-length levels are levels
    trie: SubscriptionTrie[str, str] = SubscriptionTrie()
    trie.add("/+", "lead", "")
    trie.add("a//b", "mid", "")
    trie.add("+/+", "two", "")
    assert sorted(k for k, _ in trie.match("/finance")) == ["lead", "two"]
    assert trie.match("a//b") == [("mid", "")]
    assert sorted(k for k, _ in trie.match("/")) == ["lead", "two"]


def test_pruning_keeps_shared_branches() -> None:
    trie: SubscriptionTrie[str, int] = SubscriptionTrie()
    trie.add("a/b/c", "k", 1)
    trie.add("a/b", "k", 2)
    trie.add("a/b/#", "k", 3)
    trie.add("a/+/c", "k", 4)
    nodes = trie.node_count()
    trie.remove("a/b/c", "k")
    assert trie.node_count() == nodes - 1
    assert sorted(trie.match("a/b/c")) == [("k", 3), ("k", 4)]
    trie.remove("a/b/#", "k")
    assert trie.match("a/b") == [("k", 2)]
    trie.remove("a/b", "k")
    trie.remove("a/+/c", "k")
    assert trie.node_count() == 1


@pytest.mark.parametrize("topic_filter", ["", "a/#/b", "a+", "sport/tennis#", "a\x00"])
def test_invalid_filters_are_refused(topic_filter: str) -> None:
    # [MQTT-4.7.1-2] [MQTT-4.7.1-3] [MQTT-4.7.3-1]
    trie: SubscriptionTrie[str, int] = SubscriptionTrie()
    with pytest.raises(ValueError):
        trie.add(topic_filter, "k", 1)
    with pytest.raises(ValueError):
        trie.remove(topic_filter, "k")


def test_ten_thousand_levels_without_recursion_error() -> None:
    deep = "/".join(["a"] * 10_000)
    trie: SubscriptionTrie[str, str] = SubscriptionTrie()
    trie.add(deep, "exact", "")
    trie.add("/".join(["+"] * 10_000), "plus", "")
    trie.add("/".join(["a"] * 9_999) + "/#", "hash", "")
    trie.add("#", "all", "")
    assert sorted(k for k, _ in trie.match(deep)) == ["all", "exact", "hash", "plus"]
    assert sorted(k for k, _ in trie.match(deep + "/a")) == ["all", "hash"]
    assert len(list(trie.items())) == 4
    for topic_filter, key, _ in list(trie.items()):
        assert trie.remove(topic_filter, key)
    assert trie.node_count() == 1


def test_clear() -> None:
    trie: SubscriptionTrie[str, int] = SubscriptionTrie()
    trie.add("a/b", "k", 1)
    trie.clear()
    assert len(trie) == 0
    assert trie.match("a/b") == []
