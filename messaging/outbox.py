"""The outbox: every outbound SMS is a row before it is sent.

- ``queue_sms`` writes the row (in the caller's transaction) and wakes the sender after
  the commit, so a rollback never sends anything.
- ``send_due`` claims due rows with a lease, hands them to the provider at the configured
  rate, and moves each row forward only: sent, or failed, or queued again with a delay.
- ``release_expired_leases`` (periodic) settles rows whose sender died mid-send: the
  Messages API has no idempotency key, so it asks the provider whether the message was
  accepted (marked sent) or not (queued again). Nothing is sent twice on a crash.
- ``record_status`` applies provider status callbacks, forward only. A callback for a
  SID no row has yet (it outran the sender's recording, or the sender died and the
  sweep has not settled the row) is kept as an ``EarlyStatus`` and applied when the SID
  is written; ``settle_early_statuses`` (periodic) closes the race between the two and
  purges what never matched after a day.
"""

from __future__ import annotations

import logging
import math
import os
import threading
import time
import uuid
from collections import deque
from collections.abc import Collection
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Exists, F, OuterRef, Q
from django.utils import timezone

from core import hash_rotation, phones
from core.locks import exclusive
from core.loops import run_until_stopped
from messaging.models import (
    FINAL_STATUSES,
    OUTBOX_STATUS_RANK,
    BatchHold,
    Contact,
    EarlyStatus,
    OptOut,
    OutboxKind,
    OutboxMessage,
    OutboxStatus,
    attach_shared_texts,
)
from messaging.providers import ProviderUnavailable, SendError, Sent, active_provider
from messaging.signals import opted_out

logger = logging.getLogger(__name__)

# The default of RR_SMS_LEASE_SECONDS: how long a sender owns the messages it claimed.
LEASE = timedelta(seconds=60)


def lease() -> timedelta:
    return timedelta(seconds=settings.RR_SMS_LEASE_SECONDS)


MAX_ATTEMPTS = 8
BATCH = 500
# At most this much lag is made up by sending sooner than the rate allows.
CATCH_UP = 0.01
# A provider with a per-second limit refuses the request that makes one too many in any
# second, as it receives them. Fixed slots alone allow that: a send started a little
# late and one a second later on time, or requests that reach the provider after
# different delays (the first of each sending thread opens a connection and loads the
# client). So a send also waits until the send floor(rate) sends before it is a window
# (floor(rate) slots: one second at a whole rate) old, counting that send from when it
# started plus this margin, or plus however much slower its round trip was than the
# quickest so far if that is more (a send held up on its way is received late).
WINDOW_MARGIN = 0.02


def retry_delay(attempts: int) -> timedelta:
    """15 s, 30 s, 1 min, … doubling."""
    delay: timedelta = timedelta(seconds=15) * 2 ** max(0, attempts - 1)
    return delay


@dataclass(frozen=True)
class KnownRecipient:
    """What a caller of ``queue_sms`` already read about the number (hash brought
    forward): its keyed hash, its contact if it has one, and whether it opted out."""

    phone_hash: str
    contact_id: int | None
    opted_out: bool


def queue_sms(
    *,
    to: str,
    body: str,
    language: str,
    kind: OutboxKind,
    valid_until: datetime | None = None,
    known: KnownRecipient | None = None,
) -> OutboxMessage:
    """Queue one SMS to ``to`` (E.164). A number that opted out gets a row marked
    skipped, so the record shows why nothing arrived. ``known``: what the caller read
    about the number already (the SMS path's ``sender_facts``), which saves reading it
    again."""
    from messaging.selectors import is_opted_out

    if known is None:
        contact = contact_for(to)
        contact_id, recipient_hash = contact.pk, contact.phone_hash
        opted_out = is_opted_out(recipient_hash)
    else:
        recipient_hash, opted_out = known.phone_hash, known.opted_out
        contact_id = known.contact_id or contact_id_for(to, recipient_hash)
    message = OutboxMessage.objects.create(
        provider=settings.RR_SMS_PROVIDER,
        kind=kind,
        contact_id=contact_id,
        recipient_hash=recipient_hash,
        body=body,
        language=language,
        valid_until=valid_until,
        status=OutboxStatus.SKIPPED if opted_out else OutboxStatus.QUEUED,
    )
    if message.status == OutboxStatus.QUEUED:
        wake_sender()
    return message


