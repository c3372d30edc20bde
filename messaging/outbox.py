"""The outbox: every outbound SMS is a row before it is sent.

- ``queue_sms`` writes the row (in the caller's transaction) and wakes the sender after
  the commit, so a rollback never sends anything.
- ``send_due`` claims due rows with a lease, hands them to the provider at the configured
  rate, and moves each row forward only: sent, or failed, or queued again with a delay.
- ``release_expired_leases`` (periodic) puts back rows whose sender died mid-send. A
  crash after the provider accepted a message but before its row was updated sends that
  one message twice: the outbox narrows that window to one message per worker, it cannot
  close it (the Messages API has no idempotency key).
- ``record_status`` applies provider status callbacks, forward only.
"""

from __future__ import annotations

import logging
import time
import uuid
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone

from core import phones
from core.locks import exclusive
from messaging.models import (
    FINAL_STATUSES,
    OUTBOX_STATUS_RANK,
    OptOut,
    OutboxKind,
    OutboxMessage,
    OutboxStatus,
)
from messaging.providers import SendError, SmsProvider, active_provider

logger = logging.getLogger(__name__)

LEASE = timedelta(seconds=60)
MAX_ATTEMPTS = 8
BATCH = 50


def retry_delay(attempts: int) -> timedelta:
    """15 s, 30 s, 1 min, … doubling."""
    delay: timedelta = timedelta(seconds=15) * 2 ** max(0, attempts - 1)
    return delay


def queue_sms(
    *,
    to: str,
    body: str,
    language: str,
    kind: OutboxKind,
    valid_until: datetime | None = None,
) -> OutboxMessage:
    """Queue one SMS to ``to`` (E.164). A number that opted out gets a row marked
    skipped, so the record shows why nothing arrived."""
    from messaging.selectors import is_opted_out
    from messaging.tasks import send_queued_messages

    recipient_hash = phones.phone_hash(to)
    message = OutboxMessage.objects.create(
        provider=settings.RR_SMS_PROVIDER,
        kind=kind,
        recipient=to,
        recipient_hash=recipient_hash,
        body=body,
        language=language,
        valid_until=valid_until,
        status=OutboxStatus.SKIPPED if is_opted_out(recipient_hash) else OutboxStatus.QUEUED,
    )
    if message.status == OutboxStatus.QUEUED:
        transaction.on_commit(send_queued_messages.enqueue)
    return message


def _claim(now: datetime, limit: int, token: str) -> list[OutboxMessage]:
    with transaction.atomic():
        due = list(
            OutboxMessage.objects.select_for_update(skip_locked=True)
            .filter(status=OutboxStatus.QUEUED, next_attempt_at__lte=now)
            .order_by("next_attempt_at", "pk")[:limit]
        )
        if due:
            OutboxMessage.objects.filter(pk__in=[m.pk for m in due]).update(
                status=OutboxStatus.SENDING,
                lease_until=now + LEASE,
                lease_token=token,
                attempts=F("attempts") + 1,
            )
    for message in due:
        message.attempts += 1
    return due


def _still_ours(message: OutboxMessage, token: str) -> bool:
    """Renew this row's lease just before sending it; False if the lease ran out and
    another sender took the row, which then sends it instead."""
    return bool(
        OutboxMessage.objects.filter(
            pk=message.pk, status=OutboxStatus.SENDING, lease_token=token
        ).update(lease_until=timezone.now() + LEASE)
    )


def _finish(message: OutboxMessage, token: str, **fields: object) -> None:
    OutboxMessage.objects.filter(
        pk=message.pk, status=OutboxStatus.SENDING, lease_token=token
    ).update(lease_until=None, lease_token="", **fields)


def _deliver(message: OutboxMessage, provider: SmsProvider, token: str) -> None:
    try:
        sent = provider.send(to=message.recipient, body=message.body)
    except SendError as exc:
        if exc.opted_out:
            OptOut.objects.get_or_create(phone_hash=message.recipient_hash)
        final = not exc.retry or message.attempts >= MAX_ATTEMPTS
        _finish(
            message,
            token,
            status=(
                OutboxStatus.SKIPPED
                if exc.opted_out
                else OutboxStatus.FAILED
                if final
                else OutboxStatus.QUEUED
            ),
            error_code=exc.code[:16],
            next_attempt_at=timezone.now() + retry_delay(message.attempts),
        )
        logger.warning("SMS %s not sent (%s).", message.uuid, exc.code or "error")
        return
    _finish(
        message,
        token,
        status=OutboxStatus.SENT,
        provider_sid=sent.provider_sid,
        sent_at=timezone.now(),
    )


