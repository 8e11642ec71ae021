"""A slow disk for crash tests: an LD_PRELOAD library that delays every fsync / fdatasync
of the broker process, so that SIGKILL often lands between a write and its commit (the
window in which an acknowledgement must not yet have left). Built with the system's C
compiler into the test's directory; tests skip when there is none."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

SOURCE = r"""
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdlib.h>
#include <unistd.h>

static useconds_t delay(void) {
    const char *text = getenv("ROOST_SLOW_SYNC_US");
    return text ? (useconds_t)atol(text) : 0;
}

int fsync(int fd) {
    static int (*real)(int);
    if (!real) real = (int (*)(int))dlsym(RTLD_NEXT, "fsync");
    usleep(delay());
    return real(fd);
}

int fdatasync(int fd) {
    static int (*real)(int);
    if (!real) real = (int (*)(int))dlsym(RTLD_NEXT, "fdatasync");
    usleep(delay());
    return real(fd);
}
"""


def slow_disk_env(directory: Path, delay_ms: int) -> dict[str, str]:
    """Environment for a broker process whose syncs each take `delay_ms` longer."""
    compiler = shutil.which("cc") or shutil.which("gcc")
    if compiler is None:
        pytest.skip("no C compiler to build the slow-disk library")
    source = directory / "slowsync.c"
    library = directory / "libslowsync.so"
    source.write_text(SOURCE)
    subprocess.run(
        [compiler, "-shared", "-fPIC", "-O2", "-o", str(library), str(source), "-ldl"],
        check=True,
    )
    env = {"LD_PRELOAD": str(library), "ROOST_SLOW_SYNC_US": str(delay_ms * 1000)}
    # The library is in effect (ld.so only warns when it cannot load one): an fsync in a
    # process with this environment takes at least the delay.
    probe = subprocess.run(
        [
            sys.executable,
            "-c",
            "import os, tempfile, time\n"
            "with tempfile.TemporaryFile() as f:\n"
            "    t = time.monotonic(); os.fsync(f.fileno()); print(time.monotonic() - t)",
        ],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        check=True,
    )
    assert float(probe.stdout) >= delay_ms / 1000, f"slow-disk library not in effect: {probe}"
    return env