def wake_sender() -> None:
    """Make sure a sender looks at the outbox once the caller's writes commit. A process
    with a sender thread (``run_worker``) needs nothing: its thread looks every
    SENDER_POLL_SECONDS, and a queued task would only return at once, at the cost of
    four statements (a surge's reply each). Anywhere else the sender task is queued."""
    from messaging.tasks import send_queued_messages

    if sender_thread_running():
        return
    transaction.on_commit(send_queued_messages.enqueue)


# The columns a ``queue_selected`` SELECT gives, one row a recipient.
SELECTED_COLUMNS = (
    "contact_id",
    "recipient_hash",
    "language",
    "priority",
    "dedupe_key",
)


def queue_selected(
    select: str,
    params: list[Any],
    *,
    kind: OutboxKind,
    batch: str,
    status: OutboxStatus = OutboxStatus.QUEUED,
    valid_until: datetime | None = None,
) -> int:
    """Write one outbox row for each row of ``select`` (a SELECT naming the columns of
    ``SELECTED_COLUMNS``; the texts are the batch's ``OutboxBody`` rows), skipping those
    whose dedupe key is already there (a fan-out run again). Returns how many rows were
    new. The caller wakes the sender, and makes writers of one batch take turns (a
    second writer's rows, unseen until the first commits, would fail the unique dedupe
    key: the INSERT errors and is run again, it never stores a row twice).

    One INSERT … SELECT: the rows never leave the database, so an alert's 100,000 take
    the time the database needs to write them and their indexes (bench B5). Building
    them in Python and copying them in took twice as long. Existing keys are skipped by
    an anti-join, not ON CONFLICT, whose speculative insertion costs a second write per
    row. The columns the rows share are parameters; each row's uuid is a version 7
    prefix made here and the row's place in dedupe-key order, which is also the order
    they are written in, so both unique indexes grow at one end."""
    meta = OutboxMessage._meta
    now = timezone.now()
    fixed: dict[str, object] = {
        "provider": settings.RR_SMS_PROVIDER,
        "kind": kind,
        "body": None,
        "batch": batch,
        "status": status,
        "created_at": now,
        "next_attempt_at": now,
        "lease_until": None,
        "lease_token": "",
        "attempts": 0,
        "valid_until": valid_until,
        "sent_at": None,
        "provider_sid": None,
        "provider_deleted_at": None,
        "error_code": "",
        "in_reply_to_id": None,
    }
    fields = [f for f in meta.concrete_fields if f is not meta.pk]
    unexpected = {f.attname for f in fields} - set(fixed) - set(SELECTED_COLUMNS) - {"uuid"}
    if unexpected:
        raise RuntimeError(f"queue_selected does not know the outbox columns {sorted(unexpected)}.")
    quote = connection.ops.quote_name
    place = "row_number() OVER (ORDER BY q.dedupe_key)"
    if connection.vendor == "postgresql":
        uuid_sql = f"CAST(%s || lpad(to_hex({place}), 8, '0') AS uuid)"
    else:
        uuid_sql = f"%s || printf('%%08x', {place})"  # Django keeps uuids as 32 hex digits
    values, all_params = [], []
    for f in fields:
        if f.attname in fixed:
            values.append("%s")
            all_params.append(f.get_db_prep_save(fixed[f.attname], connection))
        elif f.attname == "uuid":
            values.append(uuid_sql)
            all_params.append(_uuid_prefix())
        else:
            values.append(f"q.{quote(f.column)}")
    names = ", ".join(quote(f.column) for f in fields)
    dedupe = quote(meta.get_field("dedupe_key").column)
    # Names come from the model's metadata and the caller's SELECT; values are parameters.
    # nosemgrep: django-raw-sql-formatted - names and the caller's parameterised SELECT
    sql = (
        f"INSERT INTO {quote(meta.db_table)} ({names}) "  # noqa: S608  # nosec B608
        f"SELECT {', '.join(values)} FROM ({select}) AS q "
        f"WHERE NOT EXISTS (SELECT 1 FROM {quote(meta.db_table)} AS o"
        f" WHERE o.{dedupe} = q.dedupe_key) ORDER BY q.dedupe_key"
    )
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(sql, all_params + params)
        return max(0, int(cursor.rowcount))


