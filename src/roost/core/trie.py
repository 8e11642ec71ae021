"""The subscription index: a trie of topic filter levels, matched against topic names."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Generic, TypeVar

from roost.core.topics import UNLIMITED, is_valid_topic_filter

K = TypeVar("K")
V = TypeVar("V")


class _Node(Generic[K, V]):
    """One level of the trie. Every slot is created only when first needed.

    ``children`` holds literal levels, ``plus`` the ``+`` level; a filter ending in
    ``#`` is stored in ``hash_entries`` of the node of its parent level (``#`` is always
    the last level, so it needs no node of its own); ``entries`` holds the filters that
    end exactly here.
    """

    __slots__ = ("children", "entries", "hash_entries", "plus")

    def __init__(self) -> None:
        self.children: dict[str, _Node[K, V]] | None = None
        self.plus: _Node[K, V] | None = None
        self.entries: dict[K, V] | None = None
        self.hash_entries: dict[K, V] | None = None

    def is_empty(self) -> bool:
        return not (self.children or self.plus or self.entries or self.hash_entries)


def _split_filter(topic_filter: str) -> tuple[list[str], bool]:
    """The levels of a valid filter without a final ``#``, and whether it had one."""
    if not is_valid_topic_filter(topic_filter, UNLIMITED, UNLIMITED):
        raise ValueError(f"invalid topic filter: {topic_filter!r}")
    levels = topic_filter.split("/")
    if levels[-1] == "#":
        levels.pop()
        return levels, True
    return levels, False


