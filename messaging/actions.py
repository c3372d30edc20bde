"""Receiving messages: store first, once, then answer."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from datetime import datetime

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from core import audit, hash_rotation, phones
from core.i18n import default_language
from core.locks import one_local_writer
from core.models import AuditAction
from messaging import router
from messaging.models import InboundKind, InboundMessage, OutboxKind, OutboxMessage, OutboxStatus
from messaging.outbox import KnownRecipient, contact_id_for, queue_sms
from messaging.selectors import sender_facts

logger = logging.getLogger(__name__)

MAX_BODY_CHARS = 1600  # Twilio's limit for one inbound message


@dataclass(frozen=True)
class Received:
    message: InboundMessage
    reply: str
    created: bool


def receive_sms(
    *,
    provider: str,
    provider_sid: str,
    sender: str,
    recipient: str,
    body: str,
    media_urls: list[str] | None = None,
    received_at: datetime | None = None,
    answered: str | None = None,
    report_at_once: bool = False,
) -> Received:
    """Store an inbound SMS exactly once and return the reply to send back.

    A repeat of the same ``provider_sid`` (a provider retry, possibly concurrent) stores
    nothing new and gets the same reply as the first delivery.

    ``answered`` is for a message kept in the spool while the database was down: the
    reply the webhook already gave then. It is recorded as sent; when nothing could be
    answered then (a keyword, whose handler needs the database), the reply is sent
    through the outbox now.

    ``report_at_once``: a report is made in this transaction rather than by a queued
    task (for a caller that is itself a worker; see ``intake.actions``).
    """
    if not provider_sid or len(provider_sid) > 64:
        raise ValueError("A message needs the provider's message id.")
    try:
        with one_local_writer(), transaction.atomic():
            return _store_and_route(
                provider=provider,
                provider_sid=provider_sid,
                sender=sender,
                recipient=recipient,
                body=body[:MAX_BODY_CHARS],
                media_urls=media_urls or [],
                received_at=received_at,
                answered=answered,
                report_at_once=report_at_once,
            )
    except IntegrityError:
        # A retry of a stored message, or a concurrent delivery that committed first:
        # everything this attempt did is rolled back, and the first reply is repeated.
        existing = _existing(provider, provider_sid)
        if existing is None:
            raise
        return existing


def _existing(provider: str, provider_sid: str) -> Received | None:
    message = (
        InboundMessage.objects.filter(provider=provider, provider_sid=provider_sid)
        .select_related("reply")
        .first()
    )
    if message is None:
        return None
    reply = getattr(message, "reply", None)
    return Received(message=message, reply=reply.body if reply else "", created=False)


def _store_and_route(
    *,
    provider: str,
    provider_sid: str,
    sender: str,
    recipient: str,
    body: str,
    media_urls: list[str],
    received_at: datetime | None,
    answered: str | None,
    report_at_once: bool,
) -> Received:
    sender_e164 = phones.normalize_sender(sender)
    hash_rotation.bring_forward(sender_e164)  # a no-op unless RR_HASH_KEY is rotating
    sender_hash = phones.phone_hash(sender_e164)
    facts = sender_facts(sender_hash, provider=provider, provider_sid=provider_sid)
    known_language = facts.last_language
    known_sender = KnownRecipient(sender_hash, facts.contact_id, facts.opted_out)
    message = InboundMessage(
        provider=provider,
        provider_sid=provider_sid,
        sender=sender_e164,
        sender_hash=sender_hash,
        recipient=recipient[:32],
        body=body.strip(),
        media_count=len(media_urls),
        media_urls=json.dumps(media_urls) if media_urls else "",
        language=known_language or default_language(),
        received_at=received_at or timezone.now(),
    )
    message.answered_offline = answered is not None
    message.report_at_once = report_at_once
    message.stored_before = facts.stored_before
    # The handler decides kind, language and reply before the single INSERT; if the
    # unique (provider, provider_sid) then refuses it, the transaction takes the
    # handler's writes back with it.
    reply_text = router.route(message, known_language=known_language)
    if message.kind != InboundKind.KEYWORD and facts.opted_out:
        # A number that texted STOP still reaches the hotline, but gets no reply until it
        # texts START: carriers allow only the opt-out confirmation.
        reply_text = ""
    if message.kind != InboundKind.REPORT:
        message.processed_at = timezone.now()
    message.save(force_insert=True)
    message.inserted()
    in_answer = reply_text
    if answered is not None:
        # What went out is what the webhook answered during the outage. A keyword got
        # no answer then (its handler needs the database): it hears its reply now.
        in_answer = answered
        if reply_text and not answered:
            queue_sms(
                to=sender_e164,
                body=reply_text,
                language=message.language,
                kind=OutboxKind.REPLY,
                # A keyword (STOP, START) may have changed the number's opt-out since.
                known=None if message.kind == InboundKind.KEYWORD else known_sender,
            )
    if in_answer:
        OutboxMessage.objects.create(
            provider=provider,
            kind=OutboxKind.REPLY,
            contact_id=facts.contact_id or contact_id_for(sender_e164, sender_hash),
            recipient_hash=sender_hash,
            body=in_answer,
            language=message.language,
            status=OutboxStatus.SENT,
            sent_at=timezone.now(),
            in_reply_to=message,
        )
    audit.record(
        actor=None,
        action=AuditAction.MESSAGE_RECEIVED,
        target=message,
        kind=message.kind,
        provider=provider,
    )
    return Received(message=message, reply=reply_text, created=True)


def hotline_help_text() -> str:
    """The HELP answer: who we are, what to send, how to stop."""
    parts = [
        _("%(network)s: text what you see and where to report immigration enforcement.")
        % {"network": settings.RR_NETWORK_NAME}
    ]
    if settings.RR_KNOW_YOUR_RIGHTS_URL:
        parts.append(_("Know your rights: %(url)s") % {"url": settings.RR_KNOW_YOUR_RIGHTS_URL})
    parts.append(_("Reply STOP to stop messages."))
    return " ".join(parts)
