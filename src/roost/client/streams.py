"""`roost.client`: the asyncio library backend services use to consume streams and to publish
to devices, over Roost's HTTP API (httpx).

    async with RoostClient("http://127.0.0.1:8081", api_key, tenant="acme") as client:
        consumer = client.consumer("telemetry", "billing")
        async for message in consumer.messages():
            handle(message.envelope)
            await message.ack()

A consumer survives broker restarts and lost connections: it retries with backoff and goes
on from the group's committed position, which the broker keeps (messages delivered and not
acknowledged come again: at-least-once)."""

from __future__ import annotations

import asyncio
import base64
import logging
from collections.abc import AsyncIterator
from types import TracebackType
from typing import Any

import httpx

from roost.streams.model import DeadLetter, Envelope

log = logging.getLogger(__name__)

# Statuses worth retrying: the broker is restarting, overloaded or timed out.
_RETRY_STATUS = frozenset({502, 503, 504})


class RoostApiError(Exception):
    """The API refused a request (4xx) or failed (5xx); `code` is its error code."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(f"{status} {code}: {message}")
        self.status = status
        self.code = code
        self.message = message


def envelope_of(d: dict[str, Any]) -> Envelope:
    """The envelope of a fetched message, from the API's JSON (binary fields in base64)."""
    corr = d.get("correlation_data_base64")
    dead = d.get("dead_letter")
    return Envelope(
        stream=d["stream"],
        seq=d["seq"],
        tenant=d["tenant"],
        topic=d["topic"],
        payload=base64.b64decode(d["payload_base64"]),
        qos=d["qos"],
        retain=d["retain"],
        client_id=d["client_id"],
        message_id=d["message_id"],
        dup=d["dup"],
        user_properties=tuple((k, v) for k, v in d["user_properties"]),
        payload_format_indicator=d.get("payload_format_indicator"),
        content_type=d.get("content_type"),
        correlation_data=None if corr is None else base64.b64decode(corr),
        response_topic=d.get("response_topic"),
        received_at=d["received_at"],
        dead_letter=None if dead is None else DeadLetter(**dead),
    )


class StreamMessage:
    """One delivery to this consumer: the envelope, how often it was delivered, and the
    means to settle it before `ack_deadline` (else it is delivered again)."""

    __slots__ = ("_consumer", "ack_deadline", "deliveries", "envelope", "settled")

    def __init__(self, consumer: Consumer, data: dict[str, Any]) -> None:
        self._consumer = consumer
        self.envelope = envelope_of(data)
        self.deliveries: int = data["deliveries"]
        self.ack_deadline: float = data["ack_deadline"]
        self.settled = False

    @property
    def seq(self) -> int:
        return self.envelope.seq

    @property
    def redelivered(self) -> bool:
        return self.deliveries > 1

    async def ack(self) -> None:
        """Acknowledge: once this returns, the group never gets this message again."""
        await self._consumer.ack([self.seq])
        self.settled = True

    async def nack(self, delay: float = 0.0) -> None:
        """Give it back: delivered again after `delay` seconds (one failed attempt)."""
        await self._consumer.nack([self.seq], delay)
        self.settled = True


class Consumer:
    """A member of a consumer group; any number of them (in any processes) share its work."""

    def __init__(
        self, client: RoostClient, stream: str, group: str, batch: int, wait: float
    ) -> None:
        self.client = client
        self.stream = stream
        self.group = group
        self.batch = batch
        self.wait = wait
        self._closed = False

    @property
    def _path(self) -> str:
        return f"/tenants/{self.client.tenant}/streams/{self.stream}/groups/{self.group}"

    async def fetch(
        self, max_messages: int | None = None, wait: float | None = None
    ) -> list[StreamMessage]:
        """One batch (no retries)."""
        body = {
            "max_messages": max_messages or self.batch,
            "wait": self.wait if wait is None else wait,
        }
        data = await self.client.request("POST", self._path + "/fetch", body, retry=False)
        return [StreamMessage(self, m) for m in data["messages"]]

    async def messages(self) -> AsyncIterator[StreamMessage]:
        """Every message for this member, as long as it runs; survives broker restarts."""
        backoff = self.client.min_backoff
        while not self._closed:
            try:
                batch = await self.fetch()
            except (httpx.TransportError, _Retryable) as exc:
                log.warning("fetch from %s/%s failed (%s); retrying", self.stream, self.group, exc)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, self.client.max_backoff)
                continue
            backoff = self.client.min_backoff
            for message in batch:
                yield message

    async def ack(self, seqs: list[int]) -> int:
        data = await self.client.request("POST", self._path + "/ack", {"seqs": seqs})
        return int(data["acked"])

    async def nack(self, seqs: list[int], delay: float = 0.0) -> int:
        data = await self.client.request(
            "POST", self._path + "/nack", {"seqs": seqs, "delay": delay}
        )
        return int(data["nacked"])

    async def seek(self, seq: int | None = None, time: float | None = None) -> int:
        """Replay (or skip): the group goes on from `seq`, or from the first message received
        at or after `time`. Returns the next sequence number."""
        data = await self.client.request("POST", self._path + "/seek", {"seq": seq, "time": time})
        return int(data["next_seq"])

    def close(self) -> None:
        """Stop `messages()` after the current batch."""
        self._closed = True


