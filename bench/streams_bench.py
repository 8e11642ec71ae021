"""Throughput of device -> stream -> consumer: `roost serve` (SQLite, sync durability) with
one stream; MQTT 3.1.1 devices publish QoS 1 messages (a window of unacknowledged PUBLISHes
each) while roost.client consumers of one group fetch batches and acknowledge each batch.
The figure is messages per second from the first PUBLISH to the last acknowledgement.

    .venv/bin/python bench/streams_bench.py --messages 20000 --devices 4 --consumers 2

Not run by the tests."""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "src"))

from bench.wire import connect, publish  # noqa: E402
from roost.client import RoostClient  # noqa: E402

CONFIG = """
[store]
durability = "sync"
data_dir = "{data_dir}"

[api]
host = "127.0.0.1"
port = {api_port}
admin_key = "bench"

[[streams]]
name = "bench"
topics = ["bench/#"]
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def start(data_dir: Path, api_port: int) -> tuple[subprocess.Popen[str], int]:
    """`roost serve`; returns the process and its MQTT port (from its log)."""
    config = data_dir / "roost.toml"
    config.write_text(CONFIG.format(data_dir=data_dir, api_port=api_port))
    env = {k: v for k, v in os.environ.items() if not k.startswith("ROOST_")}
    proc = subprocess.Popen(
        [sys.executable, "-m", "roost", "serve", "--config", str(config), "--port", "0",
         "--host", "127.0.0.1"],
        stderr=subprocess.PIPE, text=True, env={**env, "PYTHONPATH": str(ROOT / "src")},
    )  # fmt: skip
    assert proc.stderr is not None
    for line in proc.stderr:
        match = re.search(r"mqtt over tcp on 127\.0\.0\.1:(\d+)", line)
        if match:
            threading.Thread(target=proc.stderr.read, daemon=True).start()
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:  # the API listener starts after MQTT's
                with socket.socket() as probe:
                    if probe.connect_ex(("127.0.0.1", api_port)) == 0:
                        return proc, int(match.group(1))
                time.sleep(0.05)
    raise RuntimeError("roost did not start")


async def device(port: int, index: int, count: int, window: int) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(connect(f"bench-dev-{index}"))
    await reader.readexactly(4)  # CONNACK
    sent = acked = 0
    buffer = b""
    while acked < count:
        while sent < count and sent - acked < window:
            sent += 1
            writer.write(publish(f"bench/{index}", b"x" * 64, 1, sent % 65535 + 1))
        await writer.drain()
        buffer += await reader.read(65536)
        n = len(buffer) // 4  # PUBACKs of 3.1.1 are 4 bytes
        acked += n
        buffer = buffer[n * 4 :]
    writer.close()


async def consumer(url: str, total: int, done: list[int]) -> None:
    async with RoostClient(url, "bench") as client:
        c = client.consumer("bench", "g", batch=1000, wait=1.0)
        while sum(done) < total:
            batch = await c.fetch()
            if batch:
                await c.ack([m.seq for m in batch])
                done.append(len(batch))


async def run(args: argparse.Namespace) -> None:
    api_port = free_port()
    with tempfile.TemporaryDirectory(prefix="roost-streams-bench-") as tmp:
        proc, port = start(Path(tmp), api_port)
        try:
            url = f"http://127.0.0.1:{api_port}"
            total = args.messages - args.messages % args.devices
            done: list[int] = []
            started = time.perf_counter()
            await asyncio.gather(
                *(device(port, i, total // args.devices, args.window) for i in range(args.devices)),
                *(consumer(url, total, done) for _ in range(args.consumers)),
            )
            elapsed = time.perf_counter() - started
            print(
                f"{total} messages, {args.devices} devices (QoS 1, window {args.window}), "
                f"{args.consumers} consumers: {elapsed:.2f} s, {total / elapsed:,.0f} msgs/s "
                "device -> stream -> acknowledged by a consumer"
            )
        finally:
            proc.terminate()
            proc.wait(10)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=20_000)
    parser.add_argument("--devices", type=int, default=4)
    parser.add_argument("--consumers", type=int, default=2)
    parser.add_argument("--window", type=int, default=64)
    asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    main()
