#!/usr/bin/env python3
"""Run the Eclipse Paho MQTT interoperability suite against a broker, one test per process.

The suite (``eclipse/paho.mqtt.testing``, directory ``interoperability/``) is not part of
this repository: point ``--suite`` at a checkout of it (``make interop`` fetches one into the
gitignored ``./paho.mqtt.testing``). Its own command-line handling cannot target another
host or port, so this runner imports ``client_test`` (MQTT 3.1.1) or ``client_test5``
(MQTT 5.0) in a child process, sets the module globals that the suite's ``__main__`` block
would set, and runs a single test with unittest. Each test gets its own process and a time
limit, because some tests wait forever for a message that never comes. Nothing is retried.

Examples::

    python scripts/paho_interop.py --start-roost
    python scripts/paho_interop.py --start-mosquitto --versions 5
    python scripts/paho_interop.py --host localhost --port 1883
"""

from __future__ import annotations

import argparse
import ast
import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_SUITE = Path("paho.mqtt.testing") / "interoperability"
DEFAULT_MOSQUITTO = "/usr/sbin/mosquitto"

# Settings the suite assumes beyond the spec (see docs/interop.md): SUBACK 0x80 for
# test/nosubscribe, and a Server Keep Alive of exactly 60 when a client asks for 120.
ROOST_CONFIG = """\
[api]
enabled = false

[mqtt]
max_keep_alive = 60
refused_topic_filters = ["test/nosubscribe"]
"""

MOSQUITTO_CONFIG = """\
listener {port} 127.0.0.1
allow_anonymous true
max_keepalive 60
"""


@dataclass(frozen=True, slots=True, kw_only=True)
class SuiteVersion:
    """One of the suite's two test modules."""

    label: str
    module: str
    # Test methods unittest does not collect by name but that belong to the suite.
    extra_tests: tuple[str, ...] = ()


VERSIONS: dict[str, SuiteVersion] = {
    "3.1.1": SuiteVersion(label="3.1.1", module="client_test", extra_tests=("will_message_test",)),
    "5": SuiteVersion(label="5.0", module="client_test5"),
}
VERSION_ALIASES = {"3.1.1": "3.1.1", "311": "3.1.1", "4": "3.1.1", "5": "5", "5.0": "5"}


@dataclass(frozen=True, slots=True, kw_only=True)
class Outcome:
    """The result of one test run in its own process."""

    version: str
    test: str
    status: str  # "pass", "fail" or "timeout"
    seconds: float
    log: Path


# --------------------------------------------------------------------------- child side


def _module_globals(version: str, host: str, port: int) -> dict[str, object]:
    """The globals the suite's ``__main__`` block would set before calling unittest."""
    bare_topics = ["TopicA", "TopicA/B", "Topic/C", "TopicA/C", "/TopicA"]
    bare_wild = ["TopicA/+", "+/C", "#", "/#", "/+", "+/+", "TopicA/#"]
    values: dict[str, object] = {
        "host": host,
        "port": port,
        "nosubscribe_topics": ("test/nosubscribe",),
    }
    if version == "5":
        # client_test5's setUpClass resets topics/wildtopics itself; topic_prefix is read
        # by the shared subscription test.
        prefix = "client_test5/"
        values["topic_prefix"] = prefix
        values["topics"] = [prefix + t for t in bare_topics]
        values["wildtopics"] = [prefix + t for t in bare_wild]
    else:
        values["topics"] = tuple(bare_topics)
        values["wildtopics"] = tuple(bare_wild)
    return values


