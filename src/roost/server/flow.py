"""A connection's flow control: why its input is paused (the INPUT_* reasons), and its
output held back until the store has committed the changes it reveals (durable mode) or
worker 0 has answered the stream capture an acknowledgement stands for (OutputGate)."""

from __future__ import annotations

import logging
from collections import deque
from typing import TYPE_CHECKING

from roost.core.session import Session
from roost.mqtt.constants import ProtocolVersion, ReasonCode
from roost.protocol.connection import ServerConnection
from roost.streams.base import PendingCapture

if TYPE_CHECKING:
    from roost.server.handler import ConnectionHandler

log = logging.getLogger(__name__)

# Why a connection's input is paused, a bitmask (ConnectionHandler.pause_input): the
# transport is read again only once no reason holds.
INPUT_TURNS = 1  # a large read, taken over several loop turns (handler._run_events)
INPUT_CHECK = 2  # its CONNECT waits for something off the loop's turn (admission)
INPUT_LINK = 4  # a worker link it publishes into is over its high-water mark (cluster/bus)


def acknowledge(
    conn: ServerConnection, session: Session, packet_id: int, qos: int, code: int
) -> None:
    """PUBACK (QoS 1) or PUBREC (QoS 2) of an inbound PUBLISH with `code`. A QoS 2 message
    accepted (code < 0x80) awaits its PUBREL, one refused does not (a PUBLISH resent with
    its packet id is then processed again [MQTT-4.3.3-10])."""
    if qos == 1:
        conn.send_puback(packet_id, code)
        return
    if code < 0x80:
        session.add_awaiting_rel(packet_id)
    else:
        session.remove_awaiting_rel(packet_id)
    conn.send_pubrec(packet_id, code)


class HeldAck:
    """A device's PUBACK / PUBREC waiting, in its connection's OutputGate, for the answer
    to its message's capture by another process (`pending`, worker processes > 0): `data`
    is the acknowledgement; `session` the publisher's, kept after its connection closes."""

    __slots__ = ("data", "packet_id", "pending", "qos", "session")

    def __init__(self, pending: PendingCapture, session: Session, packet_id: int, qos: int) -> None:
        self.pending = pending
        self.session = session
        self.packet_id = packet_id
        self.qos = qos
        self.data = b""


class OutputGate(deque[tuple[int, bytes | HeldAck]]):
    """What waits, in order: (the change seq it reveals, bytes), or (seq, HeldAck) for an
    acknowledgement waiting for worker 0. Made when a connection first holds output, and
    kept: empty, it is false, and the handler writes past it."""

    __slots__ = ("close_when_released", "handler")

    def __init__(self, handler: ConnectionHandler) -> None:
        super().__init__()
        self.handler = handler
        # The connection is closed: close the transport once the rest is written.
        self.close_when_released = False

    def _wait_seq(self) -> int:
        """The change seq output made now reveals: the last one recorded if changes were
        recorded in the handler's unit of work (since `_begin`), never less than what
        already waits before it. Not committed yet: release() runs once it is."""
        h = self.handler
        committer = h.ctx.committer
        if committer is None:
            return 0
        needed = committer.write_seq if committer.barrier_seq > h._mark else 0
        if self:
            needed = max(needed, self[-1][0])
        if needed > committer.committed_seq:
            committer.after_commit(needed, self.release)
        return needed

    def write(self, data: bytes) -> None:
        """Write `data` now, unless it reveals changes not committed yet or something
        before it waits: then it waits (with everything after it)."""
        h = self.handler
        committer = h.ctx.committer
        needed = self._wait_seq()
        if self or (committer is not None and needed > committer.committed_seq):
            self.append((needed, data))
        elif not h.transport.is_closing():
            h.transport.write(data)

    def hold_ack(self, held: HeldAck) -> None:
        """An acknowledgement (its bytes in `held.data`) that waits for worker 0's answer,
        and for the commit of the changes it reveals."""
        self.append((self._wait_seq(), held))

    def release(self) -> None:
        """A commit finished (or a capture was answered): write what no longer waits, in
        order."""
        h = self.handler
        committer = h.ctx.committer
        committed = 0 if committer is None else committer.committed_seq
        transport = h.transport
        while self and self[0][0] <= committed:
            data = self[0][1]
            if not isinstance(data, bytes):
                ok = data.pending.ok
                if ok is None:
                    return  # worker 0 has not answered yet
                if not ok and not self._capture_failed(data):
                    return
                data = data.data
            self.popleft()
            if not transport.is_closing():
                transport.write(data)
        if not self and self.close_when_released:
            self.close_when_released = False
            h._close_transport()

    def _capture_failed(self, held: HeldAck) -> bool:
        """Worker 0 did not confirm the capture (link lost, no answer in time): never a
        false success. v5: the acknowledgement carries 0x80 Unspecified error; 3.x: the
        connection closes without it, so that the device sends the message again. Either
        way a QoS 2 packet id no longer awaits its PUBREL: the PUBLISH sent again is
        captured, not answered as already received [MQTT-4.3.3-10]. False when the rest of
        the output is dropped."""
        h = self.handler
        if held.qos == 2:
            held.session.remove_awaiting_rel(held.packet_id)
        if h._closed or h.session is None:
            self.clear()
            if self.close_when_released:
                self.close_when_released = False
                h._close_transport()
            return False
        conn = h.conn
        if conn.version != ProtocolVersion.V5:
            self.clear()
            log.warning(
                "closing %s: stream capture of packet %d not confirmed by worker 0",
                h.client_id_for_log,
                held.packet_id,
            )
            conn.fail(ReasonCode.UNSPECIFIED_ERROR, "stream capture not confirmed")
            h._close(publish_will=True)
            return False
        acknowledge(conn, held.session, held.packet_id, held.qos, ReasonCode.UNSPECIFIED_ERROR)
        held.data = conn.data_to_send()
        return True
