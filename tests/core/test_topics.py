"""Topic name and topic filter validity, $share parsing and single-filter matching."""

from __future__ import annotations

import pytest

from roost.core.topics import (
    SharedFilter,
    has_wildcards,
    is_dollar_topic,
    is_valid_topic_filter,
    is_valid_topic_name,
    parse_shared,
    topic_matches,
)

# (topic, valid as a topic name, valid as a topic filter, spec statement)
VALIDITY = [
    ("sport/tennis/player1", True, True, "MQTT-4.7.1-1"),
    ("sport", True, True, "MQTT-4.7.3-1"),
    ("", False, False, "MQTT-4.7.3-1"),
    ("/", True, True, "MQTT-4.7.3-1"),  # two empty levels
    ("/finance", True, True, "MQTT-4.7.3-1"),  # leading empty level
    ("a//b", True, True, "MQTT-4.7.3-1"),
    ("a/", True, True, "MQTT-4.7.3-1"),
    ("#", False, True, "MQTT-4.7.1-2"),
    ("sport/#", False, True, "MQTT-4.7.1-2"),
    ("sport/tennis/#", False, True, "MQTT-4.7.1-2"),
    ("sport/tennis#", False, False, "MQTT-4.7.1-2"),
    ("sport/tennis/#/ranking", False, False, "MQTT-4.7.1-2"),
    ("a/#/b", False, False, "MQTT-4.7.1-2"),
    ("##", False, False, "MQTT-4.7.1-2"),
    ("#/", False, False, "MQTT-4.7.1-2"),
    ("/#", False, True, "MQTT-4.7.1-2"),
    ("+", False, True, "MQTT-4.7.1-3"),
    ("+/tennis/#", False, True, "MQTT-4.7.1-3"),
    ("sport/+/player1", False, True, "MQTT-4.7.1-3"),
    ("+/+", False, True, "MQTT-4.7.1-3"),
    ("/+", False, True, "MQTT-4.7.1-3"),
    ("+/", False, True, "MQTT-4.7.1-3"),
    ("sport+", False, False, "MQTT-4.7.1-3"),
    ("a+", False, False, "MQTT-4.7.1-3"),
    ("a/+b/c", False, False, "MQTT-4.7.1-3"),
    ("++", False, False, "MQTT-4.7.1-3"),
    ("+#", False, False, "MQTT-4.7.1-3"),
    ("a/b+", False, False, "MQTT-3.3.2-2"),
    ("a\x00b", False, False, "MQTT-4.7.3-2"),
    ("\x00", False, False, "MQTT-4.7.3-2"),
    ("$SYS/broker/load", True, True, "MQTT-4.7.2-1"),
    ("$SYS/#", False, True, "MQTT-4.7.2-1"),
    ("$share/g/a", True, True, "MQTT-4.8.2-1"),  # plain validity; parse_shared decides more
    ("ä/ö/ü", True, True, "MQTT-1.5.4"),
    ("\ud800", False, False, "MQTT-1.5.4-1"),  # a lone surrogate is not UTF-8
]


@pytest.mark.parametrize(("topic", "as_name", "as_filter", "statement"), VALIDITY)
def test_validity_table(topic: str, as_name: bool, as_filter: bool, statement: str) -> None:
    assert is_valid_topic_name(topic) is as_name, statement
    assert is_valid_topic_filter(topic) is as_filter, statement


def test_max_length_counts_utf8_bytes_not_characters() -> None:
    # [MQTT-4.7.3-3] topics are UTF-8 encoded strings of at most 65535 bytes
    ascii_topic = "a" * 10
    assert is_valid_topic_name(ascii_topic, max_length=10)
    assert not is_valid_topic_name(ascii_topic + "b", max_length=10)
    two_byte = "é" * 5  # 5 characters, 10 bytes
    assert is_valid_topic_name(two_byte, max_length=10)
    assert not is_valid_topic_name(two_byte, max_length=9)
    assert is_valid_topic_filter(two_byte + "/#", max_length=12)
    assert not is_valid_topic_filter(two_byte + "/#", max_length=11)
    four_byte = "\U0001f600" * 3  # 3 characters, 12 bytes
    assert not is_valid_topic_name(four_byte, max_length=11)
    assert is_valid_topic_name(four_byte, max_length=12)


def test_default_max_length_is_65535_bytes() -> None:
    # [MQTT-4.7.3-3]
    assert is_valid_topic_name("a" * 65535)
    assert not is_valid_topic_name("a" * 65536)
    assert not is_valid_topic_name("é" * 32768)  # 65536 bytes
    assert not is_valid_topic_filter("a" * 65534 + "/#")


def test_max_levels() -> None:
    three = "a/b/c"
    assert is_valid_topic_name(three, max_levels=3)
    assert not is_valid_topic_name(three, max_levels=2)
    assert is_valid_topic_filter("a/+/#", max_levels=3)
    assert not is_valid_topic_filter("a/+/#", max_levels=2)
    assert is_valid_topic_name("/".join("x" * 128))  # default limit: 128 levels
    assert not is_valid_topic_name("/".join("x" * 129))
    assert not is_valid_topic_name("/" * 128)  # 129 empty levels