def run_child(suite: Path, version: str, test: str, host: str, port: int) -> int:
    """Import the suite module and run one test with unittest (in this process)."""
    import importlib
    import logging
    import unittest

    spec = VERSIONS[version]
    sys.argv = [spec.module + ".py"]  # a clean argv: unittest never sees our options
    sys.path.insert(0, str(suite))
    os.chdir(suite)
    module = importlib.import_module(spec.module)
    for name, value in _module_globals(version, host, port).items():
        setattr(module, name, value)
    logging.getLogger().setLevel(logging.ERROR)
    print(f"paho_interop: {spec.module}.Test.{test} against {host}:{port}", flush=True)
    # Several tests catch their own assertion errors, log a traceback and `return False`,
    # which unittest counts as a pass: count it as the failure it reports.
    method = getattr(module.Test, test)

    def checked(self: object) -> None:
        if method(self) is False:
            raise AssertionError(f"{test} reported failure (returned False)")

    setattr(module.Test, test, checked)
    case = module.Test(test)
    result = unittest.TextTestRunner(stream=sys.stdout, verbosity=2).run(unittest.TestSuite([case]))
    sys.stdout.flush()
    return 0 if result.wasSuccessful() and result.testsRun == 1 else 1


# -------------------------------------------------------------------------- parent side


def list_tests(suite: Path, version: str) -> list[str]:
    """Test names of the suite's ``Test`` class, in source order, read without importing."""
    spec = VERSIONS[version]
    source = (suite / f"{spec.module}.py").read_text(encoding="utf-8")
    tree = ast.parse(source)
    for node in tree.body:
        if isinstance(node, ast.ClassDef) and node.name == "Test":
            names = [
                item.name
                for item in node.body
                if isinstance(item, ast.FunctionDef)
                and (item.name.startswith("test") or item.name in spec.extra_tests)
            ]
            return names
    raise SystemExit(f"paho_interop: no class Test in {suite / spec.module}.py")


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port that nothing listens on right now (chosen by the kernel)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port


def wait_for_port(host: str, port: int, proc: subprocess.Popen[bytes] | None, limit: float) -> None:
    """Wait until ``host:port`` accepts TCP connections, or fail."""
    deadline = time.monotonic() + limit
    while True:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"broker exited with status {proc.returncode} before listening")
        try:
            with socket.create_connection((host, port), timeout=0.5):
                return
        except OSError:
            if time.monotonic() > deadline:
                raise RuntimeError(f"nothing accepts connections on {host}:{port}") from None
            time.sleep(0.1)


def stop_process(proc: subprocess.Popen[bytes], grace: float = 5.0) -> None:
    """SIGTERM the process group, then SIGKILL it if it is still there after ``grace``."""
    if proc.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


def tail(path: Path, lines: int = 30) -> str:
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return ""
    return "\n".join(text.splitlines()[-lines:])


@dataclass(slots=True)
class Broker:
    """Where the tests connect, and the broker process when this runner started it."""

    name: str
    host: str
    port: int
    proc: subprocess.Popen[bytes] | None = None
    log: Path | None = None

    def alive(self) -> bool:
        return self.proc is None or self.proc.poll() is None


@contextlib.contextmanager
def started_broker(
    name: str, argv: Sequence[str], port: int, workdir: Path, env: dict[str, str], limit: float
) -> Iterator[Broker]:
    log = workdir / f"{name}.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            list(argv),
            cwd=workdir,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    broker = Broker(name=name, host="127.0.0.1", port=port, proc=proc, log=log)
    try:
        try:
            wait_for_port(broker.host, port, proc, limit)
        except RuntimeError as exc:
            print(f"paho_interop: could not start {name}: {exc}", file=sys.stderr)
            print(f"  command: {' '.join(argv)}", file=sys.stderr)
            print(tail(log), file=sys.stderr)
            raise SystemExit(2) from None
        print(f"paho_interop: started {name} on 127.0.0.1:{port} (pid {proc.pid})")
        yield broker
    finally:
        stop_process(proc)


def roost_broker(
    args: argparse.Namespace, workdir: Path
) -> contextlib.AbstractContextManager[Broker]:
    port = args.port or free_port()
    config = workdir / "roost.toml"
    config.write_text(ROOST_CONFIG, encoding="utf-8")
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    src = REPO_ROOT / "src"
    if (src / "roost").is_dir():  # also works from a checkout without an editable install
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(src), env.get("PYTHONPATH")]))
    argv = [
        args.python,
        "-m",
        "roost",
        "serve",
        "--config",
        str(config),
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
    ]
    # The working directory is the temporary one, so Roost's ./data starts empty.
    return started_broker("roost", argv, port, workdir, env, args.startup_timeout)


