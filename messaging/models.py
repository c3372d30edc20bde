"""Messages in and out. Every inbound message is stored before it is answered; every
outbound message is an outbox row before anything is sent."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable

from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from core.fields import EncryptedTextField


class InboundKind(models.TextChoices):
    REPORT = "report", _("Report")
    KEYWORD = "keyword", _("Keyword")
    EMPTY = "empty", _("Empty")


class InboundMessage(models.Model):
    """One message as the provider delivered it. ``(provider, provider_sid)`` is unique,
    so a provider's retries of the same message are stored once."""

    # Not stored: set while a spooled message is replayed, whose answer was given (and
    # its sender counted against the per-sender limit) when it was spooled.
    answered_offline = False
    # Not stored: set when a message with this provider id was already stored as this
    # delivery arrived (a provider's retry; ``messaging.selectors.sender_facts``).
    stored_before = False
    # Not stored: set by a caller that makes the report in the storing transaction
    # itself (the worker storing accepted texts) instead of queueing a task for it.
    report_at_once = False
    # Not stored: work a handler asked to run once the message is inserted and has its
    # id, inside the same transaction (``when_inserted``).
    _when_inserted: list[Callable[[], object]] | None = None

    uuid = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    provider = models.CharField(max_length=16)
    provider_sid = models.CharField(max_length=64)
    received_at = models.DateTimeField(default=timezone.now)

    sender = EncryptedTextField()
    sender_hash = models.CharField(max_length=64)
    recipient = models.CharField(max_length=32, blank=True, help_text=_("Our number."))
    body = EncryptedTextField(null=True, blank=True)
    media_count = models.PositiveSmallIntegerField(default=0)
    media_urls = EncryptedTextField(blank=True, default="", help_text=_("JSON list."))

    kind = models.CharField(max_length=8, choices=InboundKind.choices, default=InboundKind.REPORT)
    keyword = models.CharField(max_length=20, blank=True)
    language = models.CharField(max_length=8)
    processed_at = models.DateTimeField(null=True, blank=True)
    # Processing is queued when the message is stored; if it has not finished by
    # retry_at (a worker died, a task failed) the worker's sweep queues it again, with a
    # doubling delay so a backlog or an outage does not use the attempts up.
    attempts = models.PositiveSmallIntegerField(default=0)
    retry_at = models.DateTimeField(null=True, blank=True)
    # When the provider's own copy was deleted through its API (core.retention).
    provider_deleted_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["provider", "provider_sid"], name="inbound_provider_sid_unique"
            )
        ]
        indexes = [
            models.Index(fields=["sender_hash", "received_at"], name="inbound_sender_idx"),
            # The sweep that retries messages whose processing never finished.
            models.Index(
                fields=["retry_at"],
                condition=models.Q(processed_at__isnull=True),
                name="inbound_pending_idx",
            ),
            # Retention: messages whose copy at the provider is still to be deleted.
            models.Index(
                fields=["received_at"],
                condition=models.Q(provider_deleted_at__isnull=True),
                name="inbound_provider_copy_idx",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.provider} message {self.provider_sid}"

    def when_inserted(self, work: Callable[[], object]) -> None:
        """Run ``work`` once this message is inserted, in the inserting transaction (a
        handler decides before the INSERT; what it queues needs the message's id)."""
        if self._when_inserted is None:
            self._when_inserted = []
        self._when_inserted.append(work)

    def inserted(self) -> None:
        """Called by the code that inserted the message: runs what handlers asked for."""
        work, self._when_inserted = self._when_inserted or [], None
        for step in work:
            step()


class AcceptedMessage(models.Model):
    """An inbound SMS the webhook accepted in one INSERT and answered with nothing
    (RR_SMS_ACCEPT_FIRST): a worker stores and routes it through the normal path
    (``messaging.accepted``), in arrival order, and sends its reply through the outbox.
    The row is deleted in the transaction that stores the message."""

    provider = models.CharField(max_length=16)
    provider_sid = models.CharField(max_length=64)
    received_at = models.DateTimeField(default=timezone.now)
    # As the provider sent it: normalising and hashing wait for the worker. Each field
    # is sealed to its row by the provider's id (unique here), which saves the one
    # index a uuid would cost every text.
    sender = EncryptedTextField(row_key="provider_sid")
    recipient = models.CharField(max_length=32, blank=True)
    body = EncryptedTextField(row_key="provider_sid", blank=True, default="")
    media_urls = EncryptedTextField(
        row_key="provider_sid", blank=True, default="", help_text=_("JSON list.")
    )
    # What the sender was already told (a text replayed from the spool, answered there);
    # empty: nothing, so the reply goes out through the outbox.
    answered = EncryptedTextField(row_key="provider_sid", blank=True, default="")
    # A message the normal path refused this many times is held, not retried, so it
    # cannot stop the queue; `manage.py replay_spool --release-held` releases held ones.
    attempts = models.PositiveSmallIntegerField(default=0)
    held = models.BooleanField(default=False)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["provider", "provider_sid"], name="accepted_provider_sid_unique"
            )
        ]
        indexes = [
            models.Index(fields=["id"], condition=models.Q(held=False), name="accepted_queue_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.provider} message {self.provider_sid} (accepted)"


class Contact(models.Model):
    """One phone number we send to, stored once: encrypted, found by its keyed hash.

    Outbox rows point here rather than carrying their own copy, so an alert to 100,000
    subscribers writes no ciphertext per recipient, and purging a number purges it
    everywhere."""

    uuid = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    phone = EncryptedTextField()
    phone_hash = models.CharField(max_length=64, unique=True)
    created_at = models.DateTimeField(default=timezone.now)

    def __str__(self) -> str:
        return f"contact {self.uuid}"


class OutboxBody(models.Model):
    """The text of one send to many (an alert) in one language: every outbox row of
    that batch and language without a body of its own says this. Found by batch and
    language rather than pointed to, so the 100,000 rows of an alert carry no key for
    the database to check at commit (bench B5)."""

    uuid = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    batch = models.CharField(max_length=48)
    language = models.CharField(max_length=8)
    text = EncryptedTextField()

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["batch", "language"], name="outbox_body_batch_language_unique"
            )
        ]

    def __str__(self) -> str:
        return f"body {self.uuid}"


