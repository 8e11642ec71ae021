"""Revert-RPC (RRPC): a server-to-device request over MQTT, awaited until the device's
response arrives (Alibaba IoT Platform's RRPC, docs/dialects.md).

`Rrpc.call(tenant, device, payload, timeout)` publishes the request through the broker on
``/sys/<tenant>/<device>/rrpc/request/<messageId>`` (QoS 0; in the `alibaba` dialect the
tenant is the product key) and resolves with the payload the device publishes on
``/sys/<tenant>/<device>/rrpc/response/<messageId>``. With ``topic=`` (a custom topic such as
``/<pk>/<dn>/user/get``) the request goes to ``/ext/rrpc/<messageId><topic>`` and the
response is the device's publish on the same topic, which the dialect routes as
``/ext/rrpc-response/<messageId><topic>``. Only a message published by the device's own
session (its session client id is the device name) counts as its response.

Responses are read through one internal session per tenant, subscribed to both response
forms at QoS 0. Its client id holds U+0000, which no MQTT client id can [MQTT-1.5.4-2],
so no client can take it over; it is never stored.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

from roost.core.broker import Broker
from roost.core.message import Message
from roost.core.session import Session, SessionSubscription
from roost.errors import DeviceOffline, RrpcTimeout, TooManyCalls
from roost.mqtt.packets import Subscription

log = logging.getLogger(__name__)

RRPC_CLIENT_ID = "\x00rrpc"
RESPONSE_FILTERS = ("/sys/+/+/rrpc/response/+", "/ext/rrpc-response/+/#")
# Alibaba's RRpc operation takes a timeout of 1000..8000 ms.
MAX_TIMEOUT = 8.0
MAX_OUTSTANDING = 1000


@dataclass(slots=True)
class _Call:
    device: str
    future: asyncio.Future[bytes]


class _Drain:
    """The waker of a tenant's internal session: reads its responses when one is queued."""

    __slots__ = ("rrpc", "session")

    def __init__(self, rrpc: Rrpc, session: Session) -> None:
        self.rrpc = rrpc
        self.session = session

    def wake(self) -> None:
        self.rrpc._drain(self.session)


class Rrpc:
    """Synchronous server-to-device calls through `broker`; used on the broker's loop."""

    def __init__(
        self,
        broker: Broker,
        clock: Callable[[], float] = time.time,
        *,
        max_outstanding: int = MAX_OUTSTANDING,
        max_timeout: float = MAX_TIMEOUT,
    ) -> None:
        self.broker = broker
        self.clock = clock
        self.max_outstanding = max_outstanding
        self.max_timeout = max_timeout
        # (tenant, response topic) -> the call waiting for it.
        self._pending: dict[tuple[str, str], _Call] = {}
        self._sessions: dict[str, Session] = {}
        # Message ids: decimal, as Alibaba's, unique for the life of the process.
        self._ids = itertools.count(time.time_ns() // 1000)

    @property
    def outstanding(self) -> int:
        return len(self._pending)

    async def call(
        self,
        tenant: str,
        device: str,
        payload: bytes,
        timeout: float,
        topic: str | None = None,
    ) -> bytes:
        """Send `payload` to the device and return its response payload.

        Raises ValueError for a timeout outside (0, max_timeout] or a custom topic that is
        not a topic name starting with `/`; TooManyCalls when `max_outstanding` calls are
        waiting; DeviceOffline when the device is not connected; RrpcTimeout."""
        if not 0 < timeout <= self.max_timeout:
            raise ValueError(f"timeout must be in (0, {self.max_timeout}] seconds")
        if topic is not None and (not topic.startswith("/") or any(c in topic for c in "+#\x00")):
            raise ValueError("a custom RRPC topic is a topic name starting with '/'")
        if len(self._pending) >= self.max_outstanding:
            raise TooManyCalls(f"{len(self._pending)} RRPC calls outstanding")
        session = self.broker.get_session(tenant, device)
        if session is None or not session.connected:
            raise DeviceOffline(f"device {device!r} of {tenant!r} is not connected")
        self._listen(tenant)
        message_id = str(next(self._ids))
        if topic is None:
            request = f"/sys/{tenant}/{device}/rrpc/request/{message_id}"
            response = f"/sys/{tenant}/{device}/rrpc/response/{message_id}"
        else:
            request = f"/ext/rrpc/{message_id}{topic}"
            response = f"/ext/rrpc-response/{message_id}{topic}"
        key = (tenant, response)
        future: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()
        self._pending[key] = _Call(device=device, future=future)
        now = self.clock()
        try:
            self.broker.publish(
                Message(
                    tenant=tenant,
                    topic=request,
                    payload=payload,
                    qos=0,
                    publisher=RRPC_CLIENT_ID,
                    created_at=now,
                ),
                now,
            )
            return await asyncio.wait_for(future, timeout)
        except TimeoutError:
            raise RrpcTimeout(f"no response from {device!r} within {timeout} s") from None
        finally:
            self._pending.pop(key, None)

    # -- responses -------------------------------------------------------------------------

    def _listen(self, tenant: str) -> None:
        """The tenant's internal session subscribed to the response topics (made once)."""
        if tenant in self._sessions:
            return
        broker = self.broker
        config = broker.config
        session = Session(
            tenant,
            RRPC_CLIENT_ID,
            max_queued_messages=config.max_queued_messages,
            max_queued_bytes=config.max_queued_bytes,
        )
        session.connected = True
        broker.sessions[session.key] = session
        for topic_filter in RESPONSE_FILTERS:
            options = Subscription(topic_filter=topic_filter, qos=0, no_local=True)
            broker.subscribe(
                session, SessionSubscription(topic_filter=topic_filter, options=options)
            )
        session.waker = _Drain(self, session)
        self._sessions[tenant] = session

    def _drain(self, session: Session) -> None:
        for delivery in session.take_ready(0, self.clock()):
            message = delivery.message
            call = self._pending.get((session.tenant, message.topic))
            if call is None or call.future.done():
                continue
            if message.publisher != call.device:
                log.info("RRPC response on %s not from %s: ignored", message.topic, call.device)
                continue
            call.future.set_result(message.payload)
