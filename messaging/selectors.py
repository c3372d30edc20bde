from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db import connection
from django.db.models import QuerySet
from django.utils import timezone

from messaging.models import (
    Contact,
    InboundKind,
    InboundMessage,
    OptOut,
    OutboxMessage,
    attach_shared_texts,
)


@dataclass(frozen=True)
class SenderFacts:
    last_language: str | None
    opted_out: bool
    stored_before: bool
    contact_id: int | None  # the number's outbox contact, when it has one


def sender_facts(sender_hash: str, *, provider: str, provider_sid: str) -> SenderFacts:
    """What the SMS webhook asks about every text, in one statement instead of four
    (on PostgreSQL each is a round trip): the language of the sender's latest message,
    whether the number opted out, whether this provider id is already stored, and the
    number's outbox contact (which the reply row points to)."""
    quote = connection.ops.quote_name
    inbound = quote(InboundMessage._meta.db_table)
    opt_outs = quote(OptOut._meta.db_table)
    contacts = quote(Contact._meta.db_table)
    contact_pk = quote(Contact._meta.pk.column)
    # Table names from the models' metadata; every value is a parameter.
    sql = (
        f"SELECT (SELECT language FROM {inbound} WHERE sender_hash = %s AND language <> ''"  # noqa: S608  # nosec B608
        " ORDER BY received_at DESC LIMIT 1),"
        f" EXISTS (SELECT 1 FROM {opt_outs} WHERE phone_hash = %s),"  # nosec B608
        f" EXISTS (SELECT 1 FROM {inbound} WHERE provider = %s AND provider_sid = %s),"  # nosec B608
        f" (SELECT {contact_pk} FROM {contacts} WHERE phone_hash = %s)"  # nosec B608
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [sender_hash, sender_hash, provider, provider_sid, sender_hash])
        language, opted_out, stored_before, contact = cursor.fetchone()
    return SenderFacts(
        language or None,
        bool(opted_out),
        bool(stored_before),
        None if contact is None else int(contact),
    )


def is_opted_out(phone_hash: str) -> bool:
    return OptOut.objects.filter(phone_hash=phone_hash).exists()


@dataclass(frozen=True)
class ConversationLine:
    inbound: bool
    body: str
    at: datetime
    language: str


def conversation_with(phone_hash: str, *, provider: str, limit: int = 50) -> list[ConversationLine]:
    """Messages from and to one number through one provider, oldest first.

    The test phone asks for the console provider only, so typing a real reporter's
    number there shows nothing that came through Twilio."""
    inbound: QuerySet[InboundMessage] = InboundMessage.objects.filter(
        sender_hash=phone_hash, provider=provider
    ).order_by("-received_at", "-pk")[:limit]
    outbound: QuerySet[OutboxMessage] = OutboxMessage.objects.filter(
        contact__phone_hash=phone_hash, provider=provider
    ).order_by("-created_at", "-pk")[:limit]
    lines = [ConversationLine(True, m.body, m.received_at, m.language) for m in inbound]
    sent = list(outbound)
    attach_shared_texts(sent)
    lines += [ConversationLine(False, m.text, m.created_at, m.language) for m in sent]
    # A reply is created just after its message; inbound first on a tie.
    lines.sort(key=lambda line: (line.at, not line.inbound))
    return lines[-limit:]


def stuck_message_count(*, older_than: timedelta = timedelta(minutes=5)) -> int:
    """Texts stored more than ``older_than`` ago that have not become reports yet."""
    return InboundMessage.objects.filter(
        processed_at__isnull=True,
        kind=InboundKind.REPORT,
        received_at__lt=timezone.now() - older_than,
    ).count()