class OutboxKind(models.TextChoices):
    REPLY = "reply", _("Reply")
    OFFER = "offer", _("Offer to a responder")
    NOTICE = "notice", _("Notice to a responder")
    ALERT = "alert", _("Alert")
    SUBSCRIPTION = "subscription", _("Subscription message")
    REMINDER = "reminder", _("Hearing reminder")


class OutboxStatus(models.TextChoices):
    QUEUED = "queued", _("Queued")
    SENDING = "sending", _("Sending")
    SENT = "sent", _("Sent")
    DELIVERED = "delivered", _("Delivered")
    UNDELIVERED = "undelivered", _("Undelivered")
    FAILED = "failed", _("Failed")
    SKIPPED = "skipped", _("Not sent: the number opted out")
    EXPIRED = "expired", _("Not sent: too late to be useful")
    HELD = "held", _("Held: sending paused")
    CANCELLED = "cancelled", _("Not sent: cancelled")


# Status only moves forward; a late or repeated callback never moves it back.
OUTBOX_STATUS_RANK = {
    OutboxStatus.QUEUED: 0,
    OutboxStatus.SENDING: 1,
    OutboxStatus.SENT: 2,
    OutboxStatus.DELIVERED: 3,
    OutboxStatus.UNDELIVERED: 3,
    OutboxStatus.FAILED: 3,
    OutboxStatus.SKIPPED: 3,
    OutboxStatus.EXPIRED: 3,
    OutboxStatus.HELD: 0,
    OutboxStatus.CANCELLED: 3,
}
FINAL_STATUSES = frozenset(s for s, rank in OUTBOX_STATUS_RANK.items() if rank == 3)