class SubscriptionTrie(Generic[K, V]):
    """Maps (topic_filter, key) to a value and finds every entry matching a topic name.

    A key (e.g. a session) may be stored under several filters; :meth:`match` returns
    one entry per matching (filter, key) and the caller merges them. Topic filters are
    checked for validity on :meth:`add` / :meth:`remove` (ValueError); limits and
    ``$share/`` prefixes are the caller's business. Topic names given to :meth:`match`
    are trusted to be valid.
    """

    __slots__ = ("_count", "_root")

    def __init__(self) -> None:
        self._root: _Node[K, V] = _Node()
        self._count = 0

    def __len__(self) -> int:
        """The number of (topic_filter, key) entries."""
        return self._count

    def add(self, topic_filter: str, key: K, value: V) -> bool:
        """Store ``value`` under (topic_filter, key); True if new, False if replaced."""
        levels, hashed = _split_filter(topic_filter)
        node = self._root
        for level in levels:
            if level == "+":
                following = node.plus
                if following is None:
                    following = node.plus = _Node()
            else:
                children = node.children
                if children is None:
                    children = node.children = {}
                following = children.get(level)
                if following is None:
                    following = children[level] = _Node()
            node = following
        if hashed:
            entries = node.hash_entries
            if entries is None:
                entries = node.hash_entries = {}
        else:
            entries = node.entries
            if entries is None:
                entries = node.entries = {}
        is_new = key not in entries
        entries[key] = value
        if is_new:
            self._count += 1
        return is_new

    def _path(self, levels: list[str]) -> list[tuple[_Node[K, V], str]] | None:
        """The (parent, level) pairs from the root down to ``levels``; None if absent."""
        path: list[tuple[_Node[K, V], str]] = []
        node = self._root
        for level in levels:
            following = node.plus if level == "+" else (node.children or {}).get(level)
            if following is None:
                return None
            path.append((node, level))
            node = following
        return path

    def _node_at(self, path: list[tuple[_Node[K, V], str]]) -> _Node[K, V]:
        if not path:
            return self._root
        parent, level = path[-1]
        if level == "+":
            assert parent.plus is not None
            return parent.plus
        assert parent.children is not None
        return parent.children[level]

    def remove(self, topic_filter: str, key: K) -> bool:
        """Remove the entry (topic_filter, key); True if there was one.

        Nodes left empty are pruned, so memory does not grow with unsubscribes.
        """
        levels, hashed = _split_filter(topic_filter)
        path = self._path(levels)
        if path is None:
            return False
        node = self._node_at(path)
        entries = node.hash_entries if hashed else node.entries
        if not entries or key not in entries:
            return False
        del entries[key]
        self._count -= 1
        if not entries:
            if hashed:
                node.hash_entries = None
            else:
                node.entries = None
        self._prune(path, node)
        return True

    @staticmethod
    def _prune(path: list[tuple[_Node[K, V], str]], node: _Node[K, V]) -> None:
        """Detach empty nodes from the bottom of ``path`` upwards."""
        for parent, level in reversed(path):
            if not node.is_empty():
                return
            if level == "+":
                parent.plus = None
            else:
                children = parent.children
                assert children is not None
                del children[level]
                if not children:
                    parent.children = None
            node = parent

    def get(self, topic_filter: str, key: K) -> V | None:
        """The value stored under (topic_filter, key), or None."""
        levels, hashed = _split_filter(topic_filter)
        path = self._path(levels)
        if path is None:
            return None
        node = self._node_at(path)
        entries = node.hash_entries if hashed else node.entries
        return None if entries is None else entries.get(key)

    def match(self, topic_name: str) -> list[tuple[K, V]]:
        """Every (key, value) whose topic filter matches ``topic_name``.

        ``+`` matches exactly one level and ``#`` the parent level and any number of
        children [MQTT-4.7.1-2]; filters starting with a wildcard do not match topic
        names starting with ``$`` [MQTT-4.7.2-1]. Only levels somebody subscribed to
        are visited; the walk is iterative, so depth is bounded only by memory.
        """
        levels = topic_name.split("/")
        depth = len(levels)
        found: list[tuple[K, V]] = []
        root = self._root
        stack: list[tuple[_Node[K, V], int]] = []
        # The root level, where the $-rule applies: no '+' and no '#' for $ topics.
        if root.children is not None:
            child = root.children.get(levels[0])
            if child is not None:
                stack.append((child, 1))
        if not topic_name.startswith("$"):
            if root.hash_entries:
                found.extend(root.hash_entries.items())
            if root.plus is not None:
                stack.append((root.plus, 1))
        while stack:
            node, index = stack.pop()
            if node.hash_entries:
                found.extend(node.hash_entries.items())
            if index == depth:
                if node.entries:
                    found.extend(node.entries.items())
                continue
            if node.children is not None:
                child = node.children.get(levels[index])
                if child is not None:
                    stack.append((child, index + 1))
            if node.plus is not None:
                stack.append((node.plus, index + 1))
        return found

    def items(self) -> Iterator[tuple[str, K, V]]:
        """Every (topic_filter, key, value), depth first; iterative at any depth."""
        stack: list[tuple[_Node[K, V], str | None]] = [(self._root, None)]
        while stack:
            node, prefix = stack.pop()
            if node.entries and prefix is not None:
                for key, value in node.entries.items():
                    yield prefix, key, value
            if node.hash_entries:
                topic_filter = "#" if prefix is None else prefix + "/#"
                for key, value in node.hash_entries.items():
                    yield topic_filter, key, value
            if node.plus is not None:
                stack.append((node.plus, "+" if prefix is None else prefix + "/+"))
            if node.children:
                for level, child in node.children.items():
                    stack.append((child, level if prefix is None else prefix + "/" + level))

    def __iter__(self) -> Iterator[tuple[str, K, V]]:
        return self.items()

    def node_count(self) -> int:
        """The number of nodes, the root included (1 when the trie is empty)."""
        count = 0
        stack: list[_Node[K, V]] = [self._root]
        while stack:
            node = stack.pop()
            count += 1
            if node.plus is not None:
                stack.append(node.plus)
            if node.children:
                stack.extend(node.children.values())
        return count

    def clear(self) -> None:
        """Remove every entry."""
        self._root = _Node()
        self._count = 0