# [MQTT-4.8.2-1] [MQTT-4.8.2-2] $share/{ShareName}/{filter}
SHARED_OK = [
    ("$share/group/sport/tennis", SharedFilter("group", "sport/tennis")),
    ("$share/g/#", SharedFilter("g", "#")),
    ("$share/g/+/x/#", SharedFilter("g", "+/x/#")),
    ("$share/g//a", SharedFilter("g", "/a")),
    ("$share/consumer1/$SYS/x", SharedFilter("consumer1", "$SYS/x")),
]

SHARED_INVALID = [
    "$share/",  # empty share name [MQTT-4.8.2-1]
    "$share//a",  # empty share name [MQTT-4.8.2-1]
    "$share/g",  # no topic filter [MQTT-4.8.2-2]
    "$share/g/",  # empty topic filter [MQTT-4.8.2-2]
    "$share/+/a",  # wildcard in share name [MQTT-4.8.2-2]
    "$share/#/a",
    "$share/g+/a",
    "$share/g#/a",
    "$share/g/a/#/b",  # invalid inner filter [MQTT-4.7.1-2]
    "$share/g/a+",  # invalid inner filter [MQTT-4.7.1-3]
]

NOT_SHARED = ["sport/#", "$share", "$SHARE/g/a", "share/g/a", "$sharegroup/a", "#", "$SYS/#"]


@pytest.mark.parametrize(("topic_filter", "expected"), SHARED_OK)
def test_parse_shared(topic_filter: str, expected: SharedFilter) -> None:
    assert parse_shared(topic_filter) == expected


@pytest.mark.parametrize("topic_filter", SHARED_INVALID)
def test_parse_shared_invalid(topic_filter: str) -> None:
    with pytest.raises(ValueError):
        parse_shared(topic_filter)


@pytest.mark.parametrize("topic_filter", NOT_SHARED)
def test_parse_shared_not_shared(topic_filter: str) -> None:
    assert parse_shared(topic_filter) is None


def test_shared_filter_is_frozen() -> None:
    shared = SharedFilter("g", "a")
    with pytest.raises(AttributeError):
        shared.group = "h"  # type: ignore[misc]


def test_is_dollar_topic() -> None:
    # [MQTT-4.7.2-1]
    assert is_dollar_topic("$SYS/broker")
    assert is_dollar_topic("$")
    assert not is_dollar_topic("SYS/$x")
    assert not is_dollar_topic("/$SYS")


def test_has_wildcards() -> None:
    assert has_wildcards("a/+")
    assert has_wildcards("#")
    assert not has_wildcards("a/b")


# (filter, topic name, matches, spec statement)
MATCHES = [
    ("sport/tennis/player1/#", "sport/tennis/player1", True, "MQTT-4.7.1-2"),
    ("sport/tennis/player1/#", "sport/tennis/player1/ranking", True, "MQTT-4.7.1-2"),
    ("sport/tennis/player1/#", "sport/tennis/player1/score/wimbledon", True, "MQTT-4.7.1-2"),
    ("sport/#", "sport", True, "MQTT-4.7.1-2"),
    ("#", "sport/tennis", True, "MQTT-4.7.1-2"),
    ("#", "/", True, "MQTT-4.7.1-2"),
    ("sport/tennis/#", "sport/tennisplayer1", False, "MQTT-4.7.1-2"),
    ("sport/tennis/+", "sport/tennis/player1", True, "MQTT-4.7.1-3"),
    ("sport/tennis/+", "sport/tennis/player1/ranking", False, "MQTT-4.7.1-3"),
    ("sport/+", "sport", False, "MQTT-4.7.1-3"),
    ("sport/+", "sport/", True, "MQTT-4.7.1-3"),
    ("+/+", "/finance", True, "MQTT-4.7.1-3"),
    ("/+", "/finance", True, "MQTT-4.7.1-3"),
    ("+", "/finance", False, "MQTT-4.7.1-3"),
    ("a//b", "a//b", True, "MQTT-4.7.3-1"),
    ("a/+/b", "a//b", True, "MQTT-4.7.3-1"),
    ("a/b", "a/b/", False, "MQTT-4.7.3-1"),
    ("ACCOUNTS", "Accounts", False, "MQTT-4.7.3-4"),
    ("#", "$SYS/x", False, "MQTT-4.7.2-1"),
    ("+/monitor/Clients", "$SYS/monitor/Clients", False, "MQTT-4.7.2-1"),
    ("$SYS/#", "$SYS/monitor/Clients", True, "MQTT-4.7.2-1"),
    ("$SYS/monitor/+", "$SYS/monitor/Clients", True, "MQTT-4.7.2-1"),
    ("$SYS", "$SYS", True, "MQTT-4.7.2-1"),
    ("+", "$SYS", False, "MQTT-4.7.2-1"),
]


@pytest.mark.parametrize(("topic_filter", "topic_name", "expected", "statement"), MATCHES)
def test_topic_matches(topic_filter: str, topic_name: str, expected: bool, statement: str) -> None:
    assert topic_matches(topic_filter, topic_name) is expected, statement
