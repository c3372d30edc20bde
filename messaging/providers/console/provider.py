"""The console provider: nothing leaves the machine; the test phone shows the outbox."""

from __future__ import annotations

import uuid
from datetime import datetime

from messaging.providers import Sent


class ConsoleProvider:
    name = "console"

    def send(self, *, to: str, body: str, valid_until: datetime | None = None) -> Sent:
        return Sent(provider_sid=f"CON{uuid.uuid4().hex}")

    def find_sent(self, *, to: str, body: str, since: datetime) -> Sent | None:
        # Nothing leaves the machine: a send cut short never reached anyone.
        return None

    def delete_message(self, *, sid: str) -> None:
        # The only copy is our own outbox and inbox.
        return None
