"""A trivial MQTT peer to measure the load generator's own capacity.

It accepts any CONNECT, grants any SUBSCRIBE, discards what publishers send (acknowledging
QoS 1), and sends every subscriber pre-encoded PUBLISH packets as fast as TCP takes them.
`python -m bench.sink --port P --payload N`.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
from typing import cast

from bench import wire

CHUNK_BYTES = 64 * 1024


class SinkProtocol(asyncio.Protocol):
    def __init__(self, payload: int) -> None:
        self.payload = payload
        self.transport: asyncio.Transport | None = None
        self.rest = b""
        self.chunk = b""
        self.paused = False
        self.scheduled = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)
        self.transport.set_write_buffer_limits(high=256 * 1024)

    def data_received(self, data: bytes) -> None:
        buf = self.rest + data if self.rest else data
        packets, used = wire.walk(buf)
        self.rest = buf[used:]
        out: list[bytes] = []
        for first, start, hl in packets:
            kind = first >> 4
            if kind == 1:
                out.append(b"\x20\x02\x00\x00")
            elif kind == 3:
                if first & 0x06:
                    body = start + hl
                    pos = body + 2 + (buf[body] << 8 | buf[body + 1])
                    out.append(b"\x40\x02" + buf[pos : pos + 2])
            elif kind == 8:
                body = start + hl
                pid = buf[body : body + 2]
                tlen = buf[body + 2] << 8 | buf[body + 3]
                topic = buf[body + 4 : body + 4 + tlen].decode()
                qos = buf[body + 4 + tlen] & 0x03
                out.append(b"\x90\x03" + pid + bytes([min(qos, 1)]))
                one = wire.publish(topic, bytes(self.payload), min(qos, 1), 1)
                self.chunk = one * max(1, CHUNK_BYTES // len(one))
                self.schedule()
            elif kind == 12:
                out.append(b"\xd0\x00")
            elif kind == 14 and self.transport is not None:
                self.transport.close()
        if out and self.transport is not None:
            self.transport.write(b"".join(out))

    def schedule(self) -> None:
        if not self.scheduled:
            self.scheduled = True
            asyncio.get_running_loop().call_soon(self.blast)

    def blast(self) -> None:
        self.scheduled = False
        if self.paused or self.transport is None or self.transport.is_closing():
            return
        self.transport.write(self.chunk)
        self.schedule()

    def pause_writing(self) -> None:
        self.paused = True

    def resume_writing(self) -> None:
        self.paused = False
        if self.chunk:
            self.schedule()


async def serve(host: str, port: int, payload: int) -> None:
    loop = asyncio.get_running_loop()
    server = await loop.create_server(lambda: SinkProtocol(payload), host, port, backlog=1024)
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    async with server:
        await stop.wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--payload", type=int, default=64)
    args = parser.parse_args()
    with contextlib.suppress(ImportError):
        import uvloop

        uvloop.install()
    asyncio.run(serve(args.host, args.port, args.payload))


if __name__ == "__main__":
    main()
