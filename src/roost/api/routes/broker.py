"""Sessions, subscriptions, retained messages and publishing: the broker's live state."""

from __future__ import annotations

import base64
import binascii
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query, Response
from pydantic import BaseModel, Field, model_validator

from roost.api.auth import TenantDep, roost
from roost.api.errors import ERROR_RESPONSES, ApiError, ErrorOut
from roost.core.message import Message
from roost.core.session import Session
from roost.core.topics import is_dollar_topic, is_valid_topic_filter, is_valid_topic_name
from roost.errors import DeviceOffline, RrpcTimeout, TooManyCalls
from roost.mqtt.packets import Properties
from roost.server.server import RoostServer
from roost.store.commit import committed as store_committed

router = APIRouter(tags=["broker"], responses=ERROR_RESPONSES)

ServerDep = Annotated[RoostServer, Depends(roost)]
MAX_LIST = 1000


class SubscriptionOut(BaseModel):
    client_id: str
    topic_filter: str
    qos: int
    no_local: bool
    retain_as_published: bool
    retain_handling: int
    subscription_identifier: int | None


class SessionOut(BaseModel):
    client_id: str
    connected: bool
    expiry_interval: int
    disconnected_at: float | None
    subscriptions: int
    queued: int
    inflight: int
    dropped: int


class SessionDetail(SessionOut):
    subscription_list: list[SubscriptionOut]


def _session_out(s: Session) -> SessionOut:
    stats = s.stats
    return SessionOut(
        client_id=s.client_id,
        connected=s.connected,
        expiry_interval=s.expiry_interval,
        disconnected_at=s.disconnected_at,
        subscriptions=len(s.subscriptions),
        queued=s.message_count(),
        inflight=len(s.inflight),
        dropped=stats.dropped_overflow + stats.dropped_expired + stats.dropped_too_large,
    )


def _subscriptions(s: Session) -> list[SubscriptionOut]:
    return [
        SubscriptionOut(
            client_id=s.client_id,
            topic_filter=sub.topic_filter,
            qos=sub.options.qos,
            no_local=sub.options.no_local,
            retain_as_published=sub.options.retain_as_published,
            retain_handling=sub.options.retain_handling,
            subscription_identifier=sub.subscription_identifier,
        )
        for sub in s.subscriptions.values()
    ]


def _tenant_sessions(server: RoostServer, tenant: str) -> list[Session]:
    return sorted(
        (s for (t, _), s in server.broker.sessions.items() if t == tenant),
        key=lambda s: s.client_id,
    )


def _session(server: RoostServer, tenant: str, client_id: str) -> Session:
    session = server.broker.get_session(tenant, client_id)
    if session is None:
        raise ApiError(404, f"no session {client_id!r} in tenant {tenant!r}")
    return session


# -- sessions -----------------------------------------------------------------------------