SENDER_LOCK = "outbox-sender"


def send_due(*, limit: int | None = None, budget_seconds: float = 20.0) -> int | None:
    """Send due messages at the configured rate for at most ``budget_seconds``.

    One sender runs at a time (across processes), so the provisioned rate holds for the
    whole deployment. Returns how many messages were handled, or None when another
    sender is already draining the outbox."""
    with exclusive(SENDER_LOCK, ttl_seconds=budget_seconds + LEASE.total_seconds()) as ours:
        if not ours:
            return None
        return _drain(limit=limit, budget_seconds=budget_seconds)


def _drain(*, limit: int | None, budget_seconds: float) -> int:
    provider = active_provider()
    rate = max(settings.RR_SMS_RATE_PER_SECOND, 0.01)
    interval = 1.0 / rate
    # A batch must be sent well within its lease.
    batch_size = max(1, min(BATCH, int(rate * LEASE.total_seconds() / 2)))
    token = uuid.uuid4().hex
    deadline = time.monotonic() + budget_seconds
    handled = 0
    next_slot = time.monotonic()
    while time.monotonic() < deadline and (limit is None or handled < limit):
        size = batch_size if limit is None else min(batch_size, limit - handled)
        batch = _claim(timezone.now(), size, token)
        if not batch:
            break
        for message in batch:
            if message.valid_until is not None and message.valid_until < timezone.now():
                _finish(message, token, status=OutboxStatus.EXPIRED)
                handled += 1
                continue
            # Pace sends: never burst past what the sender is provisioned for.
            pause = next_slot - time.monotonic()
            if pause > 0:
                time.sleep(pause)
            next_slot = max(next_slot, time.monotonic()) + interval
            if not _still_ours(message, token):
                continue
            _deliver(message, provider, token)
            handled += 1
    return handled


def expire_queued(messages: list[OutboxMessage]) -> int:
    """Withdraw messages that have not been sent yet (an offer that is no longer
    needed). Returns how many were still waiting and are now expired."""
    return OutboxMessage.objects.filter(
        pk__in=[m.pk for m in messages], status=OutboxStatus.QUEUED
    ).update(status=OutboxStatus.EXPIRED)


def release_expired_leases(*, now: datetime | None = None) -> int:
    """Queue again messages whose sender died while sending them."""
    moment = now or timezone.now()
    return OutboxMessage.objects.filter(status=OutboxStatus.SENDING, lease_until__lt=moment).update(
        status=OutboxStatus.QUEUED, lease_until=None, next_attempt_at=moment
    )


def sweep() -> None:
    """Periodic: release dead leases and wake the sender if anything is due (a lost
    wake-up, a retry whose time has come)."""
    from messaging.tasks import send_queued_messages

    release_expired_leases()
    if due_count():
        send_queued_messages.enqueue()


def due_count() -> int:
    return OutboxMessage.objects.filter(
        status=OutboxStatus.QUEUED, next_attempt_at__lte=timezone.now()
    ).count()


def record_status(*, provider_sid: str, status: str, error_code: str = "") -> bool:
    """Apply a delivery status from the provider. Unknown statuses and steps backwards
    are ignored, so repeated and out-of-order callbacks are harmless."""
    mapping = {
        "queued": OutboxStatus.SENT,
        "accepted": OutboxStatus.SENT,
        "sending": OutboxStatus.SENT,
        "sent": OutboxStatus.SENT,
        "delivered": OutboxStatus.DELIVERED,
        "undelivered": OutboxStatus.UNDELIVERED,
        "failed": OutboxStatus.FAILED,
    }
    new = mapping.get(status.lower())
    if new is None:
        return False
    with transaction.atomic():
        message = (
            OutboxMessage.objects.select_for_update().filter(provider_sid=provider_sid).first()
        )
        if message is None:
            return False
        if error_code == "21610":
            OptOut.objects.get_or_create(phone_hash=message.recipient_hash)
        current = OutboxStatus(message.status)
        if current in FINAL_STATUSES or OUTBOX_STATUS_RANK[new] <= OUTBOX_STATUS_RANK[current]:
            return False
        OutboxMessage.objects.filter(pk=message.pk).update(
            status=new, error_code=error_code[:16] or message.error_code
        )
    return True


def pending_count() -> int:
    return OutboxMessage.objects.filter(
        Q(status=OutboxStatus.QUEUED) | Q(status=OutboxStatus.SENDING)
    ).count()
