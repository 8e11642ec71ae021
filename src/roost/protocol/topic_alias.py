"""Topic alias maps of one connection, both directions (MQTT 5 section 3.3.2.3.4)."""

from __future__ import annotations

from roost.mqtt.constants import ReasonCode


class InboundAliases:
    """Aliases the client sets; at most the Topic Alias Maximum the server advertised."""

    def __init__(self, maximum: int) -> None:
        self.maximum = maximum
        self._topics: dict[int, str] = {}

    def resolve(self, topic: str, alias: int) -> str | int:
        """The topic for a PUBLISH with `alias`, or a reason code for the DISCONNECT."""
        if alias == 0 or alias > self.maximum:
            # [MQTT-3.3.2-8] alias 0, [MQTT-3.3.2-9] above the maximum -> 0x94
            return ReasonCode.TOPIC_ALIAS_INVALID
        if topic:
            self._topics[alias] = topic
            return topic
        known = self._topics.get(alias)
        if known is None:
            # An empty topic with an alias the client never set is a Protocol Error.
            return ReasonCode.PROTOCOL_ERROR
        return known


class OutboundAliases:
    """Aliases the server assigns, up to the client's Topic Alias Maximum [MQTT-3.3.2-10]."""

    def __init__(self, maximum: int) -> None:
        self.maximum = maximum
        self._aliases: dict[str, int] = {}
        self._next = 1

    def assign(self, topic: str) -> tuple[int, bool]:
        """(alias, already known by the client). Reuses aliases round-robin when full."""
        alias = self._aliases.get(topic)
        if alias is not None:
            return alias, True
        if self.maximum == 0:
            return 0, False
        alias = self._next
        self._next = alias % self.maximum + 1
        if len(self._aliases) >= self.maximum:
            for old_topic, old_alias in list(self._aliases.items()):
                if old_alias == alias:
                    del self._aliases[old_topic]
                    break
        self._aliases[topic] = alias
        return alias, False

    def forget(self, topic: str) -> None:
        self._aliases.pop(topic, None)
