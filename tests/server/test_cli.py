"""`roost serve` as a real process: a log line per listener, a mosquitto_pub / mosquitto_sub
round trip, graceful shutdown on SIGTERM and SIGINT, refusal of a bad config."""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def start(*args: str, cwd: Path) -> tuple[subprocess.Popen[str], int]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "roost", "serve", "--host", "127.0.0.1", "--port", "0", *args],
        cwd=cwd,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT / "src")},
    )
    assert proc.stderr is not None
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        line = proc.stderr.readline()
        match = re.search(r"listener default: mqtt over tcp on 127\.0\.0\.1:(\d+)", line)
        if match:
            return proc, int(match.group(1))
        if not line and proc.poll() is not None:
            break
    proc.kill()
    raise AssertionError("roost serve did not log its listener")


@pytest.mark.skipif(shutil.which("mosquitto_pub") is None, reason="mosquitto-clients not installed")
@pytest.mark.skipif(shutil.which("stdbuf") is None, reason="coreutils stdbuf not installed")
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_serve_round_trip_and_graceful_shutdown(tmp_path: Path, sig: signal.Signals) -> None:
    proc, port = start(cwd=tmp_path)
    try:
        # -d: mosquitto_sub reports its packets, so the message is published once its
        # SUBACK is in (live routing, not a retained message); stdbuf: line by line.
        sub = subprocess.Popen(
            ["stdbuf", "-oL", "mosquitto_sub", "-h", "127.0.0.1", "-p", str(port),
             "-t", "cli/#", "-C", "1", "-W", "10", "-v", "-d"],
            stdout=subprocess.PIPE,
            text=True,
        )  # fmt: skip
        assert sub.stdout is not None
        before = []
        while not before or "received SUBACK" not in before[-1]:
            line = sub.stdout.readline()  # "" once it exits (-W 10)
            assert line, before
            before.append(line.rstrip("\n"))
        subprocess.run(
            ["mosquitto_pub", "-h", "127.0.0.1", "-p", str(port),
             "-t", "cli/x", "-m", "hello", "-q", "1"],
            check=True,
            timeout=10,
        )  # fmt: skip
        out, _ = sub.communicate(timeout=15)
        lines = before + out.splitlines()
        debug = ("Client ", "Subscribed ")
        assert [line for line in lines if not line.startswith(debug)] == ["cli/x hello"]
        assert "cli/x hello" in lines
    finally:
        proc.send_signal(sig)
        assert proc.wait(timeout=15) == 0
    assert proc.stderr is not None
    assert "shutting down" in proc.stderr.read()


def test_bad_config_refused_with_message(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text("[mqtt]\nmax_keep_alive = -1\n")
    result = subprocess.run(
        [sys.executable, "-m", "roost", "serve", "--config", str(bad)],
        capture_output=True,
        text=True,
        timeout=30,
        env={**os.environ, "PYTHONPATH": str(ROOT / "src")},
    )
    assert result.returncode != 0
    assert "max_keep_alive" in result.stderr