class OutboxMessage(models.Model):
    """An outbound SMS: a row here first, then the sender (messaging.outbox) hands it to
    the provider and moves its status forward only.

    Replies to an inbound message travel in the webhook's answer (TwiML), so they are
    recorded here already ``sent``.
    """

    uuid = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    provider = models.CharField(max_length=16)
    kind = models.CharField(max_length=12, choices=OutboxKind.choices)
    # Indexed with created_at (Meta), which serves both a person's messages, newest
    # first, and the retention purge's "does any message still use this number".
    contact = models.ForeignKey(
        Contact, on_delete=models.PROTECT, related_name="outbox", db_index=False
    )
    recipient_hash = models.CharField(max_length=64)
    # Offers quote what reporters wrote and carry signed links: encrypted. Messages sent
    # to many (an alert) have none: their batch's OutboxBody in their language is shared.
    body = EncryptedTextField(null=True, blank=True)
    # Messages of one send (an alert) share a batch; lower priority numbers go first
    # (the nearest subscribers); dedupe_key makes a repeated fan-out write nothing twice.
    batch = models.CharField(max_length=48, blank=True)
    priority = models.PositiveIntegerField(default=0)
    # Unique (Meta); NULL, not "", for the many rows without one: NULLs never collide.
    dedupe_key = models.CharField(max_length=80, null=True, blank=True)  # noqa: DJ001
    language = models.CharField(max_length=8)
    status = models.CharField(
        max_length=12, choices=OutboxStatus.choices, default=OutboxStatus.QUEUED
    )
    created_at = models.DateTimeField(default=timezone.now)
    # The sender takes due rows in order; a row it is sending carries a lease, and one
    # whose lease ran out (a killed worker) is queued again by the sweep.
    next_attempt_at = models.DateTimeField(default=timezone.now)
    lease_until = models.DateTimeField(null=True, blank=True)
    # Which sender holds the lease: only it may send or update the row.
    lease_token = models.CharField(max_length=32, blank=True)
    attempts = models.PositiveSmallIntegerField(default=0)
    # After this moment the message is useless (an offer nobody can still take).
    valid_until = models.DateTimeField(null=True, blank=True)
    sent_at = models.DateTimeField(null=True, blank=True)
    provider_sid = models.CharField(max_length=64, null=True, blank=True)  # noqa: DJ001 - as above
    # When the provider's own copy was deleted through its API (core.retention).
    provider_deleted_at = models.DateTimeField(null=True, blank=True)
    error_code = models.CharField(max_length=16, blank=True)
    in_reply_to = models.OneToOneField(
        InboundMessage, null=True, blank=True, on_delete=models.CASCADE, related_name="reply"
    )

    class Meta:
        # Every index is written for each of an alert's 100,000 rows (bench B5), so each
        # key has one: ``unique=True`` on a field would add a second, pattern-ops copy on
        # PostgreSQL. The dedupe key's index uses pattern ops itself, serving both the
        # equality checks and the prefix searches (cases.hearings) with plain byte
        # comparisons; the provider's id is unknown while a row is queued, so only rows
        # that have one are indexed.
        constraints = [
            models.UniqueConstraint(
                fields=["dedupe_key"],
                name="outbox_dedupe_key_unique",
                opclasses=["varchar_pattern_ops"],
            ),
            models.UniqueConstraint(
                fields=["provider_sid"],
                condition=models.Q(provider_sid__isnull=False),
                name="outbox_provider_sid_unique",
                opclasses=["varchar_pattern_ops"],
            ),
        ]
        indexes = [
            # A person's messages go by their contact, not by the hash of their number:
            # the contact stays the same when the hash key is rotated, and an index on
            # 64 random hex digits cost each of an alert's rows a write in a random place.
            models.Index(fields=["contact", "created_at"], name="outbox_contact_idx"),
            models.Index(fields=["status", "priority", "next_attempt_at"], name="outbox_due_idx"),
            models.Index(fields=["batch", "status"], name="outbox_batch_idx"),
            # Retention: sent messages whose copy at the provider is still to be deleted.
            models.Index(
                fields=["sent_at"],
                condition=models.Q(provider_deleted_at__isnull=True, provider_sid__isnull=False),
                name="outbox_provider_copy_idx",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.kind} {self.uuid} ({self.status})"

    @property
    def text(self) -> str:
        """What the message says: its own body, or its batch's text in its language
        (read here unless ``attach_shared_texts`` loaded it for a list of messages)."""
        if self.body is not None:
            return str(self.body)
        if not hasattr(self, "_shared_text"):
            attach_shared_texts([self])
        return self._shared_text

    _shared_text: str


def attach_shared_texts(messages: Iterable[OutboxMessage]) -> None:
    """Load the shared texts of these messages (those without a body of their own) in
    one query, so a list of them reads no text per row."""
    wanted = [m for m in messages if m.body is None and not hasattr(m, "_shared_text")]
    if not wanted:
        return
    batches = {m.batch for m in wanted}
    texts = {
        (body.batch, body.language): str(body.text)
        for body in OutboxBody.objects.filter(batch__in=batches)
    }
    for message in wanted:
        message._shared_text = texts.get((message.batch, message.language), "")


class EarlyStatus(models.Model):
    """A delivery status that arrived before its message's provider SID was stored: a
    callback faster than the sender's recording of the answer, or one for a message
    whose sender died (the lease sweep writes the SID later). Kept, and applied forward
    only in the order received, once the SID is written to an outbox row; purged after
    a day if no row ever gets it. No personal data: the SID, the status, the code."""

    provider_sid = models.CharField(max_length=64)
    status = models.CharField(max_length=12, choices=OutboxStatus.choices)
    error_code = models.CharField(max_length=16, blank=True)
    received_at = models.DateTimeField(default=timezone.now)

    class Meta:
        indexes = [
            models.Index(fields=["provider_sid"], name="early_status_sid_idx"),
            models.Index(fields=["received_at"], name="early_status_received_idx"),
        ]

    def __str__(self) -> str:
        return f"early {self.status} for {self.provider_sid}"


class BatchHold(models.Model):
    """A batch of outbox rows (an alert) that must not go out now: held while paused, or
    cancelled for good. The sender looks it up for every batch it claims, so a row that
    comes back to the queue later (a retry after a 429, a dead sender's lease) still
    obeys it."""

    batch = models.CharField(max_length=48, unique=True)
    cancelled = models.BooleanField(default=False)
    created_at = models.DateTimeField(default=timezone.now)

    def __str__(self) -> str:
        return f"hold on {self.batch}"


class OptOut(models.Model):
    """A number that texted STOP (or a variant): nothing more is sent to it until it
    texts START. Carriers require this for every message a number can receive."""

    phone_hash = models.CharField(max_length=64, unique=True)
    created_at = models.DateTimeField(default=timezone.now)

    def __str__(self) -> str:
        return f"opt-out {self.phone_hash[:8]}"