def _uuid_prefix() -> str:
    """The first 24 of a version 7 uuid's 32 hex digits: milliseconds since the epoch,
    the version, 42 random bits and the variant. The last 8 digits are each row's place
    in its fan-out, so the rows of one fan-out differ there and two fan-outs in the same
    millisecond differ in the random bits (a clash would fail the INSERT, never skip a
    row: only the dedupe key's conflicts are skipped)."""
    millis = time.time_ns() // 1_000_000
    value = ((millis & (2**48 - 1)) << 80) | (int.from_bytes(os.urandom(16), "big") & (2**80 - 1))
    value = (value & ~(0xF << 76)) | (0x7 << 76)  # version 7
    value = (value & ~(0x3 << 62)) | (0x2 << 62)  # RFC 4122 variant
    return f"{value:032x}"[:24]


def contact_for(phone: str) -> Contact:
    """The contact for an E.164 number, created on first use."""
    hash_rotation.bring_forward(phone)  # a no-op unless RR_HASH_KEY is rotating
    phone_hash = phones.phone_hash(phone)
    existing = Contact.objects.filter(phone_hash=phone_hash).first()
    if existing is not None:
        return existing
    return Contact.objects.get(pk=contact_id_for(phone, phone_hash))


def contact_id_for(phone: str, phone_hash: str) -> int:
    """The id of the contact for an E.164 number whose keyed hash is ``phone_hash``,
    created if there is none. The caller has brought the hash forward already.

    One statement when the number is new (the SMS webhook's case in a surge): the
    INSERT gives way to a concurrent creation of the same number instead of failing, so
    it needs no savepoint (two more round trips on PostgreSQL), and only then is the
    existing row read."""
    created = _insert_contact_unless_known(Contact(phone=phone, phone_hash=phone_hash))
    if created is not None:
        return created
    return int(Contact.objects.values_list("pk", flat=True).get(phone_hash=phone_hash))


def _insert_contact_unless_known(contact: Contact) -> int | None:
    """INSERT … ON CONFLICT (phone_hash) DO NOTHING RETURNING id (PostgreSQL, and
    SQLite since 3.35): the new row's id, or None when the number has a contact."""
    quote = connection.ops.quote_name
    fields = [f for f in Contact._meta.concrete_fields if not f.primary_key]
    # Each field prepares its own value as a save would (the number is encrypted here).
    values = [f.get_db_prep_save(f.pre_save(contact, add=True), connection) for f in fields]
    hash_column = quote(Contact._meta.get_field("phone_hash").column)
    # Names from the model's metadata; every value is a parameter.
    sql = (
        f"INSERT INTO {quote(Contact._meta.db_table)} "  # noqa: S608  # nosec B608
        f"({', '.join(quote(f.column) for f in fields)}) "
        f"VALUES ({', '.join(['%s'] * len(fields))}) "
        f"ON CONFLICT ({hash_column}) DO NOTHING RETURNING {quote(Contact._meta.pk.column)}"
    )
    with connection.cursor() as cursor:
        # nosemgrep: django-raw-sql-formatted - names from the model's metadata
        cursor.execute(sql, values)
        row = cursor.fetchone()
    return None if row is None else int(row[0])


def _claim(now: datetime, limit: int, token: str) -> list[OutboxMessage]:
    with transaction.atomic():
        due = list(
            OutboxMessage.objects.select_for_update(skip_locked=True, of=("self",))
            .filter(status=OutboxStatus.QUEUED, next_attempt_at__lte=now)
            .select_related("contact")
            .order_by("priority", "next_attempt_at", "pk")[:limit]
        )
        if due:
            OutboxMessage.objects.filter(pk__in=[m.pk for m in due]).update(
                status=OutboxStatus.SENDING,
                lease_until=now + lease(),
                lease_token=token,
                attempts=F("attempts") + 1,
            )
    for message in due:
        message.attempts += 1
    attach_shared_texts(due)
    return due