def mosquitto_broker(
    args: argparse.Namespace, workdir: Path
) -> contextlib.AbstractContextManager[Broker]:
    if not (os.access(args.mosquitto, os.X_OK) or shutil.which(args.mosquitto)):
        raise SystemExit(f"paho_interop: {args.mosquitto} not found (make deps-system)")
    port = args.port or free_port()
    config = workdir / "mosquitto.conf"
    config.write_text(MOSQUITTO_CONFIG.format(port=port), encoding="utf-8")
    config.chmod(0o644)
    workdir.chmod(0o755)  # mosquitto may drop root privileges before reading the config
    argv = [args.mosquitto, "-c", str(config)]
    return started_broker("mosquitto", argv, port, workdir, dict(os.environ), args.startup_timeout)


@contextlib.contextmanager
def external_broker(args: argparse.Namespace) -> Iterator[Broker]:
    broker = Broker(name="broker", host=args.host, port=args.port or 1883)
    try:
        wait_for_port(broker.host, broker.port, None, 3.0)
    except RuntimeError as exc:
        raise SystemExit(f"paho_interop: {exc}") from None
    yield broker


def run_one(
    args: argparse.Namespace, broker: Broker, version: str, test: str, logdir: Path
) -> Outcome:
    """Run one test in a fresh interpreter with a time limit; never retried."""
    log = logdir / f"{VERSIONS[version].module}.{test}.log"
    argv = [
        sys.executable,
        str(Path(__file__).resolve()),
        "--suite",
        str(args.suite),
        "--host",
        broker.host,
        "--port",
        str(broker.port),
        "--child",
        version,
        test,
    ]
    start = time.monotonic()
    with log.open("wb") as out:
        proc = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            env=dict(os.environ, PYTHONUNBUFFERED="1"),
        )
        try:
            code = proc.wait(timeout=args.timeout)
            status = "pass" if code == 0 else "fail"
        except subprocess.TimeoutExpired:
            status = "timeout"
        finally:
            stop_process(proc, grace=1.0)
    return Outcome(
        version=version, test=test, status=status, seconds=time.monotonic() - start, log=log
    )


