"""Accept first, store behind: the SMS webhook's cheap way in (RR_SMS_ACCEPT_FIRST).

Storing and routing a text (``receive_sms``) takes seven statements and several
milliseconds of Python; under a surge that, not the network, limits how many texts a web
process answers. With RR_SMS_ACCEPT_FIRST the webhook checks the signature, writes the
text as it came in one INSERT (``accept``) and answers with nothing; the worker stores
and routes the accepted texts through the normal path, oldest first, one at a time,
making each one's report in the same transaction (no task to wait for), and the reply
travels through the outbox, where it waits behind the carrier's rate as a reply in the
webhook's answer would wait at the provider.

Each accepted row is deleted in the transaction that stores its message, so a worker
killed at any point leaves the text either accepted or stored. The provider's retry of
an accepted text meets the unique provider id and is answered the same way; a retry of
one already stored is accepted again and stored as nothing new (``receive_sms``).

One worker stores at a time (``core.locks.exclusive``): a sender's STOP and START, or a
report and its follow-up, keep their order. A text the normal path refuses three times
is held, so it cannot stop the queue, and logged.
"""

from __future__ import annotations

import contextlib
import json
import logging
import threading
from dataclasses import dataclass
from datetime import datetime

from django.db import IntegrityError, InterfaceError, OperationalError, transaction

from core.locks import exclusive, one_local_writer
from core.loops import run_until_stopped
from messaging.actions import MAX_BODY_CHARS, receive_sms
from messaging.models import AcceptedMessage

logger = logging.getLogger(__name__)

# Texts stored per pass; the lock is taken again between passes.
BATCH = 100
# A text the normal path refused this many times is held.
MAX_ATTEMPTS = 3
# How often an idle worker looks for accepted texts: the delay a reply can add.
POLL_SECONDS = 0.1
LOCK_NAME = "messaging.accepted"


@dataclass
class StoreResult:
    stored: int = 0
    duplicates: int = 0
    failed: int = 0
    held: int = 0

    @property
    def handled(self) -> int:
        return self.stored + self.duplicates + self.failed


def accept(
    *,
    provider: str,
    provider_sid: str,
    sender: str,
    recipient: str,
    body: str,
    media_urls: list[str],
    answered: str = "",
    received_at: datetime | None = None,
) -> bool:
    """Keep a text for the worker in one INSERT; False when a text with this provider
    id is already waiting (the provider's retry). Database errors are the caller's: an
    outage sends the text to the spool, anything else answers the provider with an
    error it retries."""
    if not provider_sid or len(provider_sid) > 64:
        raise ValueError("A message needs the provider's message id.")
    row = AcceptedMessage(
        provider=provider,
        provider_sid=provider_sid,
        sender=sender,
        recipient=recipient[:32],
        body=body[:MAX_BODY_CHARS],
        media_urls=json.dumps(media_urls) if media_urls else "",
        answered=answered,
    )
    if received_at is not None:
        row.received_at = received_at
    # In autocommit (the webhook, the spool's replay) the INSERT is its own transaction:
    # one round trip, no BEGIN and COMMIT around it. Inside a caller's transaction, a
    # savepoint, so that a refused INSERT does not break it.
    in_transaction = transaction.get_connection().in_atomic_block
    try:
        with transaction.atomic() if in_transaction else contextlib.nullcontext():
            row.save(force_insert=True)
    except IntegrityError:
        if AcceptedMessage.objects.filter(provider=provider, provider_sid=provider_sid).exists():
            return False
        raise
    return True


def store_accepted(limit: int = BATCH) -> StoreResult | None:
    """Store and route up to ``limit`` accepted texts, oldest first. None when another
    process is storing them (it will reach these too)."""
    if not AcceptedMessage.objects.filter(held=False).exists():
        return StoreResult()
    with exclusive(LOCK_NAME, ttl_seconds=60) as ours:
        if not ours:
            return None
        result = StoreResult()
        rows = list(AcceptedMessage.objects.filter(held=False).order_by("id")[:limit])
        for row in rows:
            _store_one(row, result)
        return result


def _store_one(row: AcceptedMessage, result: StoreResult) -> None:
    try:
        with one_local_writer(), transaction.atomic():
            received = receive_sms(
                provider=row.provider,
                provider_sid=row.provider_sid,
                sender=row.sender,
                recipient=row.recipient,
                body=row.body,
                media_urls=json.loads(row.media_urls) if row.media_urls else [],
                received_at=row.received_at,
                answered=row.answered,
                report_at_once=True,
            )
            AcceptedMessage.objects.filter(pk=row.pk).delete()
    except (OperationalError, InterfaceError):
        # The database down or restarting is not the text's fault: tried again, unchanged.
        raise
    except Exception:
        attempts = row.attempts + 1
        held = attempts >= MAX_ATTEMPTS
        AcceptedMessage.objects.filter(pk=row.pk).update(attempts=attempts, held=held)
        # The id only: the text and the number are personal data.
        logger.exception(
            "Accepted message %s could not be stored (attempt %d%s).",
            row.pk,
            attempts,
            "; held" if held else "",
        )
        result.failed += 1
        result.held += int(held)
        return
    if received.created:
        result.stored += 1
    else:
        result.duplicates += 1


def release_held() -> int:
    """Put held texts back in the queue (after fixing what refused them)."""
    return AcceptedMessage.objects.filter(held=True).update(held=False, attempts=0)


def store_until_stopped(stop: threading.Event, *, poll_seconds: float = POLL_SECONDS) -> None:
    """The worker's loop: store accepted texts as they come, look again every
    ``poll_seconds`` when there are none, back off while the database is down."""

    def step() -> bool:
        result = store_accepted()
        return result is not None and result.handled > 0

    run_until_stopped(stop, step, poll_seconds=poll_seconds, what="storing accepted messages")


def start_thread(stop: threading.Event) -> threading.Thread:
    thread = threading.Thread(
        target=store_until_stopped, args=(stop,), name="accepted-sms", daemon=True
    )
    thread.start()
    return thread
