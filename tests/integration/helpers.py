"""Helpers for Roost's integration tests: a paho-mqtt client that records what it receives,
waits with timeouts, the mosquitto command-line clients, and broker state probes."""

from __future__ import annotations

import contextlib
import queue
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import paho.mqtt.client as mqtt
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.subscribeoptions import SubscribeOptions

from roost.mqtt.constants import ProtocolVersion
from roost.mqtt.packets import Disconnect
from tests.rawclient import RawClient

if TYPE_CHECKING:
    from tests.conftest import BrokerHandle

# How long to wait for something that should happen, and for something that should not.
TIMEOUT = 3.0
QUIET = 0.3

V31 = mqtt.MQTTv31
V311 = mqtt.MQTTv311
V5 = mqtt.MQTTv5

TENANT = "default"


def props(packet_type: int = PacketTypes.PUBLISH, **values: Any) -> Properties:
    """paho Properties of `packet_type` with attributes set, e.g. props(CONNECT, SessionExpiryInterval=2)."""
    p = Properties(packet_type)
    for name, value in values.items():
        setattr(p, name, value)
    return p


def connect_props(**values: Any) -> Properties:
    return props(PacketTypes.CONNECT, **values)


@dataclass
class Connack:
    session_present: bool
    reason_code: int
    properties: Properties | None


@dataclass
class Disconnected:
    reason_code: int
    properties: Properties | None


