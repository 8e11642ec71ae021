"""CONNECT and AUTH: the dialect's rules, negotiation, authentication (enhanced, and
credential checks off the event loop), session takeover and resume, the will, CONNACK.

Functions over the connection's handler, as `inbound` is for the packets that follow."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import replace
from typing import TYPE_CHECKING

from roost.auth.base import AuthOutcome, AuthStep, ClientInfo
from roost.core.message import DEFAULT_TENANT, Message
from roost.core.session import SessionKey
from roost.dialects.base import Admission, Refusal
from roost.mqtt.constants import ProtocolVersion, ReasonCode
from roost.mqtt.packets import NO_PROPERTIES, Connack, Connect, Properties
from roost.protocol import events as ev
from roost.protocol.connection import State
from roost.server.connect import (
    ConnectRefused,
    Negotiated,
    check_connect_limits,
    connack_properties,
    match_certificate_identity,
    negotiate,
)
from roost.server.flow import INPUT_CHECK
from roost.server.inbound import canonical_response_topic

if TYPE_CHECKING:
    from roost.server.handler import ConnectionHandler

log = logging.getLogger(__name__)


class PendingAuth:
    """What arrives while a connection's credentials are checked off the loop."""

    __slots__ = ("events", "input")

    def __init__(self) -> None:
        self.events: list[ev.Event] = []
        self.input = bytearray()


class Admitting:
    """A connection's CONNECT while it is being admitted; dropped with CONNACK."""

    __slots__ = ("connect", "held", "negotiated", "success_auth_data")

    def __init__(self, connect: Connect, negotiated: Negotiated) -> None:
        self.connect = connect
        self.negotiated = negotiated
        # Enhanced authentication's last Authentication Data, for the CONNACK.
        self.success_auth_data: bytes | None = None
        # Packets and bytes that arrive while something is awaited off the loop's turn.
        self.held: PendingAuth | None = None


def on_connect(h: ConnectionHandler, connect: Connect) -> None:
    profile = h.profile
    m = profile.mqtt
    ruling = profile.dialect.check_connect(connect)
    if isinstance(ruling, Refusal):
        log.info("refused CONNECT from %s: %s", h.peer, ruling.reason)
        h.conn.refuse(ruling.reason_code)
        return
    connect = ruling
    try:
        negotiated = negotiate(connect, m)
    except ConnectRefused as exc:
        log.info("refused CONNECT from %s: %s", h.peer, exc)
        h.conn.refuse(exc.reason_code)
        return
    refused = check_connect_limits(connect, m.max_user_properties)
    if refused is None and h.identity_must_match:
        negotiated, refused = match_certificate_identity(negotiated, h.certificate_identity)
    if refused is not None:
        log.info("refused CONNECT from %s: 0x%02X", h.peer, refused)
        h.conn.refuse(refused)
        return
    if connect.client_id != negotiated.client_id:
        connect = replace(connect, client_id=negotiated.client_id)
    h._admitting = Admitting(connect, negotiated)
    h.client = ClientInfo(
        tenant=profile.tenant,
        client_id=negotiated.client_id,
        username=connect.username,
        protocol_version=connect.protocol_version,
        listener=h.listener,
        peer=h.peer,
        certificate_identity=h.certificate_identity,
    )
    method = connect.properties.authentication_method
    if method is not None:
        h._auth_method = method
        h._enhanced = h.ctx.auth.enhanced_for(method)
        if h._enhanced is None:
            # [MQTT-4.12.0-1]: unsupported Authentication Method -> CONNACK 0x8C.
            h.conn.refuse(ReasonCode.BAD_AUTHENTICATION_METHOD)
            return
        auth_step(h, h._enhanced.start(h.client, connect.properties.authentication_data))
        return
    authenticate_and_accept(h)


def auth_step(h: ConnectionHandler, step: object) -> None:

    assert isinstance(step, AuthStep)
    if step.outcome is AuthOutcome.CONTINUE:
        h.conn.send_auth(
            ReasonCode.CONTINUE_AUTHENTICATION,
            Properties(authentication_method=h._auth_method, authentication_data=step.data),
        )
    elif step.outcome is AuthOutcome.SUCCESS:
        if h.conn.state is State.CONNECTED:
            h.conn.send_auth(
                ReasonCode.SUCCESS,
                Properties(authentication_method=h._auth_method, authentication_data=step.data),
            )
        else:
            assert h._admitting is not None
            h._admitting.success_auth_data = step.data
            authenticate_and_accept(h)
    else:
        if h.conn.state is State.CONNECTED:
            h.conn.disconnect(step.reason_code, "re-authentication failed")
        else:
            h.conn.refuse(step.reason_code)


