"""The retained-message index against a naive matcher; pruning; deep topics; a retained
set from another worker does not replace a newer retained message."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from tests.core.reference import naive_matches, topic_filters, topic_names

from roost.config import MQTTConfig
from roost.core.broker import Broker
from roost.core.message import Message
from roost.core.retained import RetainedIndex
from roost.store.memory import MemoryStore

operations = st.lists(
    st.tuples(st.sampled_from(["set", "set", "delete"]), topic_names), max_size=40
)


def apply(index: RetainedIndex[int], ops: list[tuple[str, str]]) -> dict[str, int]:
    model: dict[str, int] = {}
    for serial, (op, topic_name) in enumerate(ops):
        if op == "set":
            index.set(topic_name, serial)
            model[topic_name] = serial
        else:
            assert index.delete(topic_name) is (topic_name in model)
            model.pop(topic_name, None)
        assert len(index) == len(model)
    return model


@settings(max_examples=300, deadline=None)
@given(ops=operations, filters=st.lists(topic_filters, min_size=1, max_size=10))
def test_retained_match_agrees_with_naive_matcher(
    ops: list[tuple[str, str]], filters: list[str]
) -> None:
    # [MQTT-4.7.1-2] [MQTT-4.7.1-3] [MQTT-4.7.2-1], including after deletes
    index: RetainedIndex[int] = RetainedIndex()
    model = apply(index, ops)
    for topic_filter in filters:
        expected = sorted((t, v) for t, v in model.items() if naive_matches(topic_filter, t))
        assert sorted(index.match(topic_filter)) == expected
    assert sorted(index.items()) == sorted(model.items())
    for topic_name, value in model.items():
        assert index.get(topic_name) == value
        assert topic_name in index


@settings(max_examples=200, deadline=None)
@given(ops=operations)
def test_retained_prunes_after_deleting_everything(ops: list[tuple[str, str]]) -> None:
    index: RetainedIndex[int] = RetainedIndex()
    model = apply(index, ops)
    for topic_name in list(model):
        assert index.delete(topic_name)
    assert len(index) == 0
    assert index.node_count() == 1
    assert index._root.children is None
    assert index.match("#") == []


def test_examples() -> None:
    index: RetainedIndex[str] = RetainedIndex()
    index.set("sport", "s")
    index.set("sport/tennis/player1", "p1")
    index.set("sport/tennis/player2", "p2")
    index.set("$SYS/uptime", "up")
    index.set("/lead", "lead")
    assert sorted(index.match("sport/#")) == [  # [MQTT-4.7.1-2] parent level included
        ("sport", "s"),
        ("sport/tennis/player1", "p1"),
        ("sport/tennis/player2", "p2"),
    ]
    assert sorted(index.match("sport/+/player1")) == [("sport/tennis/player1", "p1")]
    assert sorted(t for t, _ in index.match("#")) == [  # [MQTT-4.7.2-1] no $ topics
        "/lead",
        "sport",
        "sport/tennis/player1",
        "sport/tennis/player2",
    ]
    assert index.match("+/uptime") == []  # [MQTT-4.7.2-1]
    assert index.match("$SYS/+") == [("$SYS/uptime", "up")]
    assert index.match("+/lead") == [("/lead", "lead")]  # [MQTT-4.7.3-1] empty level
    assert index.match("sport/tennis") == []


def test_set_replaces_and_delete_reports() -> None:
    index: RetainedIndex[int] = RetainedIndex()
    index.set("a/b", 1)
    index.set("a/b", 2)
    assert len(index) == 1
    assert index.get("a/b") == 2
    assert index.get("a") is None
    assert index.match("a/b") == [("a/b", 2)]
    assert index.delete("a") is False
    assert index.delete("a/b") is True
    assert index.delete("a/b") is False
    assert index.node_count() == 1


def test_delete_keeps_other_branches() -> None:
    index: RetainedIndex[int] = RetainedIndex()
    index.set("a", 1)
    index.set("a/b/c", 2)
    index.set("a/x", 3)
    index.delete("a/b/c")
    assert index.node_count() == 3  # root, a, a/x
    index.delete("a")
    assert index.match("a/#") == [("a/x", 3)]
    index.delete("a/x")
    assert index.node_count() == 1


@pytest.mark.parametrize("topic_name", ["", "a/+", "a/#", "a\x00"])
def test_invalid_topic_names_are_refused(topic_name: str) -> None:
    # [MQTT-4.7.3-1] [MQTT-3.3.2-2] [MQTT-4.7.3-2]
    with pytest.raises(ValueError):
        RetainedIndex[int]().set(topic_name, 1)


@pytest.mark.parametrize("topic_filter", ["", "a/#/b", "a+", "#a"])
def test_invalid_filters_are_refused(topic_filter: str) -> None:
    # [MQTT-4.7.1-2] [MQTT-4.7.1-3]
    with pytest.raises(ValueError):
        RetainedIndex[int]().match(topic_filter)


def test_ten_thousand_levels_without_recursion_error() -> None:
    deep = "/".join(["a"] * 10_000)
    index: RetainedIndex[int] = RetainedIndex()
    index.set(deep, 1)
    index.set(deep + "/b", 2)
    assert index.match(deep) == [(deep, 1)]
    assert sorted(index.match("#")) == [(deep, 1), (deep + "/b", 2)]
    assert sorted(index.match("/".join(["+"] * 10_000) + "/#")) == [(deep, 1), (deep + "/b", 2)]
    assert index.delete(deep + "/b")
    assert index.delete(deep)
    assert index.node_count() == 1


def test_clear() -> None:
    index: RetainedIndex[int] = RetainedIndex()
    index.set("a", 1)
    index.clear()
    assert len(index) == 0
    assert index.match("#") == []


def test_a_retained_set_from_another_worker_keeps_a_newer_retained_message() -> None:
    """A restarted worker takes another worker's retained set (Broker.set_retained) after a
    newer retained message of the same topic, forwarded by a third, has arrived: the newer
    one stays the retained message [MQTT-3.3.1-5]; an older one held is replaced."""
    broker = Broker(MQTTConfig(), MemoryStore())
    newer = Message(topic="r/t", payload=b"newer", retain=True, created_at=20.0)
    broker.publish(newer, 20.0, forward=False)
    broker.set_retained(Message(topic="r/t", payload=b"older", retain=True, created_at=10.0))
    broker.set_retained(Message(topic="r/u", payload=b"only", retain=True, created_at=10.0))
    index = broker.retained[newer.tenant]
    assert index.get("r/t") is newer
    assert index.get("r/u") is not None
    latest = Message(topic="r/u", payload=b"latest", retain=True, created_at=30.0)
    broker.set_retained(latest)
    assert index.get("r/u") is latest
