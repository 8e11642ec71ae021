"""An authenticator for transport tests: remembers every ClientInfo it sees, allows all."""

from __future__ import annotations

from roost.auth.base import ClientInfo, Decision
from roost.mqtt.packets import Connect


class Recorder:
    """An authenticator that remembers every ClientInfo it sees, and allows all."""

    def __init__(self) -> None:
        self.seen: list[ClientInfo] = []

    def authenticate(self, connect: Connect, client: ClientInfo) -> Decision | None:
        self.seen.append(client)
        return None
