"""The coverage-guided fuzz targets (fuzz/, atheris) for 60 seconds each, side by side,
seeded from tests/vectors.py: no crash, and coverage grows beyond the seeds.
The longer run and its figures: docs/listeners.md."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SECONDS = 60


@pytest.mark.slow
@pytest.mark.timeout(SECONDS + 240)
@pytest.mark.skipif(importlib.util.find_spec("atheris") is None, reason="atheris not installed")
def test_fuzz_decoder_and_connection_for_a_minute(tmp_path: Path) -> None:
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "fuzz.run",
            "--seconds",
            str(SECONDS),
            "--corpus",
            str(tmp_path / "corpus"),
            "--artifacts",
            str(tmp_path / "artifacts"),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=SECONDS + 200,
    )
    report = done.stdout + done.stderr[-4000:]
    assert done.returncode == 0, report
    lines = [line for line in done.stdout.splitlines() if "executions" in line]
    assert len(lines) == 2, report
    for line in lines:
        assert "crashes 0" in line, report
        executions = int(line.split(": ", 1)[1].split()[0])
        assert executions > 10_000, report
    print("\n".join(lines))
