"""Measure how long `roost serve` takes to accept connections after a restart with a large
store: N persistent sessions and M queued QoS 1 messages (default 100,000 and 1,000,000).

    .venv/bin/python scripts/recovery_bench.py --sessions 100000 --messages 1000000

The database is written directly with SQL in the store's schema (as a crash would leave
it), then Roost is started and timed until its listener accepts a CONNECT.
"""

from __future__ import annotations

import argparse
import os
import re
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from roost.store.schema import migrate  # noqa: E402


def build(db: Path, sessions: int, messages: int, payload: int) -> None:
    conn = sqlite3.connect(db, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    migrate(conn)
    conn.execute("BEGIN")
    now = time.time()
    conn.executemany(
        "INSERT INTO sessions VALUES ('default', ?, 86400, ?)",
        ((f"device-{i}", now) for i in range(sessions)),
    )
    conn.executemany(
        "INSERT INTO subscriptions VALUES ('default', ?, ?, 1, 0, 0, 0, NULL)",
        ((f"device-{i}", f"cmd/device-{i}") for i in range(sessions)),
    )
    body = b"x" * payload
    conn.executemany(
        "INSERT INTO messages VALUES (?, 'default', ?, ?, 1, 0, NULL, NULL, 'backend', ?)",
        ((i + 1, f"cmd/device-{i % sessions}", body, now) for i in range(messages)),
    )
    conn.executemany(
        "INSERT INTO deliveries VALUES (?, 'default', ?, ?, 1, 0, '', 0, 0)",
        ((i + 1, f"device-{i % sessions}", i + 1) for i in range(messages)),
    )
    conn.execute("COMMIT")
    conn.close()


def accepts(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1) as s:
            s.sendall(bytes.fromhex("101000044d5154540402003c0004") + b"bnch")
            return s.recv(4)[:2] == b"\x20\x02"
    except OSError:
        return False


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sessions", type=int, default=100_000)
    parser.add_argument("--messages", type=int, default=1_000_000)
    parser.add_argument("--payload", type=int, default=64)
    args = parser.parse_args()
    data_dir = Path(tempfile.mkdtemp(prefix="roost-recovery-"))
    started = time.monotonic()
    build(data_dir / "roost.db", args.sessions, args.messages, args.payload)
    size = sum(p.stat().st_size for p in data_dir.glob("roost.db*"))
    print(
        f"built {args.sessions} sessions, {args.messages} queued messages "
        f"({size / 1e6:.0f} MB) in {time.monotonic() - started:.1f} s"
    )
    config = data_dir / "roost.toml"
    config.write_text(
        f'[store]\ndata_dir = "{data_dir}"\n[api]\nenabled = false\n[mqtt]\nmax_queued_messages = 100000\n'
    )
    started = time.monotonic()
    proc = subprocess.Popen(
        [sys.executable, "-m", "roost", "serve", "--config", str(config), "--host", "127.0.0.1", "--port", "0"],
        stderr=subprocess.PIPE, text=True, env={**os.environ, "PYTHONPATH": str(ROOT / "src")},
    )  # fmt: skip
    assert proc.stderr is not None
    port = 0
    restored = ""
    while not port:
        line = proc.stderr.readline()
        if not line:
            raise SystemExit("roost exited: " + proc.stderr.read())
        if "restored" in line:
            restored = line.strip()
        match = re.search(r"mqtt over tcp on 127\.0\.0\.1:(\d+)", line)
        if match:
            port = int(match.group(1))
    while not accepts(port):
        time.sleep(0.01)
    elapsed = time.monotonic() - started
    rss = 0
    with open(f"/proc/{proc.pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                rss = int(line.split()[1]) // 1024
    proc.terminate()
    proc.wait(timeout=60)
    print(restored.split(": ", 1)[-1])
    print(f"accepting connections {elapsed:.1f} s after start; broker RSS {rss} MiB")


if __name__ == "__main__":
    main()
