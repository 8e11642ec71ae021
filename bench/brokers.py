"""Start and stop the brokers under test (Roost and Debian's mosquitto) as subprocesses on
free loopback ports, and read their CPU time and memory from /proc."""

from __future__ import annotations

import os
import resource
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

HOST = "127.0.0.1"
MOSQUITTO = "/usr/sbin/mosquitto"
CLK_TCK = os.sysconf("SC_CLK_TCK")

# Limits both brokers run with (the same numbers on both sides; see docs/performance.md).
MAX_INFLIGHT = 100
MAX_QUEUED_MESSAGES = 10_000
NODELAY = os.environ.get("BENCH_NODELAY", "set_tcp_nodelay true\n")


def roost_config(port: int) -> str:
    """Roost's settings for the bench: defaults, except the limits both brokers share."""
    return (
        "[[listeners]]\n"
        'name = "default"\n'
        f'host = "{HOST}"\n'
        f"port = {port}\n"
        "\n[mqtt]\n"
        f"max_inflight = {MAX_INFLIGHT}\n"
        f"receive_maximum = {MAX_INFLIGHT}\n"
        f"max_queued_messages = {MAX_QUEUED_MESSAGES}\n"
        f"max_queued_bytes = {256 * 1024 * 1024}\n"
        "max_keep_alive = 65535\n"
        "\n[log]\n"
        'level = "WARNING"\n'
    )


def mosquitto_config(port: int) -> str:
    """mosquitto's settings for the bench: defaults, except the limits both brokers share."""
    return (
        f"listener {port} {HOST}\n"
        "allow_anonymous true\n"
        "persistence false\n"
        f"max_inflight_messages {MAX_INFLIGHT}\n"
        f"max_queued_messages {MAX_QUEUED_MESSAGES}\n" + NODELAY + "log_dest stderr\n"
        "log_type error\n"
        "log_type warning\n"
    )


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


def _raise_nofile() -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


@dataclass
class Broker:
    """A broker subprocess listening on HOST:port."""

    name: str
    proc: subprocess.Popen[bytes]
    port: int
    log_path: Path

    @property
    def pid(self) -> int:
        return self.proc.pid

    def cpu_seconds(self) -> float:
        """User + system CPU time of the broker process (all its threads)."""
        with open(f"/proc/{self.pid}/stat") as fh:
            fields = fh.read().rsplit(")", 1)[1].split()
        # fields[0] is field 3 (state); utime and stime are fields 14 and 15.
        return (int(fields[11]) + int(fields[12])) / CLK_TCK

    def rss_bytes(self) -> int:
        with open(f"/proc/{self.pid}/status") as fh:
            for line in fh:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024
        return 0

    def alive(self) -> bool:
        return self.proc.poll() is None

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)


def _wait_listening(proc: subprocess.Popen[bytes], port: int, log_path: Path) -> None:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"broker exited ({proc.returncode}); see {log_path}")
        try:
            with socket.create_connection((HOST, port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    proc.kill()
    proc.wait(10)
    raise RuntimeError(f"broker did not listen on {HOST}:{port}; see {log_path}")


def _spawn(
    name: str, argv: list[str], port: int, workdir: Path, env: dict[str, str] | None = None
) -> Broker:
    log_path = workdir / f"{name}.log"
    log = open(log_path, "ab")  # noqa: SIM115 - closed when the process is reaped
    proc = subprocess.Popen(
        argv,
        stdin=subprocess.DEVNULL,
        stdout=log,
        stderr=subprocess.STDOUT,
        preexec_fn=_raise_nofile,
        cwd=workdir,
        env=env,
    )
    log.close()
    _wait_listening(proc, port, log_path)
    return Broker(name, proc, port, log_path)


def start_roost(workdir: Path) -> Broker:
    port = free_port()
    cfg = workdir / "roost-bench.toml"
    cfg.write_text(roost_config(port))
    argv = [sys.executable, "-m", "roost", "serve", "--host", HOST, "--port", str(port)]
    return _spawn("roost", [*argv, "--config", str(cfg)], port, workdir)


def start_mosquitto(workdir: Path) -> Broker:
    port = free_port()
    cfg = workdir / "mosquitto-bench.conf"
    cfg.write_text(mosquitto_config(port))
    return _spawn("mosquitto", [mosquitto_path(), "-c", str(cfg)], port, workdir)


def start_sink(workdir: Path, payload: int) -> Broker:
    """bench.sink: the trivial peer that measures the generator's own capacity."""
    port = free_port()
    root = str(Path(__file__).resolve().parents[1])
    env = {**os.environ, "PYTHONPATH": root}
    argv = [sys.executable, "-m", "bench.sink", "--port", str(port), "--payload", str(payload)]
    return _spawn("sink", argv, port, workdir, env)


def mosquitto_path() -> str:
    found = MOSQUITTO if os.path.exists(MOSQUITTO) else shutil.which("mosquitto")
    if not found:
        raise RuntimeError("mosquitto is not installed (make deps-system installs it)")
    return found


def mosquitto_version() -> str:
    try:
        out = subprocess.run(
            [mosquitto_path(), "-h"], capture_output=True, text=True, timeout=10
        ).stdout
    except (OSError, RuntimeError, subprocess.TimeoutExpired):
        return "unknown"
    first = out.splitlines()[0] if out else "unknown"
    return first.strip()


STARTERS = {"roost": start_roost, "mosquitto": start_mosquitto}