def _still_ours(message: OutboxMessage, token: str) -> bool:
    """Renew this row's lease just before sending it; False if the lease ran out (the
    sweep may be settling the row at this moment, and then it is sent once from the
    queue) or another sender took the row."""
    now = timezone.now()
    return bool(
        OutboxMessage.objects.filter(
            pk=message.pk, status=OutboxStatus.SENDING, lease_token=token, lease_until__gt=now
        ).update(lease_until=now + lease())
    )


def _finish(message: OutboxMessage, token: str, **fields: object) -> bool:
    """Settle a row this sender still holds; False if it lost the lease meanwhile."""
    return bool(
        OutboxMessage.objects.filter(
            pk=message.pk, status=OutboxStatus.SENDING, lease_token=token
        ).update(lease_until=None, lease_token="", **fields)
    )


_thread_providers = threading.local()


def _send(message: OutboxMessage, provider_name: str) -> Sent:
    """The provider call alone, in a sending thread: no database work here, so the
    number of messages in flight does not need as many database connections."""
    provider = getattr(_thread_providers, provider_name, None)
    if provider is None:
        provider = active_provider()
        setattr(_thread_providers, provider_name, provider)
    return provider.send(
        to=message.contact.phone, body=message.text, valid_until=message.valid_until
    )


def _record_outcome(message: OutboxMessage, token: str, outcome: Sent | SendError) -> str | None:
    """Record what the provider answered (in the draining thread). Returns the SID
    written to the row, if any: a status callback may already be waiting for it."""
    if isinstance(outcome, Sent):
        written = _finish(
            message,
            token,
            status=OutboxStatus.SENT,
            provider_sid=outcome.provider_sid,
            sent_at=timezone.now(),
        )
        return outcome.provider_sid if written else None
    if outcome.opted_out:
        record_opt_out(message.recipient_hash)
    final = not outcome.retry or message.attempts >= MAX_ATTEMPTS
    _finish(
        message,
        token,
        status=(
            OutboxStatus.SKIPPED
            if outcome.opted_out
            else OutboxStatus.FAILED
            if final
            else OutboxStatus.QUEUED
        ),
        error_code=outcome.code[:16],
        next_attempt_at=timezone.now() + retry_delay(message.attempts),
    )
    logger.warning("SMS %s not sent (%s).", message.uuid, outcome.code or "error")
    return None


def record_opt_out(phone_hash: str) -> None:
    OptOut.objects.get_or_create(phone_hash=phone_hash)
    opted_out.send(sender=OptOut, phone_hash=phone_hash)


def _skip_unwanted(batch: list[OutboxMessage], token: str) -> list[OutboxMessage]:
    """Drop from a claimed batch what must not go out any more, with one query each:
    numbers that texted STOP after their message was queued (mid-alert), and rows of a
    batch that was paused (held again) or cancelled since."""
    hashes = {m.recipient_hash for m in batch}
    stopped = set(OptOut.objects.filter(phone_hash__in=hashes).values_list("phone_hash", flat=True))
    batches = {m.batch for m in batch if m.batch}
    holds = (
        dict(BatchHold.objects.filter(batch__in=batches).values_list("batch", "cancelled"))
        if batches
        else {}
    )
    if not stopped and not holds:
        return batch
    outcome: dict[OutboxStatus, list[int]] = {
        OutboxStatus.SKIPPED: [],
        OutboxStatus.CANCELLED: [],
        OutboxStatus.HELD: [],
    }
    keep = []
    for message in batch:
        if message.recipient_hash in stopped:
            outcome[OutboxStatus.SKIPPED].append(message.pk)
        elif message.batch in holds:
            cancelled = holds[message.batch]
            outcome[OutboxStatus.CANCELLED if cancelled else OutboxStatus.HELD].append(message.pk)
        else:
            keep.append(message)
    for status, pks in outcome.items():
        if pks:
            OutboxMessage.objects.filter(
                pk__in=pks, status=OutboxStatus.SENDING, lease_token=token
            ).update(status=status, lease_until=None, lease_token="")
    return keep