def on_auth(h: ConnectionHandler, reason_code: int, properties: Properties) -> None:
    if (
        h._enhanced is None
        or h.client is None
        or properties.authentication_method != h._auth_method
    ):
        # AUTH without a method in use, or a different method [MQTT-4.12.0-5]
        h.conn.fail(ReasonCode.PROTOCOL_ERROR, "unexpected AUTH")
        h._close_with_will()
        return
    if reason_code == ReasonCode.RE_AUTHENTICATE and h.conn.state is State.CONNECTED:
        auth_step(h, h._enhanced.start(h.client, properties.authentication_data))
    elif reason_code == ReasonCode.CONTINUE_AUTHENTICATION:
        auth_step(h, h._enhanced.step(h.client, properties.authentication_data))
    else:
        h.conn.fail(ReasonCode.PROTOCOL_ERROR, "bad AUTH reason code")
        h._close_with_will()


def authenticate_and_accept(
    h: ConnectionHandler, admission: Admission | Refusal | None = None
) -> None:
    ctx = h.ctx
    admitting, client = h._admitting, h.client
    assert admitting is not None and client is not None
    connect = admitting.connect
    # Sessions and takeover are keyed on the client id, or on what the dialect names.
    session_client_id = client.client_id
    if h._enhanced is None:
        if admission is None:
            if ctx.registry is not None and connect.password is not None:
                # A password may need a slow KDF check: do it off the event loop.
                check_credentials_off_loop(h, connect, client)
                return
            admission = h.profile.dialect.authenticate(connect, client, ctx.registry)
        if isinstance(admission, Refusal):
            log.info("refused CONNECT from %s: %s", h.peer, admission.reason)
            h.conn.refuse(admission.reason_code)
            return
        if (
            client.tenant != admission.tenant
            or client.username != admission.username
            or client.device_id != admission.device_id
        ):
            client = h.client = replace(
                client,
                tenant=admission.tenant,
                username=admission.username,
                device_id=admission.device_id,
            )
        if admission.session_client_id is not None:
            session_client_id = admission.session_client_id
        if not admission.authenticated:
            decision = ctx.auth.authenticate(connect, client)
            if not decision.allowed:
                code = decision.reason_code or ReasonCode.NOT_AUTHORIZED
                h.conn.refuse(code)
                return
            if decision.tenant is not None:
                client = h.client = replace(client, tenant=decision.tenant)
    mapping = h.profile.topic_mapping
    if mapping is not None:
        h.topics = mapping.client_topics(client)
    key = (client.tenant, session_client_id)
    if ctx.broker.quotas.enabled and not within_quota(h, key):
        return
    if ctx.cluster is not None and ctx.cluster.links:
        claim_then_accept(h, key, connect.clean_start)
        return
    accept_session(h, key)


def _hold_input(h: ConnectionHandler) -> PendingAuth:
    """Hold the connection's later packets while its CONNECT waits for something off the
    event loop's turn (a credential check, other workers' answers)."""
    assert h._admitting is not None
    pending = h._admitting.held = PendingAuth()
    h.pause_input(INPUT_CHECK)
    return pending


def _resume_input(h: ConnectionHandler) -> bool:
    """The wait is over: read again. False if the connection closed meanwhile."""
    assert h._admitting is not None
    h._admitting.held = None
    if h._closed:
        return False
    h.resume_input(INPUT_CHECK)
    h._begin()
    return True


def claim_then_accept(h: ConnectionHandler, key: SessionKey, clean_start: bool) -> None:
    """Worker processes: the others give up this client id first (takeover, hand-over of
    a resumed session; docs/workers.md), the connection's later packets held meanwhile."""
    cluster = h.ctx.cluster
    assert cluster is not None
    pending = _hold_input(h)
    task = asyncio.ensure_future(cluster.claim(key, clean_start))

    def done(f: asyncio.Future[None]) -> None:
        if not _resume_input(h):
            return
        if f.exception() is not None:
            log.error("claim of %s/%s failed: %r", key[0], key[1], f.exception())
        accept_session(h, key)
        h._run_events(pending.events)
        if pending.input and not h._closed:
            h.data_received(bytes(pending.input))

    task.add_done_callback(done)


