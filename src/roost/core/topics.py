"""Topic names and topic filters: validity, $share parsing and single-filter matching."""

from __future__ import annotations

from dataclasses import dataclass

MAX_TOPIC_LENGTH = 65535
"""The largest UTF-8 encoded length of a topic (a two-byte length prefix) [MQTT-4.7.3-3]."""

DEFAULT_MAX_LEVELS = 128
"""Roost's default limit on the number of levels in a topic name or topic filter."""

UNLIMITED = 1 << 62
"""A limit that is never reached; for structures whose callers check limits themselves."""

SHARE_PREFIX = "$share/"


def _length_ok(topic: str, max_length: int) -> bool:
    """Whether the UTF-8 encoding of ``topic`` is at most ``max_length`` bytes and valid."""
    if len(topic) > max_length:  # every character takes at least one byte
        return False
    if topic.isascii():
        return True
    try:
        encoded = topic.encode("utf-8")
    except UnicodeEncodeError:  # lone surrogates are not UTF-8 [MQTT-1.5.4-1]
        return False
    return len(encoded) <= max_length


def is_valid_topic_name(
    topic_name: str,
    max_length: int = MAX_TOPIC_LENGTH,
    max_levels: int = DEFAULT_MAX_LEVELS,
) -> bool:
    """Whether ``topic_name`` may name a published topic.

    Non-empty [MQTT-4.7.3-1], free of the wildcards ``+`` and ``#`` [MQTT-3.3.2-2]
    [MQTT-4.7.1-1], free of U+0000 [MQTT-4.7.3-2], at most ``max_length`` bytes once
    UTF-8 encoded and at most ``max_levels`` levels. Empty levels are allowed.
    """
    if not topic_name:
        return False
    if "+" in topic_name or "#" in topic_name or "\x00" in topic_name:
        return False
    if topic_name.count("/") >= max_levels:
        return False
    return _length_ok(topic_name, max_length)


def is_valid_topic_filter(
    topic_filter: str,
    max_length: int = MAX_TOPIC_LENGTH,
    max_levels: int = DEFAULT_MAX_LEVELS,
) -> bool:
    """Whether ``topic_filter`` may be subscribed to.

    Non-empty [MQTT-4.7.3-1]; ``#`` only as a whole level and only as the last one
    [MQTT-4.7.1-2]; ``+`` only as a whole level [MQTT-4.7.1-3]; free of U+0000
    [MQTT-4.7.3-2]; at most ``max_length`` UTF-8 bytes and ``max_levels`` levels.
    Validity of a ``$share/`` prefix is checked by :func:`parse_shared`.
    """
    if not topic_filter or "\x00" in topic_filter:
        return False
    if topic_filter.count("/") >= max_levels:
        return False
    if not _length_ok(topic_filter, max_length):
        return False
    if "+" not in topic_filter and "#" not in topic_filter:
        return True
    levels = topic_filter.split("/")
    last = len(levels) - 1
    for index, level in enumerate(levels):
        if "#" in level and (level != "#" or index != last):
            return False
        if "+" in level and level != "+":
            return False
    return True


@dataclass(frozen=True, slots=True)
class SharedFilter:
    """A shared subscription's topic filter, ``$share/{group}/{topic_filter}``."""

    group: str
    topic_filter: str


def parse_shared(topic_filter: str) -> SharedFilter | None:
    """Split a ``$share/{group}/{filter}`` topic filter; None if it is not a shared one.

    Raises ValueError when the filter starts with ``$share/`` but the share name is
    empty or contains ``+`` or ``#`` [MQTT-4.8.2-1] [MQTT-4.8.2-2], or when the inner
    topic filter is missing or not a valid topic filter. Length and level limits apply
    to the whole filter and are the caller's, through :func:`is_valid_topic_filter`.
    """
    if not topic_filter.startswith(SHARE_PREFIX):
        return None
    group, separator, inner = topic_filter[len(SHARE_PREFIX) :].partition("/")
    if not group:
        raise ValueError(f"shared subscription without a share name: {topic_filter!r}")
    if "+" in group or "#" in group or "\x00" in group:
        raise ValueError(f"share name contains a wildcard: {topic_filter!r}")
    if not separator or not inner:
        raise ValueError(f"shared subscription without a topic filter: {topic_filter!r}")
    if not is_valid_topic_filter(inner, UNLIMITED, UNLIMITED):
        raise ValueError(f"shared subscription with an invalid topic filter: {topic_filter!r}")
    return SharedFilter(group=group, topic_filter=inner)


def is_dollar_topic(topic_name: str) -> bool:
    """Whether ``topic_name`` starts with ``$`` (e.g. ``$SYS/...``) [MQTT-4.7.2-1]."""
    return topic_name.startswith("$")


def has_wildcards(topic_filter: str) -> bool:
    """Whether ``topic_filter`` contains ``+`` or ``#`` (a valid filter, as wildcards)."""
    return "+" in topic_filter or "#" in topic_filter


def topic_matches(topic_filter: str, topic_name: str) -> bool:
    """Whether one valid ``topic_filter`` matches one valid ``topic_name``.

    For single checks (e.g. an ACL rule); the broker's routing uses the trie instead.
    ``+`` matches one level, ``#`` the parent level and any number of children
    [MQTT-4.7.1-2]; a topic name starting with ``$`` is not matched by a filter
    starting with a wildcard [MQTT-4.7.2-1].
    """
    if topic_name.startswith("$") and topic_filter[:1] in ("+", "#"):
        return False
    if not has_wildcards(topic_filter):
        return topic_filter == topic_name
    filter_levels = topic_filter.split("/")
    name_levels = topic_name.split("/")
    for index, level in enumerate(filter_levels):
        if level == "#":
            return True
        if index >= len(name_levels):
            return False
        if level != "+" and level != name_levels[index]:
            return False
    return len(filter_levels) == len(name_levels)