def hold_batch(batch: str) -> None:
    """Pause a batch: its queued rows are held, and rows that come back to the queue
    later are held when claimed. Rows already with the provider finish."""
    BatchHold.objects.get_or_create(batch=batch)
    OutboxMessage.objects.filter(batch=batch, status=OutboxStatus.QUEUED).update(
        status=OutboxStatus.HELD
    )


def release_batch(batch: str) -> None:
    """Resume a held batch: its held rows are queued again (the caller wakes the sender)."""
    BatchHold.objects.filter(batch=batch, cancelled=False).delete()
    OutboxMessage.objects.filter(batch=batch, status=OutboxStatus.HELD).update(
        status=OutboxStatus.QUEUED, next_attempt_at=timezone.now()
    )


def cancel_batch(batch: str) -> None:
    """Cancel a batch for good: nothing of it that has not gone out will."""
    BatchHold.objects.update_or_create(batch=batch, defaults={"cancelled": True})
    OutboxMessage.objects.filter(
        batch=batch, status__in=[OutboxStatus.QUEUED, OutboxStatus.HELD]
    ).update(status=OutboxStatus.CANCELLED)


SENDER_LOCK = "outbox-sender"


def send_due(
    *,
    limit: int | None = None,
    budget_seconds: float = 20.0,
    stop: threading.Event | None = None,
) -> int | None:
    """Send due messages at the configured rate for at most ``budget_seconds``, or
    until ``stop`` is set (no new send starts; those in flight are recorded).

    One sender runs at a time (across processes), so the provisioned rate holds for the
    whole deployment. Returns how many messages were handled, or None when another
    sender is already draining the outbox."""
    with exclusive(SENDER_LOCK, ttl_seconds=budget_seconds + lease().total_seconds()) as ours:
        if not ours:
            return None
        return _Drain(limit=limit, budget_seconds=budget_seconds, stop=stop).run()


# The sender thread of this process, when it runs one (a task worker): its sender task
# then leaves the sending to that thread.
_sender_threads: list[threading.Thread] = []
SENDER_POLL_SECONDS = 0.25


def sender_thread_running() -> bool:
    return any(thread.is_alive() for thread in _sender_threads)


def send_until_stopped(stop: threading.Event, *, poll_seconds: float = SENDER_POLL_SECONDS) -> None:
    """A worker's sender, beside its task queue: a drain paced at the carrier's rate can
    last minutes (an alert, or every reply of a surge with accept first), and as a task
    it held up the tasks that turn texts into reports behind it. Looks for due messages
    every ``poll_seconds``; only one process sends at a time (``send_due``)."""

    def step() -> bool:
        return bool(send_due(stop=stop)) if due_count() else False

    run_until_stopped(stop, step, poll_seconds=poll_seconds, what="the sender")


def start_sender_thread(stop: threading.Event) -> threading.Thread:
    thread = threading.Thread(target=send_until_stopped, args=(stop,), name="sms-sender")
    _sender_threads[:] = [t for t in _sender_threads if t.is_alive()] + [thread]
    thread.start()
    return thread


def in_flight_limit(rate: float) -> int:
    """How many sends may wait on the provider at once: enough to keep the configured
    rate with half a second of provider latency, never above RR_SMS_MAX_IN_FLIGHT (the
    provider refuses too many concurrent requests with 429s)."""
    return max(1, min(settings.RR_SMS_MAX_IN_FLIGHT, math.ceil(rate * 0.5)))


