"""The retained-message index: one value per topic name, found by topic filter."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Generic, TypeVar

from roost.core.topics import UNLIMITED, is_valid_topic_filter, is_valid_topic_name

V = TypeVar("V")


class _Node(Generic[V]):
    """One topic level; ``item`` is (topic_name, value) when a value is retained here."""

    __slots__ = ("children", "item")

    def __init__(self) -> None:
        self.children: dict[str, _Node[V]] | None = None
        self.item: tuple[str, V] | None = None


class RetainedIndex(Generic[V]):
    """Maps topic names to opaque values; :meth:`match` walks a tree of topic levels.

    A filter with a literal prefix visits only that branch; ``+`` and ``#`` fan out
    over the children that exist. Deleting prunes the nodes left empty.
    """

    __slots__ = ("_by_topic", "_root")

    def __init__(self) -> None:
        self._root: _Node[V] = _Node()
        self._by_topic: dict[str, V] = {}

    def __len__(self) -> int:
        return len(self._by_topic)

    def __contains__(self, topic_name: object) -> bool:
        return topic_name in self._by_topic

    def get(self, topic_name: str) -> V | None:
        """The value retained for ``topic_name``, or None."""
        return self._by_topic.get(topic_name)

    def items(self) -> Iterator[tuple[str, V]]:
        """A snapshot of every (topic_name, value), in the order they were first set."""
        return iter(list(self._by_topic.items()))

    def set(self, topic_name: str, value: V) -> None:
        """Retain ``value`` for ``topic_name``, replacing what was there.

        Raises ValueError if ``topic_name`` is not a topic name (limits are the caller's).
        """
        if not is_valid_topic_name(topic_name, UNLIMITED, UNLIMITED):
            raise ValueError(f"invalid topic name: {topic_name!r}")
        node = self._root
        for level in topic_name.split("/"):
            children = node.children
            if children is None:
                children = node.children = {}
            following = children.get(level)
            if following is None:
                following = children[level] = _Node()
            node = following
        node.item = (topic_name, value)
        self._by_topic[topic_name] = value

    def delete(self, topic_name: str) -> bool:
        """Forget the value retained for ``topic_name``; True if there was one."""
        if topic_name not in self._by_topic:
            return False
        del self._by_topic[topic_name]
        path: list[tuple[_Node[V], str]] = []
        node = self._root
        for level in topic_name.split("/"):
            assert node.children is not None
            path.append((node, level))
            node = node.children[level]
        node.item = None
        for parent, level in reversed(path):
            if node.item is not None or node.children:
                break
            children = parent.children
            assert children is not None
            del children[level]
            if not children:
                parent.children = None
            node = parent
        return True

    def match(self, topic_filter: str) -> list[tuple[str, V]]:
        """Every (topic_name, value) whose topic name ``topic_filter`` matches.

        ``+`` matches one level, ``#`` the parent level and all below [MQTT-4.7.1-2];
        a filter starting with a wildcard does not match topic names starting with
        ``$`` [MQTT-4.7.2-1]. Raises ValueError for an invalid topic filter.
        """
        if not is_valid_topic_filter(topic_filter, UNLIMITED, UNLIMITED):
            raise ValueError(f"invalid topic filter: {topic_filter!r}")
        levels = topic_filter.split("/")
        depth = len(levels)
        found: list[tuple[str, V]] = []
        stack: list[tuple[_Node[V], int]] = [(self._root, 0)]
        while stack:
            node, index = stack.pop()
            if index == depth:
                if node.item is not None:
                    found.append(node.item)
                continue
            level = levels[index]
            if level == "#":
                _collect(node, index == 0, found)
                continue
            children = node.children
            if children is None:
                continue
            if level == "+":
                for name, child in children.items():
                    if index == 0 and name.startswith("$"):
                        continue
                    stack.append((child, index + 1))
            else:
                literal = children.get(level)
                if literal is not None:
                    stack.append((literal, index + 1))
        return found

    def node_count(self) -> int:
        """The number of nodes, the root included (1 when the index is empty)."""
        count = 0
        stack: list[_Node[V]] = [self._root]
        while stack:
            node = stack.pop()
            count += 1
            if node.children:
                stack.extend(node.children.values())
        return count

    def clear(self) -> None:
        """Forget every retained value."""
        self._root = _Node()
        self._by_topic.clear()


def _collect(top: _Node[V], at_root: bool, found: list[tuple[str, V]]) -> None:
    """Append the items of ``top`` and everything below it (a ``#`` level).

    At the root, children whose level starts with ``$`` are skipped [MQTT-4.7.2-1].
    """
    if top.item is not None:
        found.append(top.item)
    if not top.children:
        return
    stack: list[_Node[V]] = [
        child for name, child in top.children.items() if not (at_root and name.startswith("$"))
    ]
    while stack:
        node = stack.pop()
        if node.item is not None:
            found.append(node.item)
        if node.children:
            stack.extend(node.children.values())
