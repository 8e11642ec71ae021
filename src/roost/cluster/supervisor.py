"""The parent of the worker processes: forks them, restarts one that dies, forwards
SIGTERM / SIGINT / SIGHUP, and exits when they have exited."""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import time
from collections.abc import Callable
from types import FrameType

log = logging.getLogger(__name__)

# A worker that dies this soon after its start, this many times in a row, is not restarted
# again: the whole broker stops (a port that cannot be bound, a broken configuration).
QUICK_EXIT_SECONDS = 2.0
QUICK_EXITS_ALLOWED = 5
RESTART_DELAY_SECONDS = 0.2

_FORWARDED = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)


class Supervisor:
    """Runs `run_worker(index)` in `count` forked processes until told to stop."""

    def __init__(self, count: int, run_worker: Callable[[int], None]) -> None:
        self.count = count
        self.run_worker = run_worker
        self.children: dict[int, tuple[int, float]] = {}  # pid -> (index, started)
        self.stopping = False
        self.quick_exits = 0

    def _spawn(self, index: int) -> None:
        pid = os.fork()
        if pid == 0:  # the worker
            for sig in _FORWARDED:
                signal.signal(sig, signal.SIG_DFL)
            code = 1
            try:
                self.run_worker(index)
                code = 0
            except SystemExit as exc:
                code = exc.code if isinstance(exc.code, int) else 1
            except BaseException:
                log.exception("worker %d failed", index)
            finally:
                logging.shutdown()
                os._exit(code)
        self.children[pid] = (index, time.monotonic())
        log.info("worker %d started (pid %d)", index, pid)

    def _signal(self, sig: int, frame: FrameType | None) -> None:
        if sig != signal.SIGHUP:
            self.stopping = True
        for pid in list(self.children):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, sig)

    def run(self) -> int:
        """Start the workers and supervise them; the exit status of the broker."""
        for sig in _FORWARDED:
            signal.signal(sig, self._signal)
        for index in range(self.count):
            self._spawn(index)
        status = 0
        while self.children:
            try:
                pid, wait_status = os.wait()
            except ChildProcessError:
                break
            entry = self.children.pop(pid, None)
            if entry is None:
                continue
            index, started = entry
            code = os.waitstatus_to_exitcode(wait_status)
            if self.stopping:
                log.info("worker %d (pid %d) exited (%d)", index, pid, code)
                continue
            if time.monotonic() - started < QUICK_EXIT_SECONDS:
                self.quick_exits += 1
            else:
                self.quick_exits = 0
            if self.quick_exits >= QUICK_EXITS_ALLOWED:
                log.error("worker %d keeps exiting at start (%d): stopping", index, code)
                status = 1
                self._signal(signal.SIGTERM, None)
                continue
            log.warning("worker %d (pid %d) exited (%d): restarting it", index, pid, code)
            time.sleep(RESTART_DELAY_SECONDS)
            if not self.stopping:
                self._spawn(index)
        return status
