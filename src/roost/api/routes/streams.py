"""The messaging service over HTTP: declare streams, consume them in groups (fetch, ack, nack,
seek, server-sent events), and publish to a device."""

from __future__ import annotations

import base64
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import asdict
from typing import Annotated, Any, TypeVar

from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, Field

from roost.api.auth import TenantDep, roost
from roost.api.errors import ApiError
from roost.api.routes.broker import PublishIn, PublishOut, build_message, committed
from roost.errors import InvalidStreamRequest, StreamError, UnknownGroup, UnknownStream
from roost.server.server import RoostServer
from roost.streams.base import StreamStore
from roost.streams.model import Delivered, Position, StreamSpec, StreamStats, check_name

router = APIRouter(tags=["streams"])

T = TypeVar("T")
ServerDep = Annotated[RoostServer, Depends(roost)]
# How long a server-sent events stream waits for messages before a keep-alive comment.
SSE_KEEPALIVE = 15.0


def streams(server: ServerDep) -> StreamStore:
    return server.streams


StreamsDep = Annotated[StreamStore, Depends(streams)]


async def _call(fn: Awaitable[T]) -> T:
    """Run a messaging-service call, mapping its errors: unknown -> 404, invalid -> 400."""
    try:
        return await fn
    except (UnknownStream, UnknownGroup) as exc:
        raise ApiError(404, str(exc)) from exc
    except InvalidStreamRequest as exc:
        raise ApiError(400, str(exc)) from exc
    except StreamError as exc:
        raise ApiError(400, str(exc)) from exc


async def _sync(fn: Callable[[], T]) -> T:
    return fn()


# -- models -------------------------------------------------------------------------------


class StreamIn(BaseModel):
    topic_filters: list[str] = Field(default_factory=list, max_length=64)
    max_age: float = Field(0.0, description="seconds; 0: no limit")
    max_bytes: int = Field(0, description="0: no limit")
    max_messages: int = Field(0, description="0: no limit")
    ack_wait: float = Field(30.0, description="visibility timeout of a delivery, seconds")
    max_deliver: int = Field(5, description="deliveries before the dead-letter stream")
    max_ack_pending: int = Field(1000, description="unacknowledged messages per group")


class GroupOut(BaseModel):
    name: str
    committed: int
    next_seq: int
    pending: int
    delivered: int
    redelivered: int
    acked: int
    nacked: int
    dead_lettered: int


class StreamOut(BaseModel):
    name: str
    topic_filters: list[str]
    max_age: float
    max_bytes: int
    max_messages: int
    ack_wait: float
    max_deliver: int
    max_ack_pending: int
    first_seq: int
    last_seq: int
    messages: int
    bytes: int
    dropped: int
    created_at: float
    groups: list[GroupOut]

    @classmethod
    def of(cls, s: StreamStats) -> StreamOut:
        spec = s.spec
        return cls(
            name=spec.name,
            topic_filters=list(spec.topic_filters),
            max_age=spec.max_age,
            max_bytes=spec.max_bytes,
            max_messages=spec.max_messages,
            ack_wait=spec.ack_wait,
            max_deliver=spec.max_deliver,
            max_ack_pending=spec.max_ack_pending,
            first_seq=s.first_seq,
            last_seq=s.last_seq,
            messages=s.messages,
            bytes=s.bytes,
            dropped=s.dropped,
            created_at=s.created_at,
            groups=[GroupOut(**asdict(g)) for g in s.groups],
        )


def envelope_json(d: Delivered) -> dict[str, Any]:
    """One delivered envelope as JSON (binary fields in base64)."""
    e = d.envelope
    dead = e.dead_letter
    return {
        "stream": e.stream,
        "seq": e.seq,
        "tenant": e.tenant,
        "topic": e.topic,
        "payload_base64": base64.b64encode(e.payload).decode(),
        "qos": e.qos,
        "retain": e.retain,
        "client_id": e.client_id,
        "message_id": e.message_id,
        "dup": e.dup,
        "user_properties": [[k, v] for k, v in e.user_properties],
        "payload_format_indicator": e.payload_format_indicator,
        "content_type": e.content_type,
        "correlation_data_base64": None
        if e.correlation_data is None
        else base64.b64encode(e.correlation_data).decode(),
        "response_topic": e.response_topic,
        "received_at": e.received_at,
        "group": d.group,
        "deliveries": d.deliveries,
        "ack_deadline": d.ack_deadline,
        "dead_letter": None
        if dead is None
        else {
            "stream": dead.stream,
            "group": dead.group,
            "seq": dead.seq,
            "deliveries": dead.deliveries,
        },
    }


class FetchIn(BaseModel):
    max_messages: int = Field(100, description="1..1000")
    wait: float = Field(0.0, description="seconds to wait for the first message, 0..60")


class SeqsIn(BaseModel):
    seqs: list[int] = Field(min_length=1, max_length=1000)


class NackIn(SeqsIn):
    delay: float = Field(0.0, description="seconds before redelivery, 0..86400")


class SeekIn(BaseModel):
    seq: int | None = None
    time: float | None = Field(None, description="seconds since the epoch")


# -- streams ------------------------------------------------------------------------------


@router.get("/tenants/{tenant}/streams", summary="Streams of the tenant, with statistics")
async def list_streams(tenant: TenantDep, s: StreamsDep) -> list[StreamOut]:
    return [StreamOut.of(stats) for stats in s.list_streams(tenant)]