@router.get("/tenants/{tenant}/sessions", summary="Sessions, connected or kept for later")
async def list_sessions(
    tenant: TenantDep,
    server: ServerDep,
    connected: bool | None = None,
    limit: Annotated[int, Query(ge=1, le=MAX_LIST)] = 100,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> list[SessionOut]:
    sessions = _tenant_sessions(server, tenant)
    if connected is not None:
        sessions = [s for s in sessions if s.connected == connected]
    return [_session_out(s) for s in sessions[offset : offset + limit]]


@router.get("/tenants/{tenant}/sessions/{client_id}", summary="One session and its subscriptions")
async def get_session(tenant: TenantDep, client_id: str, server: ServerDep) -> SessionDetail:
    session = _session(server, tenant, client_id)
    return SessionDetail(
        **_session_out(session).model_dump(), subscription_list=_subscriptions(session)
    )


@router.delete(
    "/tenants/{tenant}/sessions/{client_id}",
    status_code=204,
    summary="Kick: disconnect the client (DISCONNECT 0x98 in 5.0) and discard its session",
)
async def kick_session(tenant: TenantDep, client_id: str, server: ServerDep) -> Response:
    session = _session(server, tenant, client_id)
    server.kick(session)
    await committed(server)
    return Response(status_code=204)


# -- subscriptions ------------------------------------------------------------------------


@router.get("/tenants/{tenant}/subscriptions", summary="Subscriptions, by client or filter")
async def list_subscriptions(
    tenant: TenantDep,
    server: ServerDep,
    client_id: str | None = None,
    topic_filter: str | None = None,
    limit: Annotated[int, Query(ge=1, le=MAX_LIST)] = 100,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> list[SubscriptionOut]:
    found: list[SubscriptionOut] = []
    for session in _tenant_sessions(server, tenant):
        if client_id is not None and session.client_id != client_id:
            continue
        found.extend(s for s in _subscriptions(session) if topic_filter in (None, s.topic_filter))
    return found[offset : offset + limit]


# -- retained -----------------------------------------------------------------------------


class MessageOut(BaseModel):
    topic: str
    payload: str = Field(description="the payload as UTF-8 text, when it is")
    payload_base64: str
    qos: int
    retain: bool
    content_type: str | None
    payload_format_indicator: int | None
    response_topic: str | None
    correlation_data_base64: str | None
    user_properties: list[tuple[str, str]]
    publisher: str | None
    created_at: float


def _message_out(m: Message) -> MessageOut:
    p = m.properties
    try:
        text = m.payload.decode()
    except UnicodeDecodeError:
        text = ""
    return MessageOut(
        topic=m.topic,
        payload=text,
        payload_base64=base64.b64encode(m.payload).decode(),
        qos=m.qos,
        retain=m.retain,
        content_type=p.content_type,
        payload_format_indicator=p.payload_format_indicator,
        response_topic=p.response_topic,
        correlation_data_base64=None
        if p.correlation_data is None
        else base64.b64encode(p.correlation_data).decode(),
        user_properties=[(k, v) for k, v in p.user_properties],
        publisher=m.publisher,
        created_at=m.created_at,
    )


@router.get("/tenants/{tenant}/retained", summary="Retained messages matching a topic filter")
async def list_retained(
    tenant: TenantDep,
    server: ServerDep,
    topic_filter: str = "#",
    limit: Annotated[int, Query(ge=1, le=MAX_LIST)] = 100,
) -> list[MessageOut]:
    if not is_valid_topic_filter(topic_filter):
        raise ApiError(400, f"invalid topic filter {topic_filter!r}")
    index = server.broker.retained.get(tenant)
    if index is None:
        return []
    matched = sorted(index.match(topic_filter), key=lambda item: item[0])
    return [_message_out(m) for _, m in matched[:limit]]


@router.get("/tenants/{tenant}/retained/{topic:path}", summary="The retained message of a topic")
async def get_retained(tenant: TenantDep, topic: str, server: ServerDep) -> MessageOut:
    index = server.broker.retained.get(tenant)
    message = None if index is None else index.get(topic)
    if message is None:
        raise ApiError(404, f"no retained message on {topic!r}")
    return _message_out(message)


@router.delete(
    "/tenants/{tenant}/retained/{topic:path}",
    status_code=204,
    summary="Clear the retained message of a topic",
)
async def delete_retained(tenant: TenantDep, topic: str, server: ServerDep) -> Response:
    index = server.broker.retained.get(tenant)
    if index is None or index.get(topic) is None:
        raise ApiError(404, f"no retained message on {topic!r}")
    # An empty retained message clears it [MQTT-3.3.1-6]; nobody receives it here.
    server.broker.clear_retained(tenant, topic)
    await committed(server)
    return Response(status_code=204)


# -- publish ------------------------------------------------------------------------------


class PublishIn(BaseModel):
    topic: str = Field(min_length=1, max_length=65535)
    payload: str | None = Field(None, description="UTF-8 text payload")
    payload_base64: str | None = Field(None, description="binary payload, base64")
    qos: Literal[0, 1, 2] = Field(
        2,
        description="the message's QoS: each subscriber gets the lower of this and its "
        "subscription's; the default, 2, delivers at the QoS each device subscribed with",
    )
    retain: bool = False
    content_type: str | None = Field(None, max_length=65535)
    payload_format_indicator: Literal[0, 1] | None = None
    response_topic: str | None = Field(None, min_length=1, max_length=65535)
    correlation_data_base64: str | None = None
    user_properties: list[tuple[str, str]] = Field(default_factory=list, max_length=256)
    message_expiry_interval: int | None = Field(None, ge=0, le=0xFFFFFFFF)

    @model_validator(mode="after")
    def one_payload(self) -> PublishIn:
        if self.payload is not None and self.payload_base64 is not None:
            raise ValueError("give payload or payload_base64, not both")
        return self


class PublishOut(BaseModel):
    topic: str
    matched_sessions: int


def _b64(value: str, name: str) -> bytes:
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ApiError(400, f"{name} is not valid base64") from exc


def build_message(tenant: str, body: PublishIn, now: float, publisher: str) -> Message:
    """The message a backend publishes, checked as a client's PUBLISH would be."""
    if not is_valid_topic_name(body.topic) or is_dollar_topic(body.topic):
        raise ApiError(400, f"invalid topic name {body.topic!r} [MQTT-3.3.2-2]")
    if body.response_topic is not None and not is_valid_topic_name(body.response_topic):
        raise ApiError(400, f"invalid response topic {body.response_topic!r} [MQTT-3.3.2-14]")
    payload = b"" if body.payload is None else body.payload.encode()
    if body.payload_base64 is not None:
        payload = _b64(body.payload_base64, "payload_base64")
    if body.payload_format_indicator == 1:
        try:
            payload.decode()
        except UnicodeDecodeError as exc:
            raise ApiError(400, "payload_format_indicator 1 needs a UTF-8 payload") from exc
    correlation = None
    if body.correlation_data_base64 is not None:
        correlation = _b64(body.correlation_data_base64, "correlation_data_base64")
    expiry = body.message_expiry_interval
    return Message(
        tenant=tenant,
        topic=body.topic,
        payload=payload,
        qos=body.qos,
        retain=body.retain,
        properties=Properties(
            payload_format_indicator=body.payload_format_indicator,
            content_type=body.content_type,
            response_topic=body.response_topic,
            correlation_data=correlation,
            user_properties=tuple(body.user_properties),
        ),
        expires_at=None if expiry is None else now + expiry,
        publisher=publisher,
        created_at=now,
    )


async def committed(server: RoostServer) -> None:
    """Wait until what the broker recorded so far is on disk (durable mode)."""
    await store_committed(server.ctx.committer, server.config.api.max_wait)


@router.post(
    "/tenants/{tenant}/publish",
    summary="Publish a message to a topic as a backend service; answered once it is stored",
)
async def publish(tenant: TenantDep, body: PublishIn, server: ServerDep) -> PublishOut:
    now = server.ctx.clock()
    message = build_message(tenant, body, now, publisher="$api")
    matched = server.broker.publish(message, now)
    await committed(server)
    return PublishOut(topic=message.topic, matched_sessions=matched)


# -- RRPC ---------------------------------------------------------------------------------


class RrpcIn(BaseModel):
    payload: str | None = Field(None, description="UTF-8 text request")
    payload_base64: str | None = Field(None, description="binary request, base64")
    timeout_ms: int = Field(5000, ge=1000, le=8000, description="as Alibaba's RRpc: 1000..8000")
    topic: str | None = Field(
        None, min_length=2, max_length=1024, description="custom topic (`/ext/rrpc/...` form)"
    )


class RrpcOut(BaseModel):
    device_id: str
    payload: str = Field(description="the response as UTF-8 text, when it is")
    payload_base64: str


@router.post(
    "/tenants/{tenant}/devices/{device_id}/rrpc",
    summary="Call a connected device and wait for its answer (Alibaba RRPC)",
    responses={
        409: {"model": ErrorOut, "description": "the device is not connected"},
        429: {"model": ErrorOut, "description": "too many calls outstanding"},
        504: {"model": ErrorOut, "description": "the device did not answer in time"},
    },
)
async def rrpc(tenant: TenantDep, device_id: str, body: RrpcIn, server: ServerDep) -> RrpcOut:
    if body.payload is not None and body.payload_base64 is not None:
        raise ApiError(422, "give payload or payload_base64, not both")
    request = b"" if body.payload is None else body.payload.encode()
    if body.payload_base64 is not None:
        request = _b64(body.payload_base64, "payload_base64")
    try:
        answer = await server.rrpc.call(
            tenant, device_id, request, body.timeout_ms / 1000, topic=body.topic
        )
    except ValueError as exc:
        raise ApiError(400, str(exc)) from exc
    except DeviceOffline as exc:
        raise ApiError(409, str(exc), code="device_offline") from exc
    except TooManyCalls as exc:
        raise ApiError(429, str(exc)) from exc
    except RrpcTimeout as exc:
        raise ApiError(504, str(exc)) from exc
    try:
        text = answer.decode()
    except UnicodeDecodeError:
        text = ""
    return RrpcOut(
        device_id=device_id, payload=text, payload_base64=base64.b64encode(answer).decode()
    )