class _Drain:
    """One sender's run: claims batches in priority order, starts each send at its paced
    slot on a pool of sending threads, and records every answer from this thread."""

    def __init__(
        self, *, limit: int | None, budget_seconds: float, stop: threading.Event | None = None
    ) -> None:
        self.stop = stop
        self.rate = max(settings.RR_SMS_RATE_PER_SECOND, 0.01)
        self.interval = 1.0 / self.rate
        # Never two sends closer than half an interval, even when catching up.
        self.catch_up = min(CATCH_UP, self.interval / 2)
        # Small enough that a crash strands few messages until their lease runs out, and
        # sent well within the lease.
        self.batch_size = max(1, min(BATCH, math.ceil(self.rate * 2)))
        self.limit = limit
        self.deadline = time.monotonic() + budget_seconds
        self.token = uuid.uuid4().hex
        self.provider_name = settings.RR_SMS_PROVIDER
        self.handled = 0
        self.pending: dict[Future[Sent], OutboxMessage] = {}
        self.next_slot = time.monotonic()
        # The last floor(rate) sends, oldest first (see WINDOW_MARGIN).
        self.per_window = max(1, math.floor(self.rate))
        self.window = self.per_window / self.rate
        self.started: deque[_Timing] = deque(maxlen=self.per_window)
        self.timings: dict[Future[Sent], _Timing] = {}
        self.quickest = math.inf

    def run(self) -> int:
        with ThreadPoolExecutor(
            max_workers=in_flight_limit(self.rate), thread_name_prefix="sms-send"
        ) as pool:
            try:
                self._loop(pool)
            finally:
                self._settle(wait_for_all=True)
        return self.handled

    def _loop(self, pool: ThreadPoolExecutor) -> None:
        in_flight = in_flight_limit(self.rate)
        while time.monotonic() < self.deadline and not self._limit_reached():
            if self.stop is not None and self.stop.is_set():
                break
            size = self.batch_size
            if self.limit is not None:
                size = min(size, self.limit - self.handled - len(self.pending))
            # Measured before the claim, which may wait for the database: the lease
            # runs from the moment the claim was asked for.
            claimed_at = time.monotonic()
            claimed = _claim(timezone.now(), size, self.token)
            if not claimed:
                break
            batch = _skip_unwanted(claimed, self.token)
            self.handled += len(claimed) - len(batch)
            for message in batch:
                if message.valid_until is not None and message.valid_until < timezone.now():
                    _finish(message, self.token, status=OutboxStatus.EXPIRED)
                    self.handled += 1
                    continue
                # Pace sends: never start them faster than the sender is provisioned for;
                # record answers while waiting for the slot.
                while (pause := self._next_start() - time.monotonic()) > 0:
                    # Infinite: the send a window ago is still out; wait for answers.
                    self._settle(timeout=None if math.isinf(pause) else pause)
                # Slots are fixed, so small delays (a claim, a busy moment) are made up by
                # starting the next sends on time; a long stall is not made up in a burst.
                self.next_slot = (
                    max(self.next_slot, time.monotonic() - self.catch_up) + self.interval
                )
                while len(self.pending) >= in_flight:
                    self._settle(timeout=None)
                # Renew the lease only when a slow batch puts it at risk.
                at_risk = time.monotonic() - claimed_at > lease().total_seconds() / 2
                if at_risk and not _still_ours(message, self.token):
                    continue
                timing = _Timing(time.monotonic())
                future = pool.submit(_send, message, self.provider_name)
                # Stamped by the sending thread the moment the answer is in.
                future.add_done_callback(timing.answered)
                self.started.append(timing)
                self.timings[future] = timing
                self.pending[future] = message
                self._settle(timeout=0)

    def _next_start(self) -> float:
        """The earliest moment the next send may start: its slot, and a window after the
        send floor(rate) sends ago reached the provider (see WINDOW_MARGIN); infinite
        while that send has not been answered (a provider slower than the window)."""
        if len(self.started) < self.per_window:
            return self.next_slot
        oldest = self.started[0]
        if oldest.done is None:
            return math.inf
        round_trip = oldest.done - oldest.at
        held_up = round_trip - min(self.quickest, round_trip)
        return max(self.next_slot, oldest.at + max(WINDOW_MARGIN, held_up) + self.window)

    def _limit_reached(self) -> bool:
        return self.limit is not None and self.handled + len(self.pending) >= self.limit

    def _settle(self, *, timeout: float | None = 0, wait_for_all: bool = False) -> None:
        """Record finished sends: those done now (timeout 0), the first to finish within
        ``timeout`` seconds (None: however long it takes), or all (at the end)."""
        if not self.pending:
            if timeout:
                time.sleep(timeout)
            return
        if wait_for_all:
            done, _ = wait(self.pending)
        else:
            done, _ = wait(self.pending, timeout=timeout, return_when=FIRST_COMPLETED)
        written: list[str] = []
        for future in done:
            message = self.pending.pop(future)
            timing = self.timings.pop(future)
            # The callback may not have run yet when the waiter wakes.
            timing.finish()
            self.quickest = min(self.quickest, timing.round_trip)
            try:
                outcome: Sent | SendError = future.result()
            except SendError as exc:
                outcome = exc
            except Exception:
                # A fault in the client, not an answer from the provider: try it again
                # later rather than stop the whole run.
                logger.exception("Sending SMS %s raised; it will be retried.", message.uuid)
                outcome = SendError("The send raised an unexpected error.", retry=True)
            sid = _record_outcome(message, self.token, outcome)
            if sid is not None:
                written.append(sid)
            self.handled += 1
        # One query for every SID just written: callbacks that came in before it.
        apply_early_statuses(written)


