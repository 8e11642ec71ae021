"""Start and stop the brokers under test as subprocesses on free loopback ports, and read
their CPU time, memory and storage writes from /proc.

Roost (the broker under test), Debian's mosquitto (the reference) and amqtt 0.12.1 (a
second, pure-Python reference, run from its own venv `.venv-amqtt`, which `make bench`
creates). For the durable cells: Roost with `durability = "sync"` or `"memory"` and
mosquitto with `persistence true`, each with an empty data directory of its own."""

from __future__ import annotations

import json
import os
import resource
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

HOST = "127.0.0.1"
MOSQUITTO = "/usr/sbin/mosquitto"
ROOT = Path(__file__).resolve().parents[1]
# amqtt lives in a venv of its own (it brings its own dependencies); BENCH_AMQTT may name
# another `amqtt` executable.
AMQTT = os.path.abspath(os.environ.get("BENCH_AMQTT", str(ROOT / ".venv-amqtt/bin/amqtt")))
CLK_TCK = os.sysconf("SC_CLK_TCK")

# Limits both brokers run with (the same numbers on both sides; see docs/performance.md).
MAX_INFLIGHT = 100
MAX_QUEUED_MESSAGES = 10_000
NODELAY = os.environ.get("BENCH_NODELAY", "set_tcp_nodelay true\n")


def roost_config(port: int, durability: str = "", data_dir: str = "") -> str:
    """Roost's settings for the bench: defaults, except the limits both brokers share (and,
    for the durable cells, the store's durability and an empty data directory)."""
    store = ""
    if durability:
        store = f'\n[store]\ndurability = "{durability}"\ndata_dir = "{data_dir}"\n'
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
        "\n[api]\nenabled = false\n"
        "\n[log]\n"
        'level = "WARNING"\n' + store
    )