class Client:
    """A paho client run by its own thread; received messages, acknowledgements and
    disconnections are recorded so tests can wait for them. Never reconnects by itself."""

    def __init__(
        self,
        handle: BrokerHandle,
        client_id: str = "",
        version: int = V5,
        clean_session: bool | None = None,
    ) -> None:
        self.handle = handle
        self.version = version
        kwargs: dict[str, Any] = {"client_id": client_id, "protocol": version}
        if version != V5:
            kwargs["clean_session"] = True if clean_session is None else clean_session
        self.paho = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, **kwargs)
        self.client_id = self.paho._client_id.decode()
        self.messages: queue.Queue[mqtt.MQTTMessage] = queue.Queue()
        self.disconnects: queue.Queue[Disconnected] = queue.Queue()
        self.connack: Connack | None = None
        self._connected = threading.Event()
        self._acks: dict[int, tuple[Any, Properties | None]] = {}
        self._acked = threading.Condition()
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        p = self.paho
        p.on_connect = self._on_connect
        p.on_disconnect = self._on_disconnect
        p.on_message = self._on_message
        p.on_subscribe = self._on_ack
        p.on_unsubscribe = self._on_ack
        p.on_publish = self._on_publish

    # -- callbacks (paho's thread) -------------------------------------------------------

    def _on_connect(self, client: Any, userdata: Any, flags: Any, rc: Any, properties: Any) -> None:
        self.connack = Connack(bool(flags.session_present), int(rc.value), properties)
        assigned = getattr(properties, "AssignedClientIdentifier", None)
        if assigned:
            self.client_id = assigned
        self._connected.set()

    def _on_disconnect(
        self, client: Any, userdata: Any, flags: Any, rc: Any, properties: Any
    ) -> None:
        self.disconnects.put(Disconnected(int(rc.value), properties))

    def _on_message(self, client: Any, userdata: Any, message: mqtt.MQTTMessage) -> None:
        self.messages.put(message)

    def _on_ack(self, client: Any, userdata: Any, mid: int, codes: Any, properties: Any) -> None:
        with self._acked:
            self._acks[mid] = ([int(c.value) for c in codes], properties)
            self._acked.notify_all()

    def _on_publish(self, client: Any, userdata: Any, mid: int, rc: Any, properties: Any) -> None:
        with self._acked:
            self._acks[mid] = (int(rc.value), properties)
            self._acked.notify_all()

    def _run(self) -> None:
        while not self._stop.is_set():
            if self.paho.loop(0.02) != mqtt.MQTT_ERR_SUCCESS:
                return

    def _wait_ack(self, mid: int, timeout: float = TIMEOUT) -> tuple[Any, Properties | None]:
        with self._acked:
            if not self._acked.wait_for(lambda: mid in self._acks, timeout):
                raise AssertionError(f"no acknowledgement for packet {mid}")
            return self._acks.pop(mid)

    def wait_ack(self, mid: int, timeout: float = TIMEOUT) -> tuple[Any, Properties | None]:
        """The acknowledgement of a PUBLISH sent through `paho` directly (its reason code,
        properties), once it comes."""
        return self._wait_ack(mid, timeout)

    def acknowledged(self, mid: int) -> bool:
        """Whether an acknowledgement of packet `mid` came (and was not taken yet)."""
        with self._acked:
            return mid in self._acks

    # -- actions (test thread) -----------------------------------------------------------

    def connect(
        self,
        clean_start: bool = True,
        properties: Properties | None = None,
        keepalive: int = 60,
        expect_success: bool = True,
    ) -> Connack:
        """Connect and wait for CONNACK."""
        kwargs: dict[str, Any] = {"keepalive": keepalive}
        if self.version == V5:
            kwargs["clean_start"] = clean_start
            kwargs["properties"] = properties
        self.paho.connect(self.handle.host, self.handle.port, **kwargs)
        sock = self.paho.socket()
        if isinstance(sock, socket.socket):
            # No Nagle delay between small packets (a QoS 0 PUBLISH would wait for an ACK).
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        if not self._connected.wait(TIMEOUT):
            raise AssertionError("no CONNACK")
        assert self.connack is not None
        if expect_success:
            assert self.connack.reason_code == 0, self.connack
        return self.connack

    def will_set(
        self,
        topic: str,
        payload: bytes,
        qos: int = 0,
        retain: bool = False,
        properties: Properties | None = None,
    ) -> None:
        self.paho.will_set(topic, payload, qos, retain, properties)

    def subscribe(
        self,
        topic: str,
        qos: int = 0,
        properties: Properties | None = None,
        **options: Any,
    ) -> list[int]:
        """Subscribe and return the SUBACK reason codes (granted QoS for 3.x)."""
        if self.version == V5:
            opts = SubscribeOptions(qos=qos, **options)
            rc, mid = self.paho.subscribe(topic, options=opts, properties=properties)
        else:
            rc, mid = self.paho.subscribe(topic, qos)
        assert rc == mqtt.MQTT_ERR_SUCCESS
        assert mid is not None
        codes, _ = self._wait_ack(mid)
        return list(codes)

    def unsubscribe(self, topic: str) -> list[int]:
        rc, mid = self.paho.unsubscribe(topic)
        assert rc == mqtt.MQTT_ERR_SUCCESS and mid is not None
        codes, _ = self._wait_ack(mid)
        return list(codes)

    def publish(
        self,
        topic: str,
        payload: bytes | str = b"",
        qos: int = 0,
        retain: bool = False,
        properties: Properties | None = None,
    ) -> int:
        """Publish; for QoS 1/2 wait until acknowledged. Returns the PUBACK/PUBREC reason code."""
        info = self.paho.publish(topic, payload, qos, retain, properties)
        assert info.rc == mqtt.MQTT_ERR_SUCCESS, info.rc
        code, _ = self._wait_ack(info.mid)
        return int(code)

    def barrier(self) -> None:
        """Return once the broker has processed everything this client sent before: a QoS 1
        PUBLISH is answered after the packets ahead of it on the same connection."""
        self.publish("barrier/" + (self.client_id or "anonymous"), b"", 1)

    def expect_message(self, timeout: float = TIMEOUT) -> mqtt.MQTTMessage:
        try:
            return self.messages.get(timeout=timeout)
        except queue.Empty:
            raise AssertionError("no message arrived") from None

    def expect_messages(self, count: int, timeout: float = TIMEOUT) -> list[mqtt.MQTTMessage]:
        return [self.expect_message(timeout) for _ in range(count)]

    def expect_no_message(self, timeout: float = QUIET) -> None:
        try:
            message = self.messages.get(timeout=timeout)
        except queue.Empty:
            return
        raise AssertionError(f"unexpected message on {message.topic!r}: {message.payload!r}")

    def expect_disconnect(self, timeout: float = TIMEOUT) -> Disconnected:
        try:
            return self.disconnects.get(timeout=timeout)
        except queue.Empty:
            raise AssertionError("still connected") from None

    def disconnect(
        self, reason_code: int | None = None, properties: Properties | None = None
    ) -> None:
        """A normal DISCONNECT (v5: with the given reason code and properties)."""
        if reason_code is not None:
            from paho.mqtt.reasoncodes import ReasonCode

            rc = ReasonCode(PacketTypes.DISCONNECT, identifier=reason_code)
            self.paho.disconnect(rc, properties)
        else:
            self.paho.disconnect(properties=properties)
        self._join()

    def drop(self) -> None:
        """Lose the network connection: close the socket without DISCONNECT, and wait until
        the broker has noticed."""
        self._stop.set()
        self._join()
        self._close_socket()
        if self.client_id:
            wait_gone(self.handle, self.client_id)

    def _close_socket(self) -> None:
        sock = self.paho.socket()
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()

    def _join(self) -> None:
        if self._thread is not None:
            self._thread.join(TIMEOUT)
            self._thread = None

    def close(self) -> None:
        """Teardown: disconnect if still connected, stop the thread."""
        if self._thread is not None:
            with contextlib.suppress(Exception):
                self.paho.disconnect()
            self._stop.set()
            self._join()
        self._close_socket()