def print_report(outcomes: list[Outcome], versions: list[str], broker: Broker) -> None:
    width = max([len(o.test) for o in outcomes] + [4])
    print()
    print(f"Paho interoperability suite against {broker.name} at {broker.host}:{broker.port}")
    print(f"{'version':<8} {'test':<{width}} {'result':<8} {'time':>7}")
    print(f"{'-' * 8} {'-' * width} {'-' * 8} {'-' * 7}")
    for o in outcomes:
        label = VERSIONS[o.version].label
        print(f"{label:<8} {o.test:<{width}} {o.status:<8} {o.seconds:>6.1f}s")
    print()
    for version in versions:
        mine = [o for o in outcomes if o.version == version]
        passed = sum(o.status == "pass" for o in mine)
        print(f"{VERSIONS[version].label}: {passed}/{len(mine)} passed")


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Run the Eclipse Paho interoperability suite (one process per test).",
    )
    parser.add_argument(
        "--suite",
        type=Path,
        default=DEFAULT_SUITE,
        help="path to the suite's interoperability/ directory (default: %(default)s)",
    )
    target = parser.add_mutually_exclusive_group()
    target.add_argument(
        "--start-roost",
        action="store_true",
        help="start `python -m roost serve` on a free port with the config the suite needs",
    )
    target.add_argument(
        "--start-mosquitto",
        action="store_true",
        help="start mosquitto on a free port (a reference run for comparison)",
    )
    parser.add_argument(
        "--host", default="localhost", help="broker host when not starting one (IPv4)"
    )
    parser.add_argument(
        "--port",
        type=int,
        default=None,
        help="broker port (default: 1883, or a free port for a broker started here)",
    )
    parser.add_argument(
        "--versions",
        nargs="+",
        default=["3.1.1", "5"],
        metavar="V",
        help="MQTT versions to test: 3.1.1 and/or 5 (default: both)",
    )
    parser.add_argument(
        "--tests",
        nargs="+",
        default=None,
        metavar="NAME",
        help="run only these test methods (e.g. test_will_delay)",
    )
    parser.add_argument(
        "--timeout", type=float, default=90.0, help="seconds per test (default: %(default)s)"
    )
    parser.add_argument(
        "--startup-timeout",
        type=float,
        default=20.0,
        help="seconds to wait for a started broker to listen (default: %(default)s)",
    )
    parser.add_argument(
        "--python",
        default=sys.executable,
        help="interpreter that runs `-m roost` for --start-roost (default: this one)",
    )
    parser.add_argument(
        "--mosquitto", default=DEFAULT_MOSQUITTO, help="mosquitto binary (default: %(default)s)"
    )
    parser.add_argument(
        "--log-dir",
        type=Path,
        default=None,
        help="keep each test's output (and the broker's log) in this directory",
    )
    parser.add_argument(
        "-v", "--verbose", action="store_true", help="print the output of tests that did not pass"
    )
    parser.add_argument("--child", nargs=2, metavar=("VERSION", "TEST"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    try:
        args.versions = list(dict.fromkeys(VERSION_ALIASES[v] for v in args.versions))
    except KeyError as exc:
        parser.error(f"unknown MQTT version {exc.args[0]!r} (use 3.1.1 and/or 5)")
    args.suite = args.suite.resolve()
    return args


def check_suite(suite: Path, versions: list[str]) -> None:
    missing = [
        VERSIONS[v].module + ".py"
        for v in versions
        if not (suite / f"{VERSIONS[v].module}.py").is_file()
    ]
    if missing:
        raise SystemExit(
            f"paho_interop: {', '.join(missing)} not found in {suite}\n"
            "  get the suite with `make paho-suite`, or:\n"
            "  git clone https://github.com/eclipse/paho.mqtt.testing.git\n"
            "  and pass --suite paho.mqtt.testing/interoperability"
        )


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if args.child:
        version, test = args.child
        return run_child(args.suite, version, test, args.host, args.port or 1883)

    check_suite(args.suite, args.versions)
    plan = [(v, t) for v in args.versions for t in list_tests(args.suite, v)]
    if args.tests:
        unknown = set(args.tests) - {t for _, t in plan}
        if unknown:
            raise SystemExit(f"paho_interop: unknown tests: {', '.join(sorted(unknown))}")
        plan = [(v, t) for v, t in plan if t in args.tests]

    workdir = Path(tempfile.mkdtemp(prefix="roost-interop-"))
    logdir = args.log_dir.resolve() if args.log_dir else workdir / "logs"
    logdir.mkdir(parents=True, exist_ok=True)
    outcomes: list[Outcome] = []
    broker_died = False
    try:
        if args.start_roost:
            context = roost_broker(args, workdir)
        elif args.start_mosquitto:
            context = mosquitto_broker(args, workdir)
        else:
            context = external_broker(args)
        with context as broker:
            for version, test in plan:
                label = f"{VERSIONS[version].label} {test}"
                print(f"{label} ...", end=" ", flush=True)
                outcome = run_one(args, broker, version, test, logdir)
                outcomes.append(outcome)
                print(f"{outcome.status} ({outcome.seconds:.1f}s)", flush=True)
                if args.verbose and outcome.status != "pass":
                    print(tail(outcome.log, 40))
                if not broker.alive():
                    broker_died = True
                    print(f"paho_interop: {broker.name} exited; stopping", file=sys.stderr)
                    break
            print_report(outcomes, args.versions, broker)
            if broker.log is not None and (broker_died or args.verbose):
                print(f"\n--- last lines of the {broker.name} log ---")
                print(tail(broker.log))
            if args.log_dir and broker.log is not None:
                shutil.copy(broker.log, logdir / broker.log.name)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    if args.log_dir:
        print(f"logs: {logdir}")
    ok = not broker_died and len(outcomes) == len(plan)
    return 0 if ok and all(o.status == "pass" for o in outcomes) else 1


if __name__ == "__main__":
    sys.exit(main())