def mosquitto_config(port: int, persistence_dir: str = "") -> str:
    """mosquitto's settings for the bench: defaults, except the limits both brokers share
    (and, for the durable cells, persistence on: `autosave_interval` stays at its default)."""
    if persistence_dir:
        persistence = f"persistence true\npersistence_location {persistence_dir}/\n"
    else:
        persistence = "persistence false\n"
    return (
        f"listener {port} {HOST}\n"
        "allow_anonymous true\n"
        f"{persistence}"
        f"max_inflight_messages {MAX_INFLIGHT}\n"
        f"max_queued_messages {MAX_QUEUED_MESSAGES}\n"
        f"{NODELAY}"
        "log_dest stderr\n"
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
    stats_path: Path | None = None

    @property
    def pid(self) -> int:
        return self.proc.pid

    def pids(self) -> list[int]:
        """The broker process and its children (roost --workers N: the worker processes)."""
        try:
            with open(f"/proc/{self.pid}/task/{self.pid}/children") as fh:
                return [self.pid, *(int(p) for p in fh.read().split())]
        except OSError:
            return [self.pid]

    def cpu_seconds(self) -> float:
        """User + system CPU time of the broker process (all its threads and children)."""
        total = 0
        for pid in self.pids():
            try:
                with open(f"/proc/{pid}/stat") as fh:
                    fields = fh.read().rsplit(")", 1)[1].split()
            except OSError:
                continue
            # fields[0] is field 3 (state); utime and stime are fields 14 and 15.
            total += int(fields[11]) + int(fields[12])
        return total / CLK_TCK

    def rss_bytes(self) -> int:
        total = 0
        for pid in self.pids():
            try:
                with open(f"/proc/{pid}/status") as fh:
                    for line in fh:
                        if line.startswith("VmRSS:"):
                            total += int(line.split()[1]) * 1024
            except OSError:
                continue
        return total

    def write_bytes(self) -> int:
        """Bytes the broker caused to be written to storage (/proc/PID/io), or -1."""
        try:
            with open(f"/proc/{self.pid}/io") as fh:
                for line in fh:
                    if line.startswith("write_bytes:"):
                        return int(line.split()[1])
        except OSError:
            pass
        return -1

    def store_stats(self) -> dict[str, int]:
        """Roost's store commit counters, written by bench.roost_stats when the broker
        exits (after stop()); empty for other brokers."""
        if self.stats_path is None or not self.stats_path.exists():
            return {}
        try:
            return dict(json.loads(self.stats_path.read_text()))
        except (OSError, ValueError):
            return {}

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


def roost_env() -> dict[str, str]:
    """The environment of a Roost under test: this checkout's sources first (the editable
    install may point at another checkout, and the broker runs in another directory)."""
    return {**os.environ, "PYTHONPATH": os.pathsep.join((str(ROOT / "src"), str(ROOT)))}


def start_roost(workdir: Path) -> Broker:
    port = free_port()
    cfg = workdir / "roost-bench.toml"
    cfg.write_text(roost_config(port))
    argv = [sys.executable, "-m", "roost", "serve", "--host", HOST, "--port", str(port)]
    return _spawn("roost", [*argv, "--config", str(cfg)], port, workdir, roost_env())


def start_roost_w2(workdir: Path) -> Broker:
    """Roost with two worker processes on the port (docs/workers.md), the defaults
    otherwise as "roost"; CPU and RSS are summed over the workers."""
    port = free_port()
    cfg = workdir / "roost-w2-bench.toml"
    data_dir = tempfile.mkdtemp(prefix="roost-w2-data-", dir=workdir)
    cfg.write_text(roost_config(port) + f'\n[store]\ndata_dir = "{data_dir}"\n')
    argv = [sys.executable, "-m", "roost", "serve", "--host", HOST, "--port", str(port)]
    argv += ["--config", str(cfg), "--workers", "2"]
    return _spawn("roost-w2", argv, port, workdir, roost_env())


def _start_roost_store(workdir: Path, durability: str) -> Broker:
    """Roost for the durable cells: an empty data directory of its own, and the store's
    commit counters written to a file at exit (bench.roost_stats)."""
    port = free_port()
    data_dir = tempfile.mkdtemp(prefix=f"roost-{durability}-data-", dir=workdir)
    cfg = workdir / f"roost-{durability}-bench.toml"
    cfg.write_text(roost_config(port, durability, data_dir))
    stats = Path(data_dir) / "store-stats.json"
    argv = [sys.executable, "-m", "bench.roost_stats", str(stats), "serve"]
    argv += ["--host", HOST, "--port", str(port), "--config", str(cfg)]
    broker = _spawn(f"roost-{durability}", argv, port, workdir, roost_env())
    broker.stats_path = stats
    return broker


def start_roost_sync(workdir: Path) -> Broker:
    return _start_roost_store(workdir, "sync")


def start_roost_memory(workdir: Path) -> Broker:
    return _start_roost_store(workdir, "memory")


def start_mosquitto(workdir: Path) -> Broker:
    port = free_port()
    cfg = workdir / "mosquitto-bench.conf"
    cfg.write_text(mosquitto_config(port))
    return _spawn("mosquitto", [mosquitto_path(), "-c", str(cfg)], port, workdir)


def start_mosquitto_persist(workdir: Path) -> Broker:
    """mosquitto with `persistence true` in an empty directory of its own."""
    port = free_port()
    data_dir = tempfile.mkdtemp(prefix="mosquitto-data-", dir=workdir)
    cfg = workdir / "mosquitto-persist-bench.conf"
    cfg.write_text(mosquitto_config(port, data_dir))
    return _spawn("mosquitto-persist", [mosquitto_path(), "-c", str(cfg)], port, workdir)


def amqtt_config(port: int) -> str:
    """amqtt's settings for the bench: one TCP listener, anonymous clients allowed, and no
    other plugin (no $SYS topics, no event or packet logging)."""
    return (
        "listeners:\n"
        "  default:\n"
        "    type: tcp\n"
        f"    bind: {HOST}:{port}\n"
        "plugins:\n"
        "  amqtt.plugins.authentication.AnonymousAuthPlugin:\n"
        "    allow_anonymous: true\n"
    )


def amqtt_path() -> str | None:
    """The amqtt executable, or None when its venv is missing."""
    return AMQTT if os.access(AMQTT, os.X_OK) else None


def amqtt_version() -> str:
    path = amqtt_path()
    if path is None:
        return "amqtt not installed"
    try:
        out = subprocess.run([path, "--version"], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return "unknown"
    return f"amqtt {out.stdout.strip() or 'unknown'}"


def start_amqtt(workdir: Path) -> Broker:
    path = amqtt_path()
    if path is None:
        raise RuntimeError(f"amqtt is not installed ({AMQTT}; make bench creates it)")
    port = free_port()
    cfg = workdir / "amqtt-bench.yaml"
    cfg.write_text(amqtt_config(port))
    return _spawn("amqtt", [path, "-c", str(cfg)], port, workdir)


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


STARTERS = {
    "roost": start_roost,
    "roost-w2": start_roost_w2,
    "mosquitto": start_mosquitto,
    "amqtt": start_amqtt,
    "roost-sync": start_roost_sync,
    "roost-memory": start_roost_memory,
    "mosquitto-persist": start_mosquitto_persist,
}