class _Retryable(Exception):
    pass


class RoostClient:
    """A connection to one Roost API for one tenant."""

    def __init__(
        self,
        url: str,
        api_key: str,
        tenant: str = "default",
        *,
        timeout: float = 90.0,
        retry_for: float = 60.0,
        min_backoff: float = 0.1,
        max_backoff: float = 5.0,
    ) -> None:
        self.tenant = tenant
        self.retry_for = retry_for
        self.min_backoff = min_backoff
        self.max_backoff = max_backoff
        base = url.rstrip("/")
        if not base.endswith("/api/v1"):
            base += "/api/v1"
        self.http = httpx.AsyncClient(
            base_url=base, headers={"Authorization": f"Bearer {api_key}"}, timeout=timeout
        )

    async def __aenter__(self) -> RoostClient:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self.http.aclose()

    async def request(
        self, method: str, path: str, body: dict[str, Any] | None = None, retry: bool = True
    ) -> Any:
        """One API call; transport errors and 502/503/504 are retried (with backoff, for up
        to `retry_for` seconds) when `retry`: every call retried here is idempotent."""
        loop = asyncio.get_running_loop()
        give_up = loop.time() + self.retry_for
        backoff = self.min_backoff
        while True:
            try:
                response = await self.http.request(method, path, json=body)
                if response.status_code in _RETRY_STATUS:
                    raise _Retryable(f"{response.status_code} from {path}")
            except (httpx.TransportError, _Retryable):
                if not retry or loop.time() + backoff > give_up:
                    raise
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, self.max_backoff)
                continue
            if response.status_code >= 400:
                try:
                    error = response.json()["error"]
                except (ValueError, KeyError, TypeError):
                    error = {"code": "error", "message": response.text}
                raise RoostApiError(response.status_code, error["code"], error["message"])
            return None if response.status_code == 204 else response.json()

    # -- streams -------------------------------------------------------------------------------

    def consumer(
        self, stream: str, group: str, *, batch: int = 100, wait: float = 20.0
    ) -> Consumer:
        """A member of `group` on `stream` (the group is made on first use)."""
        return Consumer(self, stream, group, batch, wait)

    async def declare_stream(
        self, name: str, topic_filters: list[str], **settings: float | int
    ) -> dict[str, Any]:
        """Create a stream (or replace its settings): max_age, max_bytes, max_messages,
        ack_wait, max_deliver, max_ack_pending."""
        body = {"topic_filters": topic_filters, **settings}
        result: dict[str, Any] = await self.request(
            "PUT", f"/tenants/{self.tenant}/streams/{name}", body
        )
        return result

    async def stream(self, name: str) -> dict[str, Any]:
        """A stream's settings and statistics (groups, dropped, dead-lettered)."""
        result: dict[str, Any] = await self.request("GET", f"/tenants/{self.tenant}/streams/{name}")
        return result

    async def delete_stream(self, name: str) -> None:
        await self.request("DELETE", f"/tenants/{self.tenant}/streams/{name}")

    # -- backend -> device ------------------------------------------------------------------

    async def publish(
        self,
        topic: str,
        payload: bytes | str,
        qos: int = 2,
        *,
        retain: bool = False,
        device: str | None = None,
        content_type: str | None = None,
        response_topic: str | None = None,
        correlation_data: bytes | None = None,
        user_properties: list[tuple[str, str]] | None = None,
        message_expiry_interval: int | None = None,
    ) -> int:
        """Publish to `topic` (to the session of client `device` alone, if given); answered
        once stored. Each subscriber gets it at the lower of `qos` and its subscription's
        QoS: the default, 2, delivers at the QoS each device subscribed with. Returns the number of sessions it was queued for. Not retried (a retry
        could deliver twice)."""
        raw = payload.encode() if isinstance(payload, str) else payload
        body: dict[str, Any] = {
            "topic": topic,
            "payload_base64": base64.b64encode(raw).decode(),
            "qos": qos,
            "retain": retain,
            "content_type": content_type,
            "response_topic": response_topic,
            "user_properties": [list(p) for p in user_properties or ()],
            "message_expiry_interval": message_expiry_interval,
        }
        if correlation_data is not None:
            body["correlation_data_base64"] = base64.b64encode(correlation_data).decode()
        path = (
            f"/tenants/{self.tenant}/publish"
            if device is None
            else f"/tenants/{self.tenant}/sessions/{device}/publish"
        )
        data = await self.request("POST", path, body, retry=False)
        return int(data["matched_sessions"])
