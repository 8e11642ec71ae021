"""One network connection's glue: transport bytes -> protocol events -> broker, and the
session's outbox -> protocol -> transport."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import replace
from typing import Protocol

from roost.auth.base import ClientInfo, EnhancedAuthenticator
from roost.core.message import Delivery, Message
from roost.core.quotas import TenantUsage
from roost.core.session import Session
from roost.dialects.base import ClientTopics
from roost.errors import MQTTError
from roost.mqtt.constants import ProtocolVersion, ReasonCode
from roost.mqtt.packets import Properties
from roost.protocol import events as ev
from roost.protocol.connection import ServerConnection, State
from roost.server import admission, inbound
from roost.server.admission import Admitting
from roost.server.context import ServerContext
from roost.server.flow import INPUT_TURNS, HeldAck, OutputGate, acknowledge

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
        "_admitting",
        "_auth_method",
        "_closed",
        "_enhanced",
        "_flush_scheduled",
        "_gate",
        "_input_paused",
        "_mark",
        "_paused",
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
        "quota",
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
        # The tenant's quota record once connected, if the tenant has limits (else None:
        # nothing is checked).
        self.quota: TenantUsage | None = None
        # From CONNECT to CONNACK (admission.Admitting), then None.
        self._admitting: Admitting | None = None
        # Enhanced authentication's method, kept for re-authentication.
        self._enhanced: EnhancedAuthenticator | None = None
        self._auth_method: str | None = None
        self._paused = False
        self._flush_scheduled = False
        # The reasons its input is paused (INPUT_*), 0 when it is read.
        self._input_paused = 0
        self._closed = False
        # Output waiting for the store or for worker 0 (made when first needed).
        self._gate: OutputGate | None = None
        # The committer's barrier_seq when the unit of work began (see _begin).
        self._mark = 0
        # The slot of this connection's deadline in the timer wheel (CONNECT, keep alive).
        self._timer: int | None = ctx.timers.add(self, loop.time() + m.connect_timeout)
        ctx.handlers[self] = None

    # -- transport callbacks -------------------------------------------------------------

    def data_received(self, data: bytes) -> None:
        if self._closed:
            return
        admitting = self._admitting
        if admitting is not None and admitting.held is not None:
            # Credentials are being checked off the loop: keep the bytes for afterwards.
            admitting.held.input += data
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
                admitting = self._admitting
                if admitting is not None and admitting.held is not None:
                    admitting.held.events = events[i + 1 :]
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
            self.pause_input(INPUT_TURNS)
            self.loop.call_soon(self.data_received, b"")
        elif self._input_paused:
            self.resume_input(INPUT_TURNS)

    def pause_input(self, reason: int) -> None:
        """Stop reading the connection for `reason` (flow.INPUT_*), whatever other
        reasons hold already."""
        paused = self._input_paused
        self._input_paused = paused | reason
        if not paused:
            pause = getattr(self.transport, "pause_reading", None)
            if pause is not None and not self.transport.is_closing():
                pause()

    def resume_input(self, reason: int) -> None:
        """`reason` no longer holds: read again if no other one does."""
        paused = self._input_paused
        if not paused & reason:
            return
        paused = self._input_paused = paused & ~reason
        if paused or self._closed:
            return
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
            admission.on_connect(self, event.packet)
        elif isinstance(event, ev.AuthReceived):
            admission.on_auth(self, event.packet.reason_code, event.packet.properties)
        elif isinstance(event, ev.DisconnectReceived):
            self._on_disconnect(event.packet.reason_code, event.packet.properties)
        elif isinstance(event, ev.ProtocolFailed):
            log.info("closing %s (%s): %s", self.client_id_for_log, self.peer, event.reason)
            self._close_with_will()

    @property
    def client_id_for_log(self) -> str:
        return self.client.client_id if self.client else "-"

    # -- CONNECT and AUTH ----------------------------------------------------------------

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
            if props.response_topic is not None:
                # In the client's own form, like the topic (see inbound._message).
                props = replace(
                    props, response_topic=self.topics.outbound_topic(props.response_topic)
                )
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
        hold it, and everything after it, until the commit. Output behind an
        acknowledgement waiting for a stream capture on worker 0 waits too (server/flow.py)."""
        data = self.conn.data_to_send()
        if not data:
            return
        gate = self._gate
        if not gate:  # nothing waits
            committer = self.ctx.committer
            if committer is None or committer.barrier_seq <= self._mark:
                if not self.transport.is_closing():
                    self.transport.write(data)
                return  # it reveals no change
            if gate is None:
                gate = self._gate = OutputGate(self)
        gate.write(data)

    def hold_for_capture(self, held: HeldAck, code: int) -> None:
        """Worker processes: the acknowledgement (PUBACK / PUBREC with `code`) of the
        message `held` stands for goes out once worker 0 has committed its stream append,
        and once this worker's changes it reveals are committed; what precedes it goes
        first, what follows it waits (roost/cluster/captures.py)."""
        self._write_out()
        conn = self.conn
        acknowledge(conn, held.session, held.packet_id, held.qos, code)
        held.data = conn.data_to_send()
        held.pending.settled = self.capture_settled
        gate = self._gate
        if gate is None:
            gate = self._gate = OutputGate(self)
        gate.hold_ack(held)

    def capture_settled(self) -> None:
        """Worker 0 answered (or could not) a capture whose acknowledgement waits here."""
        gate = self._gate
        if gate:
            gate.release()

    # -- timers ----------------------------------------------------------------------------

    def _cancel_timer(self) -> None:
        if self._timer is not None:
            self.ctx.timers.remove(self, self._timer)
            self._timer = None

    def expire(self) -> None:
        """The timer wheel: this connection's deadline has come (server/timers.py). Before
        the session is open it is the connect timeout, afterwards the keep alive."""
        self._timer = None
        if self._closed:
            return
        if self.session is None:
            self._on_connect_timeout()
        else:
            self._on_keep_alive()

    def _on_connect_timeout(self) -> None:
        if self.conn.state in (State.AWAIT_CONNECT, State.CONNECTING):
            log.info("no CONNECT from %s in time; closing", self.peer)
            self._close(publish_will=False)

    def _arm_keep_alive(self) -> None:
        deadline = self.conn.keep_alive_deadline()
        if deadline is not None:
            self._timer = self.ctx.timers.add(self, deadline)

    def _on_keep_alive(self) -> None:
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
            self._timer = self.ctx.timers.add(self, deadline)

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
            self.ctx.broker.end_session(session, self.ctx.clock(), publish_will=False)

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
        gate = self._gate
        if gate:
            gate.close_when_released = True
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
        self.ctx.handlers.pop(self, None)
        session = self.session
        if session is None:
            return
        if self.ctx.connections.get(session.key) is self:
            del self.ctx.connections[session.key]
        will = self.will if publish_will else None
        self.ctx.broker.connection_closed(session, will, self.will_delay, self.ctx.clock())
        self.session = None
