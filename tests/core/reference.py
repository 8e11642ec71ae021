"""A naive reference matcher written from the spec's text, and hypothesis strategies over a
small alphabet of levels (so that filters and names collide), shared by the trie and
retained-index tests."""

from __future__ import annotations

from hypothesis import strategies as st


def naive_matches(topic_filter: str, topic_name: str) -> bool:
    """[MQTT-4.7.1-2] [MQTT-4.7.1-3] [MQTT-4.7.2-1], level by level, no shortcuts."""
    filter_levels = topic_filter.split("/")
    name_levels = topic_name.split("/")
    if topic_name.startswith("$") and filter_levels[0] in ("+", "#"):
        return False
    for index, level in enumerate(filter_levels):
        if level == "#":
            return len(name_levels) >= index  # the parent level or any children
        if index >= len(name_levels):
            return False
        if level != "+" and level != name_levels[index]:
            return False
    return len(filter_levels) == len(name_levels)


LEVELS = ["a", "b", "", "$x", "$SYS"]
topic_names = st.lists(st.sampled_from(LEVELS), min_size=1, max_size=5).map("/".join).filter(bool)
topic_filters = st.builds(
    lambda levels, hashed: "/".join([*levels, "#"] if hashed else levels) or "#",
    st.lists(st.sampled_from([*LEVELS, "+", "+"]), min_size=0, max_size=5),
    st.booleans(),
)