def accept_session(h: ConnectionHandler, key: SessionKey) -> None:
    """Take over or resume the session, set the will, send CONNACK."""
    ctx = h.ctx
    admitting, client = h._admitting, h.client
    assert admitting is not None and client is not None
    connect, negotiated = admitting.connect, admitting.negotiated
    session_client_id = key[1]
    old = ctx.connections.get(key)
    if old is not None:
        # Session takeover: the existing connection is closed [MQTT-3.1.4-3] with 0x8E.
        old.take_over()
    now = ctx.clock()
    session, present = ctx.broker.open_session(
        client.tenant,
        session_client_id,
        connect.clean_start,
        negotiated.session_expiry_interval,
        now,
        client.device_id,
        h.profile.dialect.limits.subscription_qos,
    )
    h.session = session
    # Keyed by the session's own key tuple (equal to `key`): one tuple per connection.
    ctx.connections[session.key] = h
    session.waker = h
    set_will(h, connect, now)
    h.conn.keep_alive = negotiated.keep_alive
    h.conn.session_expiry_interval = negotiated.session_expiry_interval
    props = NO_PROPERTIES
    if connect.protocol_version == ProtocolVersion.V5:
        m = h.profile.mqtt
        response_info = None
        if connect.properties.request_response_information == 1 and m.response_topic_prefix:
            response_info = m.response_topic_prefix + client.client_id
        props = connack_properties(connect, negotiated, m, m.max_packet_size, response_info)
        if h._enhanced is not None:
            props = replace(
                props,
                authentication_method=h._auth_method,
                authentication_data=admitting.success_auth_data,
            )
    # Session Present is 0 after a clean start [MQTT-3.2.2-2], 1 on resume [MQTT-3.2.2-3].
    # (The 3.x CONNACK's bytes are made once, by the connection.)
    h.conn.accept(
        Connack(session_present=present, reason_code=ReasonCode.SUCCESS, properties=props)
    )
    h._admitting = None  # not needed any more
    h._cancel_timer()
    h._arm_keep_alive()
    if log.isEnabledFor(logging.DEBUG):
        log.debug(
            "client %s connected from %s (session present %s)", client.client_id, h.peer, present
        )
    if present:
        resend_inflight(h)
        h.wake()
    # A new session has nothing queued yet: no flush to schedule.


def within_quota(h: ConnectionHandler, key: SessionKey) -> bool:
    """The tenant's connection and session quotas (a takeover or a resumed session takes
    nothing new); over one: CONNACK 0x97 Quota exceeded (3.x: 0x03 Server unavailable)."""
    ctx = h.ctx
    usage = ctx.broker.quotas.of(key[0])
    admitted = (key in ctx.connections or usage.may_connect()) and (
        ctx.broker.get_session(*key) is not None or usage.may_open_session()
    )
    if not admitted:
        usage.refused_connections += 1
        log.info("refused CONNECT from %s: tenant %s over its quota", h.peer, key[0])
        h.conn.refuse(ReasonCode.QUOTA_EXCEEDED)
        return False
    if usage.limits.limited:
        h.quota = usage
    return True


def check_credentials_off_loop(h: ConnectionHandler, connect: Connect, client: ClientInfo) -> None:
    """Run the dialect's credential check in a worker thread (scrypt releases the GIL),
    holding this connection's later packets until it is done."""
    pending = _hold_input(h)
    future = h.loop.run_in_executor(
        None, h.profile.dialect.authenticate, connect, client, h.ctx.registry
    )

    def done(f: asyncio.Future[Admission | Refusal]) -> None:
        if not _resume_input(h):
            return
        try:
            admission = f.result()
        except Exception:
            log.exception("credential check failed for %s", h.peer)
            admission = Refusal(
                reason_code=ReasonCode.UNSPECIFIED_ERROR, reason="credential check failed"
            )
        authenticate_and_accept(h, admission)
        held = h._admitting.held if h._admitting is not None else None
        if held is not None:  # claiming the client id from other workers
            held.events[:0] = pending.events
            held.input[:0] = pending.input
            return
        h._run_events(pending.events)
        if pending.input and not h._closed:
            h.data_received(bytes(pending.input))

    future.add_done_callback(done)


def set_will(h: ConnectionHandler, connect: Connect, now: float) -> None:
    will = connect.will
    if will is None:
        return
    expiry = will.properties.message_expiry_interval
    props = replace(will.properties, will_delay_interval=None, message_expiry_interval=None)
    if h.topics is not None:
        props = canonical_response_topic(h.topics, props)
    h.will = Message(
        tenant=h.session.tenant if h.session else DEFAULT_TENANT,
        topic=will.topic,
        payload=will.payload,
        qos=will.qos,
        retain=will.retain,
        properties=props,
        expires_at=None if expiry is None else now + expiry,
        publisher=connect.client_id,
        created_at=now,
    )
    h.will_delay = will.properties.will_delay_interval or 0


def resend_inflight(h: ConnectionHandler) -> None:
    """Resend unacknowledged PUBLISH (DUP=1) and PUBREL on resume [MQTT-4.4.0-1]."""
    session = h.session
    assert session is not None
    for delivery in session.resend_list():
        if delivery.released:
            h.conn.send_pubrel(delivery.packet_id)
        else:
            h.send_delivery(delivery)
