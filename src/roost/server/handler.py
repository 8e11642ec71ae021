"""One network connection's glue: transport bytes -> protocol events -> broker, and the
session's outbox -> protocol -> transport."""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from dataclasses import replace
from typing import Protocol

from roost.auth.base import AuthOutcome, ClientInfo, EnhancedAuthenticator
from roost.core.message import DEFAULT_TENANT, Delivery, Message
from roost.core.session import Session
from roost.dialects.base import Admission, ClientTopics, Refusal, topic_mapping
from roost.errors import MQTTError
from roost.mqtt.constants import ProtocolVersion, ReasonCode
from roost.mqtt.packets import NO_PROPERTIES, Connack, Connect, Properties
from roost.protocol import events as ev
from roost.protocol.connection import ServerConnection, State
from roost.server import inbound
from roost.server.connect import (
    ConnectRefused,
    Negotiated,
    check_connect_limits,
    connack_properties,
    match_certificate_identity,
    negotiate,
)
from roost.server.context import ServerContext

log = logging.getLogger(__name__)


# How long a connection the server has closed keeps reading (and discarding) input.
CLOSE_LINGER_SECONDS = 2.0
# Events handled before a session exists (all others need one).
_SESSIONLESS_EVENTS = (
    ev.ConnectReceived,
    ev.AuthReceived,
    ev.DisconnectReceived,
    ev.ProtocolFailed,
)


class _PendingAuth:
    """What arrives while a connection's credentials are checked off the loop."""

    __slots__ = ("events", "input")

    def __init__(self) -> None:
        self.events: list[ev.Event] = []
        self.input = bytearray()


# Packets taken from one connection's input per event-loop turn.
PACKETS_PER_TURN = 256
# Queued deliveries that make a connection flush at once rather than at the end of the turn.
EAGER_FLUSH = 128


class Transport(Protocol):
    """What the handler needs from a transport (asyncio.Transport fits)."""

    def write(self, data: bytes) -> None: ...
    def close(self) -> None: ...
    def abort(self) -> None: ...
    def is_closing(self) -> bool: ...
    def can_write_eof(self) -> bool: ...
    def write_eof(self) -> None: ...


