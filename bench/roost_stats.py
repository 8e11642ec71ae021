"""`python -m bench.roost_stats STATS_FILE serve ...`: `roost serve ...`, and when the broker
exits, the commit counters of its SQLite store written to STATS_FILE as JSON.

The durable cells start Roost this way to report how many acknowledged messages share one
commit (one fsync) under load, and how long a commit takes. Nothing in the broker changes:
the store's own counters (`commits`, `committed_ops`) are read once, at exit, from the
instances Roost created, and the writer thread's commit function is timed.
"""

from __future__ import annotations

import atexit
import json
import sys
import time
from pathlib import Path
from typing import Any

from roost import cli
from roost.store import sqlite as sqlite_store


def main(argv: list[str]) -> None:
    if len(argv) < 2:
        raise SystemExit("usage: python -m bench.roost_stats STATS_FILE serve [options]")
    stats_path = Path(argv[0])
    stores: list[Any] = []
    original_init = sqlite_store.SqliteStore.__init__

    def init(self: Any, *args: Any, **kwargs: Any) -> None:
        original_init(self, *args, **kwargs)
        stores.append(self)

    sqlite_store.SqliteStore.__init__ = init  # type: ignore[method-assign]
    original_commit = sqlite_store.SqliteStore._commit
    timing = {"seconds": 0.0, "max": 0.0}

    def commit(self: Any, batch: Any) -> None:
        started = time.perf_counter()
        try:
            original_commit(self, batch)
        finally:
            took = time.perf_counter() - started
            timing["seconds"] += took
            timing["max"] = max(timing["max"], took)

    sqlite_store.SqliteStore._commit = commit  # type: ignore[method-assign]

    def dump() -> None:
        stats = {
            "stores": len(stores),
            "commits": sum(int(s.commits) for s in stores),
            "committed_ops": sum(int(s.committed_ops) for s in stores),
            "commit_seconds": timing["seconds"],
            "commit_max_seconds": timing["max"],
        }
        stats_path.write_text(json.dumps(stats) + "\n")

    atexit.register(dump)
    sys.argv = ["roost", *argv[1:]]
    cli.main()


if __name__ == "__main__":
    main(sys.argv[1:])