@dataclass
class _Timing:
    """When one send started and when its answer came back (monotonic seconds)."""

    at: float
    done: float | None = None

    def finish(self) -> None:
        if self.done is None:
            self.done = time.monotonic()

    def answered(self, _future: Future[Sent]) -> None:
        self.finish()

    @property
    def round_trip(self) -> float:
        return (self.done or self.at) - self.at


def expire_queued(messages: list[OutboxMessage]) -> int:
    """Withdraw messages that have not been sent yet (an offer that is no longer
    needed). Returns how many were still waiting and are now expired."""
    return OutboxMessage.objects.filter(
        pk__in=[m.pk for m in messages], status=OutboxStatus.QUEUED
    ).update(status=OutboxStatus.EXPIRED)


def release_expired_leases(*, now: datetime | None = None, limit: int = 500) -> int:
    """Settle messages whose sender died while sending them (its lease ran out).

    The sender may have died after the provider accepted a message and before its row
    was marked sent; the provider is asked, so such a message is marked sent rather
    than sent again. The rest are queued again. Returns how many were queued again."""
    moment = now or timezone.now()
    stale = list(
        OutboxMessage.objects.filter(status=OutboxStatus.SENDING, lease_until__lt=moment)
        .select_related("contact")
        .order_by("lease_until")[:limit]
    )
    if not stale:
        return 0
    attach_shared_texts(stale)
    provider = active_provider()
    released = 0
    for message in stale:
        found = None
        if message.provider == provider.name and message.lease_until is not None:
            try:
                found = provider.find_sent(
                    to=message.contact.phone, body=message.text, since=message.lease_until - lease()
                )
            except ProviderUnavailable:
                logger.warning("Cannot tell whether SMS %s was sent; asking later.", message.uuid)
                continue
        # Unchanged since it was read: a sender that renewed the lease meanwhile is
        # sending the row, and asking the provider before that send proves nothing.
        still_stale = OutboxMessage.objects.filter(
            pk=message.pk,
            status=OutboxStatus.SENDING,
            lease_token=message.lease_token,
            lease_until=message.lease_until,
        )
        if found is not None:
            settled = still_stale.update(
                status=OutboxStatus.SENT,
                provider_sid=found.provider_sid,
                sent_at=moment,
                lease_until=None,
                lease_token="",
            )
            if settled:
                # Its callbacks arrived while no row had the SID.
                apply_early_statuses([found.provider_sid])
        else:
            released += still_stale.update(
                status=OutboxStatus.QUEUED,
                lease_until=None,
                lease_token="",
                next_attempt_at=min(moment, timezone.now()),
            )
    return released


