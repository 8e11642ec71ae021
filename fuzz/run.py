"""Run the fuzz targets for a while and report their figures.

    python -m fuzz.run                       # both targets, 60 s each, side by side
    python -m fuzz.run --seconds 600         # the long run (figures in docs/listeners.md)
    python -m fuzz.run --target decoder --corpus fuzz/corpus/decoder --seconds 3600

The corpus directory (default: a fresh temporary one) is seeded from tests/vectors.py.
A crash leaves its input as `crash-*` in the artifacts directory and makes the exit status
non-zero; replay it with `python -m fuzz.fuzz_decoder <file>`.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from fuzz.seeds import connection_seeds, decoder_seeds, write_corpus

ROOT = Path(__file__).resolve().parents[1]
TARGETS = {
    "decoder": ("fuzz.fuzz_decoder", decoder_seeds),
    "connection": ("fuzz.fuzz_connection", connection_seeds),
}
_PROGRESS = re.compile(
    r"#(\d+)\s+\w+\s+cov: (\d+) ft: (\d+) corp: (\d+)/(\S+).*?exec/s: (\d+) rss: (\d+)Mb"
)


@dataclass
class Result:
    target: str
    seconds: float
    executions: int = 0
    coverage: int = 0
    features: int = 0
    corpus: int = 0
    exec_per_second: int = 0
    rss_mb: int = 0
    crashes: int = 0
    returncode: int = 0

    def line(self) -> str:
        return (
            f"{self.target}: {self.executions} executions in {self.seconds:.0f} s "
            f"({self.exec_per_second}/s), coverage {self.coverage} edges / {self.features} "
            f"features, corpus {self.corpus}, peak RSS {self.rss_mb} MB, crashes {self.crashes}"
        )


def parse(result: Result, output: str) -> None:
    for match in _PROGRESS.finditer(output):
        result.executions = int(match.group(1))
        result.coverage = int(match.group(2))
        result.features = int(match.group(3))
        result.corpus = int(match.group(4))
        result.exec_per_second = int(match.group(6))
        result.rss_mb = max(result.rss_mb, int(match.group(7)))
    executed = re.search(r"stat::number_of_executed_units: (\d+)", output)
    if executed:
        result.executions = int(executed.group(1))
    average = re.search(r"stat::average_exec_per_sec:\s+(\d+)", output)
    if average:
        result.exec_per_second = int(average.group(1))


def start(target: str, seconds: int, corpus: Path, artifacts: Path) -> subprocess.Popen[str]:
    module, seeds = TARGETS[target]
    write_corpus(corpus, seeds())
    artifacts.mkdir(parents=True, exist_ok=True)
    args = [
        sys.executable,
        "-m",
        module,
        f"-max_total_time={seconds}",
        "-print_final_stats=1",
        "-rss_limit_mb=2048",
        "-timeout=10",
        f"-artifact_prefix={artifacts}/",
        str(corpus),
    ]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), str(ROOT / "src")])}
    return subprocess.Popen(
        args, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )


def run(targets: list[str], seconds: int, corpus_root: Path, artifacts: Path) -> list[Result]:
    started = time.monotonic()
    procs = {t: start(t, seconds, corpus_root / t, artifacts / t) for t in targets}
    results = []
    for target, proc in procs.items():
        output, _ = proc.communicate(timeout=seconds + 300)
        result = Result(target, time.monotonic() - started, returncode=proc.returncode)
        parse(result, output)
        result.crashes = len(list((artifacts / target).glob("crash-*"))) + len(
            list((artifacts / target).glob("timeout-*"))
        )
        if proc.returncode != 0 and not result.crashes:
            result.crashes = 1
        if result.crashes:
            sys.stderr.write(output[-6000:])
        results.append(result)
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--target", choices=[*TARGETS, "all"], default="all")
    parser.add_argument("--seconds", type=int, default=60)
    parser.add_argument("--corpus", type=Path, help="corpus root (one directory per target)")
    parser.add_argument("--artifacts", type=Path, help="where crashing inputs are written")
    args = parser.parse_args(argv)
    targets = list(TARGETS) if args.target == "all" else [args.target]
    work = Path(tempfile.mkdtemp(prefix="roost-fuzz-"))
    corpus = args.corpus or work / "corpus"
    artifacts = args.artifacts or work / "artifacts"
    results = run(targets, args.seconds, corpus, artifacts)
    for result in results:
        print(result.line())
    if any(r.crashes for r in results):
        print(f"crashing inputs in {artifacts}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