class ConnectionHandler:
    """Owns a ServerConnection, and once connected, the client's Session."""

    __slots__ = (
        "_auth_method",
        "_authenticating",
        "_close_when_released",
        "_closed",
        "_connect",
        "_deferred",
        "_enhanced",
        "_flush_scheduled",
        "_input_paused",
        "_mark",
        "_negotiated",
        "_paused",
        "_success_auth_data",
        "_timer",
        "certificate_identity",
        "client",
        "conn",
        "ctx",
        "identity_must_match",
        "listener",
        "loop",
        "peer",
        "profile",
        "session",
        "topics",
        "transport",
        "will",
        "will_delay",
    )

    def __init__(
        self,
        ctx: ServerContext,
        transport: Transport,
        listener: str,
        peer: str,
        loop: asyncio.AbstractEventLoop,
        *,
        certificate_identity: str | None = None,
        identity_must_match: bool = False,
    ) -> None:
        self.ctx = ctx
        self.transport = transport
        self.listener = listener
        self.peer = peer
        self.loop = loop
        # From the verified TLS client certificate (mutual TLS), see transport/tls.py.
        self.certificate_identity = certificate_identity
        self.identity_must_match = identity_must_match
        m = ctx.config.mqtt
        # The listener's dialect, its effective limits and default tenant.
        profile = self.profile = ctx.profile(listener)
        self.conn = ServerConnection(
            profile.connection_limits, profile.topic_name_valid, loop.time()
        )
        self.session: Session | None = None
        self.client: ClientInfo | None = None
        # The dialect's topic mapping for this client (None: topics are taken as they are).
        self.topics: ClientTopics | None = None
        self.will: Message | None = None
        self.will_delay = 0
        self._connect: Connect | None = None
        self._negotiated: Negotiated | None = None
        self._success_auth_data: bytes | None = None
        self._enhanced: EnhancedAuthenticator | None = None
        self._auth_method: str | None = None
        self._paused = False
        self._flush_scheduled = False
        self._authenticating: _PendingAuth | None = None
        self._input_paused = False
        self._closed = False
        # Output waiting for the store: (change seq it reveals, bytes), in order.
        self._deferred: deque[tuple[int, bytes]] | None = None
        self._close_when_released = False
        self._mark = 0
        self._timer: asyncio.TimerHandle | None = loop.call_later(
            m.connect_timeout, self._on_connect_timeout
        )
        ctx.handlers.add(self)

    # -- transport callbacks -------------------------------------------------------------

    def data_received(self, data: bytes) -> None:
        if self._closed:
            return
        if self._authenticating is not None:
            # Credentials are being checked off the loop: keep the bytes for afterwards.
            self._authenticating.input += data
            return
        self._begin()
        events = self.conn.receive_data(data, self.loop.time(), PACKETS_PER_TURN)
        self._run_events(events)

    def _run_events(self, events: list[ev.Event]) -> None:
        conn = self.conn
        try:
            for i, event in enumerate(events):
                if self.session is None and not isinstance(event, _SESSIONLESS_EVENTS):
                    # Behind a refused CONNECT nothing is processed [MQTT-3.1.4-5].
                    continue
                self._dispatch(event)
                if self._closed:
                    return
                if self._authenticating is not None:
                    self._authenticating.events = events[i + 1 :]
                    self._write_out()
                    return
        except MQTTError as exc:
            conn.fail(exc.reason_code, str(exc))
            self._close_with_will()
            return
        except Exception:
            log.exception("internal error on connection from %s", self.peer)
            conn.fail(ReasonCode.IMPLEMENTATION_SPECIFIC_ERROR, "internal error")
            self._close_with_will()
            return
        self._write_out()
        if conn.state is State.CLOSED and not self._closed:
            self._close(publish_will=False)
        elif conn.more_input:
            # A large read: take the rest in later turns, so that other connections (and
            # this one's subscribers) are served in between; stop reading meanwhile.
            if not self._input_paused:
                self._input_paused = True
                pause = getattr(self.transport, "pause_reading", None)
                if pause is not None:
                    pause()
            self.loop.call_soon(self.data_received, b"")
        elif self._input_paused:
            self._input_paused = False
            resume = getattr(self.transport, "resume_reading", None)
            if resume is not None and not self.transport.is_closing():
                resume()

    def connection_lost(self, exc: Exception | None) -> None:
        """The network connection is gone (error, peer close or our own close)."""
        if not self._closed:
            self._finish(publish_will=True)

    def has_partial_packet(self) -> bool:
        """Bytes of a packet not yet complete are buffered (for the slow-sender armour)."""
        return bool(self.conn._in)

    def pause_writing(self) -> None:
        self._paused = True

    def resume_writing(self) -> None:
        self._paused = False
        self.wake()

    # -- dispatch ------------------------------------------------------------------------

    def _dispatch(self, event: ev.Event) -> None:
        if isinstance(event, ev.PublishReceived):
            inbound.on_publish(self, event)
        elif isinstance(event, ev.PubackReceived):
            inbound.on_puback(self, event.packet.packet_id)
        elif isinstance(event, ev.PubrecReceived):
            inbound.on_pubrec(self, event.packet)
        elif isinstance(event, ev.PubrelReceived):
            inbound.on_pubrel(self, event.packet.packet_id)
        elif isinstance(event, ev.PubcompReceived):
            inbound.on_puback(self, event.packet.packet_id)
        elif isinstance(event, ev.SubscribeReceived):
            inbound.on_subscribe(self, event.packet)
        elif isinstance(event, ev.UnsubscribeReceived):
            inbound.on_unsubscribe(self, event.packet)
        elif isinstance(event, ev.ConnectReceived):
            self._on_connect(event.packet)
        elif isinstance(event, ev.AuthReceived):
            self._on_auth(event.packet.reason_code, event.packet.properties)
        elif isinstance(event, ev.DisconnectReceived):
            self._on_disconnect(event.packet.reason_code, event.packet.properties)
        elif isinstance(event, ev.ProtocolFailed):
            log.info("closing %s (%s): %s", self.client_id_for_log, self.peer, event.reason)
            self._close_with_will()

    @property
    def client_id_for_log(self) -> str:
        return self.client.client_id if self.client else "-"

    # -- CONNECT and AUTH ----------------------------------------------------------------

    def _on_connect(self, connect: Connect) -> None:
        profile = self.profile
        m = profile.mqtt
        ruling = profile.dialect.check_connect(connect)
        if isinstance(ruling, Refusal):
            log.info("refused CONNECT from %s: %s", self.peer, ruling.reason)
            self.conn.refuse(ruling.reason_code)
            return
        connect = ruling
        try:
            negotiated = negotiate(connect, m)
        except ConnectRefused as exc:
            log.info("refused CONNECT from %s: %s", self.peer, exc)
            self.conn.refuse(exc.reason_code)
            return
        refused = check_connect_limits(connect, m.max_user_properties)
        if refused is None and self.identity_must_match:
            negotiated, refused = match_certificate_identity(negotiated, self.certificate_identity)
        if refused is not None:
            log.info("refused CONNECT from %s: 0x%02X", self.peer, refused)
            self.conn.refuse(refused)
            return
        self._connect = replace(connect, client_id=negotiated.client_id)
        self._negotiated = negotiated
        self.client = ClientInfo(
            tenant=profile.tenant,
            client_id=negotiated.client_id,
            username=connect.username,
            protocol_version=connect.protocol_version,
            listener=self.listener,
            peer=self.peer,
            certificate_identity=self.certificate_identity,
        )
        method = connect.properties.authentication_method
        if method is not None:
            self._auth_method = method
            self._enhanced = self.ctx.auth.enhanced_for(method)
            if self._enhanced is None:
                # [MQTT-4.12.0-1]: unsupported Authentication Method -> CONNACK 0x8C.
                self.conn.refuse(ReasonCode.BAD_AUTHENTICATION_METHOD)
                return
            self._auth_step(
                self._enhanced.start(self.client, connect.properties.authentication_data)
            )
            return
        self._authenticate_and_accept()

    def _auth_step(self, step: object) -> None:
        from roost.auth.base import AuthStep

        assert isinstance(step, AuthStep)
        if step.outcome is AuthOutcome.CONTINUE:
            self.conn.send_auth(
                ReasonCode.CONTINUE_AUTHENTICATION,
                Properties(authentication_method=self._auth_method, authentication_data=step.data),
            )
        elif step.outcome is AuthOutcome.SUCCESS:
            if self.conn.state is State.CONNECTED:
                self.conn.send_auth(
                    ReasonCode.SUCCESS,
                    Properties(
                        authentication_method=self._auth_method, authentication_data=step.data
                    ),
                )
            else:
                self._success_auth_data = step.data
                self._authenticate_and_accept()
        else:
            if self.conn.state is State.CONNECTED:
                self.conn.disconnect(step.reason_code, "re-authentication failed")
            else:
                self.conn.refuse(step.reason_code)

    def _on_auth(self, reason_code: int, properties: Properties) -> None:
        if (
            self._enhanced is None
            or self.client is None
            or properties.authentication_method != self._auth_method
        ):
            # AUTH without a method in use, or a different method [MQTT-4.12.0-5]
            self.conn.fail(ReasonCode.PROTOCOL_ERROR, "unexpected AUTH")
            self._close_with_will()
            return
        if reason_code == ReasonCode.RE_AUTHENTICATE and self.conn.state is State.CONNECTED:
            self._auth_step(self._enhanced.start(self.client, properties.authentication_data))
        elif reason_code == ReasonCode.CONTINUE_AUTHENTICATION:
            self._auth_step(self._enhanced.step(self.client, properties.authentication_data))
        else:
            self.conn.fail(ReasonCode.PROTOCOL_ERROR, "bad AUTH reason code")
            self._close_with_will()

    def _authenticate_and_accept(self, admission: Admission | Refusal | None = None) -> None:
        ctx = self.ctx
        connect, client = self._connect, self.client
        assert connect is not None and client is not None
        # Sessions and takeover are keyed on the client id, or on what the dialect names.
        session_client_id = client.client_id
        if self._enhanced is None:
            if admission is None:
                if ctx.registry is not None and connect.password is not None:
                    # A password may need a slow KDF check: do it off the event loop.
                    self._check_credentials_off_loop(connect, client)
                    return
                admission = self.profile.dialect.authenticate(connect, client, ctx.registry)
            if isinstance(admission, Refusal):
                log.info("refused CONNECT from %s: %s", self.peer, admission.reason)
                self.conn.refuse(admission.reason_code)
                return
            client = self.client = replace(
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
                    self.conn.refuse(code)
                    return
                if decision.tenant is not None:
                    client = self.client = replace(client, tenant=decision.tenant)
        mapping = topic_mapping(self.profile.dialect)
        if mapping is not None:
            self.topics = mapping.client_topics(client)
        negotiated = self._negotiated
        assert negotiated is not None
        key = (client.tenant, session_client_id)
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
        )
        self.session = session
        ctx.connections[key] = self
        session.wake = self.wake
        self._set_will(connect, now)
        self.conn.keep_alive = negotiated.keep_alive
        self.conn.session_expiry_interval = negotiated.session_expiry_interval
        props = NO_PROPERTIES
        if connect.protocol_version == ProtocolVersion.V5:
            m = self.profile.mqtt
            response_info = None
            if connect.properties.request_response_information == 1 and m.response_topic_prefix:
                response_info = m.response_topic_prefix + client.client_id
            props = connack_properties(connect, negotiated, m, m.max_packet_size, response_info)
            if self._enhanced is not None:
                props = replace(
                    props,
                    authentication_method=self._auth_method,
                    authentication_data=self._success_auth_data,
                )
        # Session Present is 0 after a clean start [MQTT-3.2.2-2], 1 on resume [MQTT-3.2.2-3].
        self.conn.accept(
            Connack(session_present=present, reason_code=ReasonCode.SUCCESS, properties=props)
        )
        self._connect = self._negotiated = None  # not needed any more
        self._cancel_timer()
        self._arm_keep_alive()
        log.debug(
            "client %s connected from %s (session present %s)", client.client_id, self.peer, present
        )
        if present:
            self._resend_inflight()
        self.wake()

    def _check_credentials_off_loop(self, connect: Connect, client: ClientInfo) -> None:
        """Run the dialect's credential check in a worker thread (scrypt releases the GIL),
        holding this connection's later packets until it is done."""
        pending = self._authenticating = _PendingAuth()
        pause = getattr(self.transport, "pause_reading", None)
        if pause is not None:
            pause()
        future = self.loop.run_in_executor(
            None, self.profile.dialect.authenticate, connect, client, self.ctx.registry
        )

        def done(f: asyncio.Future[Admission | Refusal]) -> None:
            self._authenticating = None
            if self._closed:
                return
            resume = getattr(self.transport, "resume_reading", None)
            if resume is not None and not self.transport.is_closing():
                resume()
            self._begin()
            try:
                admission = f.result()
            except Exception:
                log.exception("credential check failed for %s", self.peer)
                admission = Refusal(
                    reason_code=ReasonCode.UNSPECIFIED_ERROR, reason="credential check failed"
                )
            self._authenticate_and_accept(admission)
            self._run_events(pending.events)
            if pending.input and not self._closed:
                self.data_received(bytes(pending.input))

        future.add_done_callback(done)

    def _set_will(self, connect: Connect, now: float) -> None:
        will = connect.will
        if will is None:
            return
        expiry = will.properties.message_expiry_interval
        self.will = Message(
            tenant=self.session.tenant if self.session else DEFAULT_TENANT,
            topic=will.topic,
            payload=will.payload,
            qos=will.qos,
            retain=will.retain,
            properties=replace(
                will.properties, will_delay_interval=None, message_expiry_interval=None
            ),
            expires_at=None if expiry is None else now + expiry,
            publisher=connect.client_id,
            created_at=now,
        )
        self.will_delay = will.properties.will_delay_interval or 0

    def _resend_inflight(self) -> None:
        """Resend unacknowledged PUBLISH (DUP=1) and PUBREL on resume [MQTT-4.4.0-1]."""
        session = self.session
        assert session is not None
        for delivery in session.resend_list():
            if delivery.released:
                self.conn.send_pubrel(delivery.packet_id)
            else:
                self.send_delivery(delivery)

    # -- DISCONNECT ------------------------------------------------------------------------

    def _on_disconnect(self, reason_code: int, properties: Properties) -> None:
        if properties.session_expiry_interval is not None and self.session is not None:
            expiry = min(
                properties.session_expiry_interval, self.profile.mqtt.max_session_expiry_interval
            )
            self.session.expiry_interval = expiry
        # A normal DISCONNECT discards the will [MQTT-3.14.4-3]; 0x04 keeps it.
        publish_will = reason_code == ReasonCode.DISCONNECT_WITH_WILL_MESSAGE
        self._close(publish_will=publish_will)

    # -- delivery ------------------------------------------------------------------------

    def wake(self) -> None:
        """Something was queued for this connection: flush once, later in this loop turn;
        at once if a burst (one large read of a publisher) has already queued a lot."""
        if self._closed:
            return
        session = self.session
        if session is not None and len(session.queue) >= EAGER_FLUSH and not self._paused:
            self._flush()
        elif not self._flush_scheduled:
            self._flush_scheduled = True
            self.loop.call_soon(self._flush)

    def _flush(self) -> None:
        self._flush_scheduled = False
        if self._closed or self._paused or self.session is None:
            return
        if self.conn.state is not State.CONNECTED:
            return
        self._begin()
        window = min(self.conn.client_receive_maximum, self.ctx.config.mqtt.max_inflight)
        now = self.ctx.clock()
        for delivery in self.session.take_ready(window, now):
            self.send_delivery(delivery, now)
        self._write_out()

    def send_delivery(self, delivery: Delivery, now: float | None = None) -> None:
        message = delivery.message
        props = message.properties
        topic = message.topic
        if self.topics is not None:
            topic = self.topics.outbound_topic(topic)
        if self.conn.version == ProtocolVersion.V5:
            expiry = message.remaining_expiry(self.ctx.clock() if now is None else now)
            if expiry is not None or delivery.subscription_identifiers:
                props = replace(
                    props,
                    message_expiry_interval=expiry,
                    subscription_identifiers=delivery.subscription_identifiers,
                )
        sent = self.conn.send_publish(
            topic,
            message.payload,
            delivery.qos,
            delivery.retain,
            delivery.dup,
            delivery.packet_id if delivery.qos else None,
            props,
        )
        stats = self.ctx.broker.stats
        if sent:
            stats.messages_sent += 1
            stats.publish_bytes_sent += len(message.payload)
        else:
            # Too large for this client: dropped for it alone [MQTT-3.1.2-24].
            stats.messages_dropped += 1
            if delivery.qos and self.session is not None:
                self.session.drop_inflight(delivery.packet_id)

    def _begin(self) -> None:
        """Start of a unit of work: changes recorded from now on are revealed by its output."""
        committer = self.ctx.committer
        if committer is not None:
            self._mark = committer.barrier_seq

    def _write_out(self) -> None:
        """Write what the protocol produced; if it reveals changes not yet committed (an
        acknowledgement of a stored message, a PUBLISH with its packet id journaled, ...),
        hold it, and everything after it, until the commit."""
        data = self.conn.data_to_send()
        if not data:
            return
        committer = self.ctx.committer
        if committer is not None:
            needed = committer.write_seq if committer.barrier_seq > self._mark else 0
            deferred = self._deferred
            if deferred:
                needed = max(needed, deferred[-1][0])
            if needed > committer.committed_seq:
                if deferred is None:
                    deferred = self._deferred = deque()
                deferred.append((needed, data))
                committer.after_commit(needed, self._release)
                return
        if not self.transport.is_closing():
            self.transport.write(data)

    def _release(self) -> None:
        """A commit finished: write what no longer waits, in order."""
        committer = self.ctx.committer
        assert committer is not None
        deferred = self._deferred
        if deferred is None:
            return
        while deferred and deferred[0][0] <= committer.committed_seq:
            _, data = deferred.popleft()
            if not self.transport.is_closing():
                self.transport.write(data)
        if not deferred and self._close_when_released:
            self._close_when_released = False
            self._close_transport()

    # -- timers ----------------------------------------------------------------------------

    def _cancel_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _on_connect_timeout(self) -> None:
        self._timer = None
        if self.conn.state in (State.AWAIT_CONNECT, State.CONNECTING):
            log.info("no CONNECT from %s in time; closing", self.peer)
            self._close(publish_will=False)

    def _arm_keep_alive(self) -> None:
        deadline = self.conn.keep_alive_deadline()
        if deadline is not None:
            self._timer = self.loop.call_at(deadline, self._on_keep_alive)

    def _on_keep_alive(self) -> None:
        self._timer = None
        deadline = self.conn.keep_alive_deadline()
        if deadline is None or self._closed:
            return
        if self.loop.time() >= deadline:
            # Nothing within 1.5 x Keep Alive: close as if the network failed [MQTT-3.1.2-24].
            log.info("keep alive timeout for %s", self.client_id_for_log)
            self.conn.disconnect(ReasonCode.KEEP_ALIVE_TIMEOUT, "keep alive timeout")
            self._write_out()
            self._close(publish_will=True)
        else:
            self._timer = self.loop.call_at(deadline, self._on_keep_alive)

    # -- closing ---------------------------------------------------------------------------

    def take_over(self) -> None:
        """Another connection took this client's session [MQTT-3.1.4-3]: DISCONNECT 0x8E."""
        self.conn.disconnect(ReasonCode.SESSION_TAKEN_OVER, "session taken over")
        self._write_out()
        self._close(publish_will=True)

    def revoke(self) -> None:
        """The registry revoked this client's device or credential: DISCONNECT 0x98
        Administrative action, no will, and the session ends (its subscriptions stop)."""
        session = self.session
        self.conn.disconnect(ReasonCode.ADMINISTRATIVE_ACTION, "credentials revoked")
        self._write_out()
        self._close(publish_will=False)
        if session is not None and self.ctx.broker.get_session(*session.key) is session:
            self.ctx.broker.end_session(session, self.ctx.clock())

    def shutdown(self) -> None:
        """The server is stopping: DISCONNECT 0x8B to v5 clients, no will."""
        self.conn.disconnect(ReasonCode.SERVER_SHUTTING_DOWN, "server shutting down")
        self._write_out()
        self._close(publish_will=False)

    def _close_with_will(self) -> None:
        self._write_out()
        self._close(publish_will=True)

    def _close(self, publish_will: bool) -> None:
        """Close after what is queued has been written (output waiting for a commit
        included). The read side stays open for a short linger, discarding input, so a
        client still sending sees our DISCONNECT instead of a reset."""
        if self._closed:
            return
        self._finish(publish_will)
        if self._deferred:
            self._close_when_released = True
            self.loop.call_later(CLOSE_LINGER_SECONDS, self.transport.abort)
            return
        self._close_transport()

    def _close_transport(self) -> None:
        transport = self.transport
        if transport.is_closing():
            return
        if not transport.can_write_eof():
            transport.close()
            return
        try:
            transport.write_eof()
        except OSError:  # the peer is already gone
            transport.abort()
            return
        self.loop.call_later(CLOSE_LINGER_SECONDS, transport.abort)

    def _finish(self, publish_will: bool) -> None:
        self._closed = True
        self._cancel_timer()
        self.ctx.handlers.discard(self)
        session = self.session
        if session is None:
            return
        if self.ctx.connections.get(session.key) is self:
            del self.ctx.connections[session.key]
        will = self.will if publish_will else None
        self.ctx.broker.connection_closed(session, will, self.will_delay, self.ctx.clock())
        self.session = None
