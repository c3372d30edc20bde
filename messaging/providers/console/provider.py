"""The console provider: nothing leaves the machine; the test phone shows the outbox."""

from __future__ import annotations

import uuid

from messaging.providers import Sent


class ConsoleProvider:
    name = "console"

    def send(self, *, to: str, body: str) -> Sent:
        return Sent(provider_sid=f"CON{uuid.uuid4().hex}")