# -- raw clients ---------------------------------------------------------------------------


def raw(handle: BrokerHandle, version: ProtocolVersion = ProtocolVersion.V5) -> RawClient:
    return RawClient(handle.host, handle.port, version, timeout=TIMEOUT)


def hang_up(handle: BrokerHandle, client: RawClient, client_id: str) -> None:
    """Close a raw client's socket without DISCONNECT; wait until the broker noticed."""
    client.close()
    wait_gone(handle, client_id)


def bye(client: RawClient) -> None:
    """A normal DISCONNECT, then close."""
    client.send(Disconnect())
    client.close()


# -- broker state --------------------------------------------------------------------------


def wait_until(predicate: Callable[[], bool], timeout: float = TIMEOUT, what: str = "") -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what or predicate}")
        time.sleep(0.02)


def session_of(handle: BrokerHandle, client_id: str) -> Any:
    """The broker's Session for a client id (or None), read on the broker's loop."""
    return handle.call(lambda: handle.server.broker.sessions.get((TENANT, client_id)))


def wait_subscribed(handle: BrokerHandle, client_id: str, topic_filter: str) -> None:
    """Wait until the broker holds `topic_filter` for `client_id` (e.g. a mosquitto_sub)."""

    def subscribed() -> bool:
        return bool(
            handle.call(
                lambda: (
                    topic_filter
                    in getattr(
                        handle.server.broker.sessions.get((TENANT, client_id)), "subscriptions", {}
                    )
                )
            )
        )

    wait_until(subscribed, what=f"{client_id} subscribed to {topic_filter}")


def wait_gone(handle: BrokerHandle, client_id: str) -> None:
    """Wait until no network connection of `client_id` is left on the broker."""

    def gone() -> bool:
        return (TENANT, client_id) not in handle.server.ctx.connections

    wait_until(lambda: bool(handle.call(gone)), what=f"{client_id} gone")


def wait_connected(handle: BrokerHandle, client_id: str, connected: bool = True) -> None:
    def check() -> bool:
        session = handle.server.broker.sessions.get((TENANT, client_id))
        return session is not None and session.connected == connected

    wait_until(lambda: bool(handle.call(check)), what=f"{client_id} connected={connected}")


# -- mosquitto command-line clients ----------------------------------------------------------

MOSQUITTO_VERSIONS = {V31: "mqttv31", V311: "mqttv311", V5: "mqttv5"}


def mosquitto_sub(
    handle: BrokerHandle,
    topic: str,
    version: int,
    client_id: str,
    qos: int = 0,
    count: int = 1,
    wait: int = 5,
    fmt: str = "%t|%q|%r|%p",
    extra: Sequence[str] = (),
) -> subprocess.Popen[str]:
    """Start mosquitto_sub; it exits after `count` messages or `wait` seconds."""
    args = [
        "mosquitto_sub",
        "-h",
        handle.host,
        "-p",
        str(handle.port),
        "-V",
        MOSQUITTO_VERSIONS[version],
        "-i",
        client_id,
        "-t",
        topic,
        "-q",
        str(qos),
        "-C",
        str(count),
        "-W",
        str(wait),
        "-F",
        fmt,
        *extra,
    ]
    return subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def mosquitto_pub(
    handle: BrokerHandle,
    topic: str,
    message: str | None,
    version: int,
    qos: int = 0,
    retain: bool = False,
    extra: Sequence[str] = (),
) -> subprocess.CompletedProcess[str]:
    """Run mosquitto_pub once; `message=None` sends an empty payload (-n)."""
    args = [
        "mosquitto_pub",
        "-h",
        handle.host,
        "-p",
        str(handle.port),
        "-V",
        MOSQUITTO_VERSIONS[version],
        "-t",
        topic,
        *(["-n"] if message is None else ["-m", message]),
        "-q",
        str(qos),
        *(["-r"] if retain else []),
        *extra,
    ]
    done = subprocess.run(args, capture_output=True, text=True, timeout=10)
    assert done.returncode == 0, done.stderr
    return done


def sub_output(proc: subprocess.Popen[str], timeout: float = 10) -> list[str]:
    """The lines mosquitto_sub printed, after it exits."""
    out, err = proc.communicate(timeout=timeout)
    assert proc.returncode == 0, (proc.returncode, err)
    return out.splitlines()
