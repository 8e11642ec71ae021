"""`python -m bench.hotpath`: CPU per PUBLISH through Roost's server stack, in one process.

No sockets and no load generator: real ConnectionHandlers (CONNECT, SUBSCRIBE, PUBLISH,
PUBACK as bytes) on a transport that only collects what the broker writes, driven by one
asyncio loop. It measures the broker's own per-message work (decode, checks, routing,
queueing, encoding, the write) with `time.process_time`, so it is steady on a busy
machine; it leaves out the kernel's socket work and the event loop's I/O polling, so its
figures are higher than bench.run's msg/CPU-s and only comparable with themselves.

Topologies: p2p (10 publishers -> 10 subscribers, one topic each) at QoS 0 and 1, and fan-in
(100 publishers -> one subscriber on `bench/fanin/+`), 64-byte payloads, MQTT 3.1.1.
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import tempfile
import time
from dataclasses import replace

from roost.config import Config, ListenerConfig, MQTTConfig, StoreConfig
from roost.mqtt.codec import encode, read_frame
from roost.mqtt.constants import ProtocolVersion
from roost.mqtt.packets import Connect, Puback, Publish, Subscribe, Subscription
from roost.server.handler import ConnectionHandler
from roost.server.server import RoostServer

V311 = ProtocolVersion.V311


class SinkTransport:
    """Keeps what the broker writes, for the client side to read back."""

    def __init__(self) -> None:
        self.out = bytearray()

    def write(self, data: bytes) -> None:
        self.out += data

    def close(self) -> None:
        pass

    def abort(self) -> None:
        pass

    def is_closing(self) -> bool:
        return False

    def can_write_eof(self) -> bool:
        return False

    def write_eof(self) -> None:
        pass

    def take(self) -> list[tuple[int, bytes]]:
        """(first byte, body) of every whole packet written so far."""
        packets: list[tuple[int, bytes]] = []
        pos = 0
        buf = bytes(self.out)
        while True:
            frame = read_frame(memoryview(buf)[pos:], 1 << 28)
            if frame is None:
                break
            first, body, length = frame
            packets.append((first, bytes(body)))
            body.release()
            pos += length
        del self.out[:pos]
        return packets


def turn(loop: asyncio.AbstractEventLoop) -> None:
    loop.run_until_complete(asyncio.sleep(0))


def connect(
    server: RoostServer, loop: asyncio.AbstractEventLoop, client_id: str
) -> tuple[ConnectionHandler, SinkTransport]:
    transport = SinkTransport()

    async def open_connection() -> ConnectionHandler:
        # Made inside the running loop, as a listener makes it (its connect deadline goes
        # on the server's timer wheel, which runs on that loop).
        handler = ConnectionHandler(server.ctx, transport, "default", client_id, loop)
        handler.data_received(encode(Connect(client_id=client_id, keep_alive=0), V311))
        return handler

    handler = loop.run_until_complete(open_connection())
    for _ in range(50):
        turn(loop)
        if transport.take():
            return handler, transport
    raise RuntimeError(f"no CONNACK for {client_id}")


def _packet_id(body: bytes) -> int:
    """The Packet Identifier of a QoS 1 PUBLISH body: right after the topic."""
    topic_length = (body[0] << 8) | body[1]
    return (body[2 + topic_length] << 8) | body[3 + topic_length]


def run(topology: str, qos: int, messages: int, batch: int) -> float:
    """Messages delivered per CPU second of the whole process (broker work only)."""
    data_dir = tempfile.mkdtemp(prefix="roost-hotpath-")
    config = Config(
        listeners=(ListenerConfig(host="127.0.0.1", port=0),),
        mqtt=replace(MQTTConfig(), max_inflight=1000, receive_maximum=1000),
        store=StoreConfig(durability="sync", data_dir=data_dir),
    )
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    server = RoostServer(config)
    try:
        return _measure(server, loop, topology, qos, messages, batch)
    finally:
        server.store.close()
        asyncio.set_event_loop(None)
        loop.close()
        shutil.rmtree(data_dir, ignore_errors=True)


def _measure(
    server: RoostServer,
    loop: asyncio.AbstractEventLoop,
    topology: str,
    qos: int,
    messages: int,
    batch: int,
) -> float:
    pubs_n, subs_n = (10, 10) if topology == "p2p" else (100, 1)
    subs = [connect(server, loop, f"sub-{i}") for i in range(subs_n)]
    pubs = [connect(server, loop, f"pub-{i}") for i in range(pubs_n)]
    for i, (handler, transport) in enumerate(subs):
        topic_filter = f"bench/p2p/{i}" if topology == "p2p" else "bench/fanin/+"
        sub = Subscribe(
            packet_id=1, subscriptions=(Subscription(topic_filter=topic_filter, qos=qos),)
        )
        handler.data_received(encode(sub, V311))
        turn(loop)
        transport.take()
    payload = bytes(64)
    packet_id = 0
    frames: list[bytes] = []
    for i in range(pubs_n):
        topic = f"bench/p2p/{i}" if topology == "p2p" else f"bench/fanin/{i}"
        chunk = []
        for _ in range(batch):
            packet_id = packet_id % 65535 + 1
            chunk.append(
                encode(
                    Publish(
                        topic=topic, payload=payload, qos=qos, packet_id=packet_id if qos else None
                    ),
                    V311,
                )
            )
        frames.append(b"".join(chunk))
    delivered = 0
    elapsed = 0.0
    clock = time.process_time
    while delivered < messages:
        before = delivered
        started = clock()
        for (handler, transport), data in zip(pubs, frames, strict=True):
            handler.data_received(data)
            transport.out.clear()
        turn(loop)
        elapsed += clock() - started
        # The subscribers' side (reading, PUBACKs made) is not counted; handing the
        # PUBACKs to the broker is.
        for handler, transport in subs:
            packets = transport.take()
            delivered += len(packets)
            if not qos:
                continue
            acks = b"".join(encode(Puback(packet_id=_packet_id(body)), V311) for _, body in packets)
            started = clock()
            handler.data_received(acks)
            elapsed += clock() - started
        started = clock()
        turn(loop)
        elapsed += clock() - started
        if delivered == before:
            raise RuntimeError("nothing delivered: see the broker's log")
    return delivered / elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--messages", type=int, default=200_000)
    parser.add_argument("--batch", type=int, default=20)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    for name, topology, qos in (("p2p-q0", "p2p", 0), ("p2p-q1", "p2p", 1), ("fanin", "fanin", 0)):
        rates = [run(topology, qos, args.messages, args.batch) for _ in range(args.repeat)]
        print(f"{name:8} {max(rates):>10,.0f} msg/CPU-s (best of {args.repeat})")


if __name__ == "__main__":
    main()