def sweep() -> None:
    """Periodic: release dead leases and wake the sender if anything is due (a lost
    wake-up, a retry whose time has come)."""
    release_expired_leases()
    if due_count():
        wake_sender()


def due_count() -> int:
    return OutboxMessage.objects.filter(
        status=OutboxStatus.QUEUED, next_attempt_at__lte=timezone.now()
    ).count()


PROVIDER_STATUSES = {
    "queued": OutboxStatus.SENT,
    "accepted": OutboxStatus.SENT,
    "sending": OutboxStatus.SENT,
    "sent": OutboxStatus.SENT,
    "delivered": OutboxStatus.DELIVERED,
    "undelivered": OutboxStatus.UNDELIVERED,
    "failed": OutboxStatus.FAILED,
}
EARLY_STATUS_KEPT = timedelta(days=1)


def record_status(*, provider_sid: str, status: str, error_code: str = "") -> bool:
    """Apply a delivery status from the provider. Unknown statuses and steps backwards
    are ignored, so repeated and out-of-order callbacks are harmless. A status for a
    SID that no row has yet is kept and applied when the SID is written. Returns
    whether a row changed now."""
    new = PROVIDER_STATUSES.get(status.lower())
    if new is None:
        return False
    error_code = error_code[:16]
    with transaction.atomic():
        message = (
            OutboxMessage.objects.select_for_update().filter(provider_sid=provider_sid).first()
        )
        if message is None:
            EarlyStatus.objects.create(provider_sid=provider_sid, status=new, error_code=error_code)
            return False
        return _apply_status(message, new, error_code)


def _apply_status(message: OutboxMessage, new: OutboxStatus, error_code: str) -> bool:
    """Move a row (locked by the caller) forward to ``new``; a final state never moves."""
    if error_code == "21610":
        record_opt_out(message.recipient_hash)
    current = OutboxStatus(message.status)
    if current in FINAL_STATUSES or OUTBOX_STATUS_RANK[new] <= OUTBOX_STATUS_RANK[current]:
        return False
    message.status = new
    message.error_code = error_code or message.error_code
    OutboxMessage.objects.filter(pk=message.pk).update(
        status=message.status, error_code=message.error_code
    )
    return True


def apply_early_statuses(provider_sids: Collection[str]) -> int:
    """Apply the statuses that arrived for these SIDs before any row had them, in the
    order they arrived (so the result is the same as if each had come later), and drop
    them. Returns how many moved a row."""
    if not provider_sids:
        return 0
    with transaction.atomic():
        early = list(
            EarlyStatus.objects.select_for_update()
            .filter(provider_sid__in=set(provider_sids))
            .order_by("pk")
        )
        if not early:
            return 0
        rows = {
            str(m.provider_sid): m
            for m in OutboxMessage.objects.select_for_update().filter(
                provider_sid__in={e.provider_sid for e in early}
            )
        }
        moved = 0
        matched = []
        for status in early:
            message = rows.get(status.provider_sid)
            if message is None:
                continue
            moved += _apply_status(message, OutboxStatus(status.status), status.error_code)
            matched.append(status.pk)
        EarlyStatus.objects.filter(pk__in=matched).delete()
    return moved


def settle_early_statuses(*, now: datetime | None = None, limit: int = 1000) -> int:
    """Periodic: apply early statuses whose SID a row has since (a callback stored at the
    very moment its send was recorded, each missing the other), then purge those that
    matched nothing for a day. Returns how many were purged."""
    has_row = OutboxMessage.objects.filter(provider_sid=OuterRef("provider_sid"))
    matched = list(
        EarlyStatus.objects.filter(Exists(has_row))
        .values_list("provider_sid", flat=True)
        .distinct()[:limit]
    )
    apply_early_statuses(matched)
    moment = now or timezone.now()
    purged, _ = EarlyStatus.objects.filter(received_at__lt=moment - EARLY_STATUS_KEPT).delete()
    return purged


def pending_count() -> int:
    return OutboxMessage.objects.filter(
        Q(status=OutboxStatus.QUEUED) | Q(status=OutboxStatus.SENDING)
    ).count()
