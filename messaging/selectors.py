from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from django.db.models import QuerySet

from messaging.models import InboundMessage, OptOut, OutboxMessage


def last_language_of(sender_hash: str) -> str | None:
    """The language of this sender's latest message, if any."""
    language = (
        InboundMessage.objects.filter(sender_hash=sender_hash)
        .exclude(language="")
        .order_by("-received_at")
        .values_list("language", flat=True)
        .first()
    )
    return language or None


def is_opted_out(phone_hash: str) -> bool:
    return OptOut.objects.filter(phone_hash=phone_hash).exists()


@dataclass(frozen=True)
class ConversationLine:
    inbound: bool
    body: str
    at: datetime
    language: str


def conversation_with(phone_hash: str, *, limit: int = 50) -> list[ConversationLine]:
    """Messages from and to one number, oldest first (the test phone)."""
    inbound: QuerySet[InboundMessage] = InboundMessage.objects.filter(
        sender_hash=phone_hash
    ).order_by("-received_at", "-pk")[:limit]
    outbound: QuerySet[OutboxMessage] = OutboxMessage.objects.filter(
        recipient_hash=phone_hash
    ).order_by("-created_at", "-pk")[:limit]
    lines = [ConversationLine(True, m.body, m.received_at, m.language) for m in inbound]
    lines += [ConversationLine(False, m.body, m.created_at, m.language) for m in outbound]
    # A reply is created just after its message; inbound first on a tie.
    lines.sort(key=lambda line: (line.at, not line.inbound))
    return lines[-limit:]