@router.put(
    "/tenants/{tenant}/streams/{name}",
    summary="Declare a stream (create, or replace its settings); its dead-letter stream "
    "`<name>.dlq` comes with it",
)
async def declare_stream(tenant: TenantDep, name: str, body: StreamIn, s: StreamsDep) -> StreamOut:
    spec = StreamSpec(
        name=name,
        topic_filters=tuple(body.topic_filters),
        max_age=body.max_age,
        max_bytes=body.max_bytes,
        max_messages=body.max_messages,
        ack_wait=body.ack_wait,
        max_deliver=body.max_deliver,
        max_ack_pending=body.max_ack_pending,
    )
    return StreamOut.of(await _call(s.declare(tenant, spec)))


@router.get("/tenants/{tenant}/streams/{name}", summary="A stream's settings and statistics")
async def get_stream(tenant: TenantDep, name: str, s: StreamsDep) -> StreamOut:
    return StreamOut.of(await _call(_sync(lambda: s.stats(tenant, name))))


@router.delete(
    "/tenants/{tenant}/streams/{name}",
    status_code=204,
    summary="Delete a stream with its messages, groups and dead-letter stream",
)
async def delete_stream(tenant: TenantDep, name: str, s: StreamsDep) -> Response:
    await _call(s.delete(tenant, name))
    return Response(status_code=204)


# -- consumer groups ----------------------------------------------------------------------

GROUP = "/tenants/{tenant}/streams/{name}/groups/{group}"


@router.post(
    GROUP + "/fetch",
    summary="A batch for one member of the group (the group is made on first use); each "
    "message is leased for ack_wait seconds",
)
async def fetch(
    tenant: TenantDep, name: str, group: str, s: StreamsDep, body: FetchIn | None = None
) -> dict[str, list[dict[str, Any]]]:
    body = body or FetchIn.model_validate({})
    batch = await _call(s.fetch(tenant, name, group, body.max_messages, body.wait))
    return {"messages": [envelope_json(d) for d in batch]}


@router.post(GROUP + "/ack", summary="Acknowledge; stored when answered")
async def ack(
    tenant: TenantDep, name: str, group: str, body: SeqsIn, s: StreamsDep
) -> dict[str, int]:
    return {"acked": await _call(s.ack(tenant, name, group, body.seqs))}


@router.post(GROUP + "/nack", summary="Give messages back for redelivery after a delay")
async def nack(
    tenant: TenantDep, name: str, group: str, body: NackIn, s: StreamsDep
) -> dict[str, int]:
    return {"nacked": await _call(s.nack(tenant, name, group, body.seqs, body.delay))}


@router.post(GROUP + "/seek", summary="Replay (or skip) from a sequence number or a time")
async def seek(
    tenant: TenantDep, name: str, group: str, body: SeekIn, s: StreamsDep
) -> dict[str, int]:
    try:
        position = Position(seq=body.seq, time=body.time)
    except InvalidStreamRequest as exc:
        raise ApiError(400, str(exc)) from exc
    return {"next_seq": await _call(s.seek(tenant, name, group, position))}


@router.delete(GROUP, status_code=204, summary="Delete a consumer group and its position")
async def delete_group(tenant: TenantDep, name: str, group: str, s: StreamsDep) -> Response:
    await _call(s.delete_group(tenant, name, group))
    return Response(status_code=204)


@router.get(
    GROUP + "/events",
    summary="Push consumption as server-sent events (event `message`, id = seq); "
    "acknowledge over HTTP",
    response_class=StreamingResponse,
)
async def events(
    tenant: TenantDep,
    name: str,
    group: str,
    request: Request,
    s: StreamsDep,
    batch: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> StreamingResponse:
    await _call(_sync(lambda: s.stats(tenant, name)))  # 404 before the stream starts
    try:
        check_name("group", group)
    except InvalidStreamRequest as exc:
        raise ApiError(400, str(exc)) from exc

    async def generate() -> AsyncIterator[bytes]:
        yield b": roost stream\n\n"
        while not await request.is_disconnected():
            try:
                got = await s.fetch(tenant, name, group, batch, SSE_KEEPALIVE)
            except StreamError as exc:
                yield b"event: error\ndata: %s\n\n" % json.dumps({"message": str(exc)}).encode()
                return
            if not got:
                yield b": keep-alive\n\n"
            for d in got:
                data = json.dumps(envelope_json(d), separators=(",", ":")).encode()
                yield b"id: %d\nevent: message\ndata: %s\n\n" % (d.envelope.seq, data)

    return StreamingResponse(
        generate(),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
    )


# -- backend -> device ----------------------------------------------------------------------


@router.post(
    "/tenants/{tenant}/sessions/{client_id}/publish",
    summary="Publish to one device: its session alone gets the message, at the QoS of its "
    "matching subscription, queued while a persistent session is offline",
)
async def publish_to_device(
    tenant: TenantDep, client_id: str, body: PublishIn, server: ServerDep
) -> PublishOut:
    if body.retain:
        raise ApiError(400, "a message to one device cannot be retained")
    if server.broker.get_session(tenant, client_id) is None:
        raise ApiError(404, f"no session {client_id!r} in tenant {tenant!r}")
    now = server.ctx.clock()
    message = build_message(tenant, body, now, publisher="$api")
    matched = server.broker.publish(message, now, only=client_id)
    await committed(server)
    return PublishOut(topic=message.topic, matched_sessions=matched)
