"""Retention: personal data is purged on a schedule, one rule per kind of data.

Each rule selects what is due at a cutoff (now minus its period) and deletes or blanks
it in batches. Rules are idempotent (what is done is no longer selected) and safe to
run from several workers at once: every batch re-checks its rows in the statement or
the row lock that changes them, and a scheduled run takes a cross-process lock so only
one purge runs at a time. A dry run counts what is due and changes nothing. Each rule
that removed something writes one audit event with counts only.

Coordinators change the periods within each rule's bounds (``RetentionPolicy``); a
rule without a row keeps its default. The table of rules is in docs/ARCHITECTURE.md.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.core.files.storage import default_storage
from django.db import connections, transaction
from django.db.models import Exists, OuterRef, Q
from django.utils import timezone
from django.utils.functional import Promise
from django.utils.translation import gettext_lazy as _

from core import locks
from core.models import AuditAction, AuditEvent, RetentionPolicy

logger = logging.getLogger(__name__)

# How often the worker starts a purge (the setting overrides it).
DEFAULT_INTERVAL_SECONDS = 3600
BATCH_SIZE = 500
LOCK_NAME = "core.retention.purge"
# A report message never processed (its retries gave up) is done with after this long.
UNPROCESSED_GIVEN_UP_AFTER = timedelta(days=1)

Counts = dict[str, int]


class RetentionRefused(ValueError):
    """A period outside its rule's bounds, or an unknown rule."""


@dataclass(frozen=True)
class Rule:
    key: str
    label: Promise
    description: Promise
    default_days: int
    min_days: int
    max_days: int
    # (cutoff) -> what is due, by kind; nothing changes.
    count: Callable[[datetime], Counts]
    # (cutoff, batch size) -> what was removed, by kind.
    purge: Callable[[datetime, int], Counts]


@dataclass
class Outcome:
    rule: Rule
    days: int
    counts: Counts = field(default_factory=dict)

    @property
    def total(self) -> int:
        return sum(self.counts.values())


# --- helpers -------------------------------------------------------------------------


def _ids(queryset: Any, after: int, size: int) -> list[int]:
    return list(queryset.filter(pk__gt=after).order_by("pk").values_list("pk", flat=True)[:size])


def _each_batch(queryset: Any, size: int) -> Iterable[list[int]]:
    """The queryset's keys in ascending batches. Rows left behind (a provider that did
    not answer) are passed over, so a run always ends."""
    after = 0
    while True:
        batch = _ids(queryset, after, size)
        if not batch:
            return
        yield batch
        after = batch[-1]


def _delete_files(names: Iterable[str]) -> None:
    # Files first, rows after: a crash in between leaves rows whose files are gone
    # (purged at the next run), never files that no row names.
    for name in names:
        if name:
            default_storage.delete(name)


def _add(counts: Counts, key: str, value: int) -> None:
    if value:
        counts[key] = counts.get(key, 0) + value


def _sms_provider(name: str) -> Any:
    """The SMS provider that holds rows of ``name``, or None when this deployment
    cannot reach it (its rows wait)."""
    from messaging.providers import active_provider

    if name == "console":
        from messaging.providers.console.provider import ConsoleProvider

        return ConsoleProvider()
    provider = active_provider()
    return provider if provider.name == name else None


def _voice_provider(name: str) -> Any:
    from messaging.providers import active_voice_provider

    if name == "console":
        from messaging.providers.console.voice import ConsoleVoice

        return ConsoleVoice()
    provider = active_voice_provider()
    return provider if provider.name == name else None


def _copy_gone() -> Q:
    """Inbound and outbound messages whose copy at the provider is gone (or never
    existed): only those may be deleted here, or the provider's sid would be lost."""
    return Q(provider_deleted_at__isnull=False) | Q(provider="console")


# --- the provider's copies -------------------------------------------------------------


def _due_inbound_copies(cutoff: datetime) -> Any:
    from messaging.models import InboundMessage

    return InboundMessage.objects.filter(provider_deleted_at__isnull=True).filter(
        Q(processed_at__lte=cutoff)
        | Q(processed_at__isnull=True, received_at__lte=cutoff - UNPROCESSED_GIVEN_UP_AFTER)
    )


def _due_outbound_copies(cutoff: datetime) -> Any:
    from messaging.models import FINAL_STATUSES, OutboxMessage, OutboxStatus

    return OutboxMessage.objects.filter(
        provider_deleted_at__isnull=True,
        provider_sid__isnull=False,
        status__in=[*FINAL_STATUSES, OutboxStatus.SENT],
        sent_at__lte=cutoff,
    )


def _due_call_copies(cutoff: datetime) -> Any:
    from calls.models import Call, CallState

    return Call.objects.filter(
        provider_deleted_at__isnull=True, state=CallState.ENDED, ended_at__lte=cutoff
    ).exclude(provider_sid="")


def count_provider_copies(cutoff: datetime) -> Counts:
    counts: Counts = {}
    _add(counts, "inbound", _due_inbound_copies(cutoff).count())
    _add(counts, "outbound", _due_outbound_copies(cutoff).count())
    _add(counts, "calls", _due_call_copies(cutoff).count())
    return counts


def _delete_copies(
    queryset: Any,
    size: int,
    delete: Callable[[Any, str], None],
    *,
    provider_of: Callable[[str], Any],
) -> tuple[int, int]:
    """Ask the provider to delete each row's copy, then mark the row. Returns (done,
    failed). Deleting twice is harmless (the second answers "already gone")."""
    from messaging.providers import ProviderUnavailable

    done = failed = 0
    providers: dict[str, Any] = {}
    model = queryset.model
    for batch in _each_batch(queryset, size):
        for pk, name, sid in model.objects.filter(pk__in=batch).values_list(
            "pk", "provider", "provider_sid"
        ):
            if name not in providers:
                providers[name] = provider_of(name)
            provider = providers[name]
            if provider is None:
                continue
            try:
                delete(provider, sid)
            except ProviderUnavailable:
                failed += 1
                continue
            done += model.objects.filter(pk=pk, provider_deleted_at__isnull=True).update(
                provider_deleted_at=timezone.now()
            )
    return done, failed


def _delete_message(provider: Any, sid: str) -> None:
    provider.delete_message(sid=sid)


def _delete_call(provider: Any, sid: str) -> None:
    provider.delete_call(sid=sid)


def purge_provider_copies(cutoff: datetime, size: int) -> Counts:
    counts: Counts = {}
    failed = 0
    jobs: list[tuple[str, Any, Callable[[Any, str], None], Callable[[str], Any]]] = [
        ("inbound", _due_inbound_copies(cutoff), _delete_message, _sms_provider),
        ("outbound", _due_outbound_copies(cutoff), _delete_message, _sms_provider),
        ("calls", _due_call_copies(cutoff), _delete_call, _voice_provider),
    ]
    for key, queryset, delete, provider_of in jobs:
        done, not_done = _delete_copies(queryset, size, delete, provider_of=provider_of)
        _add(counts, key, done)
        failed += not_done
    if failed:
        logger.warning("The provider did not delete %d copies; they are tried again.", failed)
    return counts


# --- voicemail recordings --------------------------------------------------------------


def _due_recordings(cutoff: datetime) -> Any:
    from calls.models import Call

    return Call.objects.filter(recording_sid__isnull=False, started_at__lte=cutoff)


def count_recordings(cutoff: datetime) -> Counts:
    return {"recordings": _due_recordings(cutoff).count()}


def purge_recordings(cutoff: datetime, size: int) -> Counts:
    """Ask the provider to delete each voicemail, then forget its reference and any
    transcript. A recording the provider could not delete keeps its reference, so it
    is asked again at the next run."""
    from calls.models import Call
    from messaging.providers import ProviderUnavailable

    removed = failed = 0
    for batch in _each_batch(_due_recordings(cutoff), size):
        for call in Call.objects.filter(pk__in=batch).only(
            "pk", "uuid", "provider", "recording_sid", "recording_reference"
        ):
            provider = _voice_provider(call.provider)
            if provider is None:
                continue
            try:
                if call.recording_reference:
                    provider.delete_recording(reference=str(call.recording_reference))
            except ProviderUnavailable:
                failed += 1
                continue
            with transaction.atomic():
                locked = (
                    Call.objects.select_for_update()
                    .filter(pk=call.pk, recording_sid=call.recording_sid)
                    .first()
                )
                if locked is None:
                    continue  # another worker finished it
                locked.recording_sid = None
                locked.recording_reference = ""
                locked.transcript = ""
                locked.save(update_fields=["recording_sid", "recording_reference", "transcript"])
                removed += 1
    if failed:
        logger.warning("The provider did not delete %d recordings; they are tried again.", failed)
    return {"recordings": removed} if removed else {}


# --- reports ---------------------------------------------------------------------------


def _delete_reports(report_ids: list[int], still_due: Q) -> Counts:
    """Delete reports (rows still matching ``still_due``), their photos (files too),
    and their raw messages whose copy at the provider is gone. Runs under the
    incidents lock, like every change to what incidents hold."""
    from incidents.console import INCIDENTS_LOCK
    from intake.models import Report, ReportPhoto
    from messaging.models import InboundMessage

    counts: Counts = {}
    photos = list(ReportPhoto.objects.filter(report_id__in=report_ids).values_list("pk", "file"))
    _delete_files(name for _pk, name in photos)
    with transaction.atomic():
        locks.serialize(INCIDENTS_LOCK)
        due = Report.objects.filter(still_due, pk__in=report_ids)
        message_ids = list(
            due.filter(inbound_message__isnull=False).values_list("inbound_message", flat=True)
        )
        ids = list(due.values_list("pk", flat=True))
        _add(counts, "photos", ReportPhoto.objects.filter(report_id__in=ids).delete()[0])
        _add(counts, "reports", Report.objects.filter(pk__in=ids).delete()[0])
        messages = InboundMessage.objects.filter(pk__in=message_ids).filter(_copy_gone())
        _add(counts, "messages", messages.delete()[1].get(InboundMessage._meta.label, 0))
    return counts


def _unlinked(cutoff: datetime) -> Q:
    return Q(incident__isnull=True, received_at__lte=cutoff)


def count_unlinked_reports(cutoff: datetime) -> Counts:
    from intake.models import Report

    return {"reports": Report.objects.filter(_unlinked(cutoff)).count()}


def purge_unlinked_reports(cutoff: datetime, size: int) -> Counts:
    from intake.models import Report

    counts: Counts = {}
    for batch in _each_batch(Report.objects.filter(_unlinked(cutoff)), size):
        for key, value in _delete_reports(batch, _unlinked(cutoff)).items():
            _add(counts, key, value)
    return counts


def _never_verified() -> Q:
    """Incidents that ended unverified or false, or closed without being verified.
    Verified can only move to closed, so "ever verified" is "ended verified"."""
    from incidents.models import IncidentStatus, TimelineEntry, TimelineKind

    verified = TimelineEntry.objects.filter(
        incident=OuterRef("pk"), kind=TimelineKind.STATUS, to_value=IncidentStatus.VERIFIED
    )
    return Q(
        status__in=[IncidentStatus.UNVERIFIED, IncidentStatus.FALSE, IncidentStatus.CLOSED]
    ) & ~Q(Exists(verified))


def _due_unverified_incidents(cutoff: datetime) -> Any:
    from dispatch.models import FieldReport
    from incidents.models import Incident, TimelineEntry
    from intake.models import Report

    holds = (
        Q(Exists(Report.objects.filter(incident=OuterRef("pk"))))
        | Q(Exists(FieldReport.objects.filter(offer__incident=OuterRef("pk"))))
        | Q(Exists(TimelineEntry.objects.filter(incident=OuterRef("pk")).exclude(reason="")))
    )
    return Incident.objects.filter(_never_verified(), holds, updated_at__lte=cutoff)


def count_unverified_reports(cutoff: datetime) -> Counts:
    from intake.models import Report

    incidents = _due_unverified_incidents(cutoff)
    counts: Counts = {}
    _add(counts, "incidents", incidents.count())
    _add(counts, "reports", Report.objects.filter(incident__in=incidents).count())
    return counts


def _purge_incident(incident_id: int, cutoff: datetime) -> Counts:
    """Everything personal an unverified or false incident holds: its reports (with
    photos and raw messages), its field reports and their evidence files, and the
    reasons written on its timeline. The incident stays as a row of counts and times;
    one still open (unverified or false) is closed first."""
    from dispatch.models import Evidence, FieldReport
    from incidents import actions as incident_actions
    from incidents import console
    from incidents.console import INCIDENTS_LOCK
    from incidents.models import ConsoleEventKind, Incident, IncidentStatus, TimelineEntry
    from intake.models import Report

    incident = (
        Incident.objects.filter(_never_verified(), pk=incident_id, updated_at__lte=cutoff)
        .only("pk", "uuid", "status")
        .first()
    )
    if incident is None:
        return {}
    if incident.status != IncidentStatus.CLOSED:
        try:
            incident_actions.change_status(
                actor=None,
                incident=incident,
                status=IncidentStatus.CLOSED,
                reason=str(_("Closed: its reports were purged under the retention policy.")),
            )
        except (incident_actions.ActionRefused, ValueError):
            return {}
    # Only closed incidents from here on: a closed incident never changes status again.
    still_due = Q(incident_id=incident_id, incident__status=IncidentStatus.CLOSED)
    counts: Counts = {}
    evidence = list(
        Evidence.objects.filter(field_report__offer__incident_id=incident_id).values_list(
            "original", "shared"
        )
    )
    _delete_files(name for pair in evidence for name in pair)
    report_ids = list(Report.objects.filter(still_due).values_list("pk", flat=True))
    if report_ids:
        for key, value in _delete_reports(report_ids, still_due).items():
            _add(counts, key, value)
    with transaction.atomic():
        locks.serialize(INCIDENTS_LOCK)
        field_reports = FieldReport.objects.filter(offer__incident_id=incident_id)
        _total, deleted = field_reports.delete()
        _add(counts, "field_reports", deleted.get(FieldReport._meta.label, 0))
        _add(counts, "evidence", deleted.get(Evidence._meta.label, 0))
        _add(
            counts,
            "timeline_reasons",
            TimelineEntry.objects.filter(incident_id=incident_id)
            .exclude(reason="")
            .update(reason=""),
        )
        console.publish(ConsoleEventKind.INCIDENT, incident.uuid)
    counts["incidents"] = 1
    return counts


def purge_unverified_reports(cutoff: datetime, size: int) -> Counts:
    counts: Counts = {}
    for batch in _each_batch(_due_unverified_incidents(cutoff), max(1, size // 10)):
        for incident_id in batch:
            for key, value in _purge_incident(incident_id, cutoff).items():
                _add(counts, key, value)
    return counts


# --- reporter contacts once their incident closes ---------------------------------------


def _closed_before(cutoff: datetime, prefix: str = "") -> Q:
    from incidents.models import IncidentStatus

    return Q(
        **{
            f"{prefix}incident__status": IncidentStatus.CLOSED,
            f"{prefix}incident__closed_at__lte": cutoff,
        }
    )


def _contacts_due(cutoff: datetime) -> tuple[Any, Any, Any, Any]:
    from calls.models import Call
    from intake.models import Report
    from messaging.models import FINAL_STATUSES, InboundMessage, OutboxMessage, OutboxStatus

    reports = Report.objects.filter(_closed_before(cutoff)).filter(
        Q(reporter_contact__isnull=False) | ~Q(reporter_hash="")
    )
    messages = InboundMessage.objects.filter(_closed_before(cutoff, "report__")).exclude(
        sender_hash=""
    )
    replies = OutboxMessage.objects.filter(
        _closed_before(cutoff, "in_reply_to__report__"),
        status__in=[*FINAL_STATUSES, OutboxStatus.SENT],
    ).filter(Q(provider_sid__isnull=True) | _copy_gone())
    # A missed call waiting on the console keeps its number until it is called back
    # (or until the call-number rule's period ends).
    calls = Call.objects.filter(_closed_before(cutoff, "report__"), needs_callback=False).exclude(
        caller_hash=""
    )
    return reports, messages, replies, calls


def count_closed_contacts(cutoff: datetime) -> Counts:
    reports, messages, replies, calls = _contacts_due(cutoff)
    counts: Counts = {}
    _add(counts, "reports", reports.count())
    _add(counts, "messages", messages.count())
    _add(counts, "replies", replies.count())
    _add(counts, "calls", calls.count())
    return counts


def _blank_each(queryset: Any, size: int, fields: dict[str, Any], still_due: Q) -> int:
    """Blank encrypted fields row by row (they cannot be updated in bulk), each row
    locked and checked again first."""
    model = queryset.model
    blanked = 0
    for batch in _each_batch(queryset, size):
        with transaction.atomic():
            for row in model.objects.select_for_update(of=("self",)).filter(
                still_due, pk__in=batch
            ):
                for name, value in fields.items():
                    setattr(row, name, value)
                row.save(update_fields=list(fields))
                blanked += 1
    return blanked


def purge_closed_contacts(cutoff: datetime, size: int) -> Counts:
    from intake.models import Report

    reports, messages, replies, calls = _contacts_due(cutoff)
    counts: Counts = {}
    for batch in _each_batch(reports, size):
        # reporter_contact may be set to NULL in bulk: nothing is encrypted.
        _add(
            counts,
            "reports",
            Report.objects.filter(_closed_before(cutoff), pk__in=batch).update(
                reporter_contact=None, reporter_hash=""
            ),
        )
    _add(
        counts,
        "messages",
        _blank_each(
            messages,
            size,
            {"sender": "", "sender_hash": ""},
            _closed_before(cutoff, "report__") & ~Q(sender_hash=""),
        ),
    )
    for batch in _each_batch(replies, size):
        _add(counts, "replies", replies.filter(pk__in=batch).delete()[0])
    _add(
        counts,
        "calls",
        _blank_each(
            calls,
            size,
            {"caller": "", "caller_hash": ""},
            _closed_before(cutoff, "report__") & Q(needs_callback=False) & ~Q(caller_hash=""),
        ),
    )
    return counts


# --- callers' numbers on calls ------------------------------------------------------------


def _due_call_numbers(cutoff: datetime) -> Any:
    from calls.models import Call, CallState

    return Call.objects.filter(state=CallState.ENDED, ended_at__lte=cutoff).exclude(caller_hash="")


def count_call_numbers(cutoff: datetime) -> Counts:
    return {"calls": _due_call_numbers(cutoff).count()}


def purge_call_numbers(cutoff: datetime, size: int) -> Counts:
    from calls.models import CallState

    blanked = _blank_each(
        _due_call_numbers(cutoff),
        size,
        # Nobody can call back a number that is gone: off the missed-calls list.
        {"caller": "", "caller_hash": "", "needs_callback": False},
        Q(state=CallState.ENDED, ended_at__lte=cutoff) & ~Q(caller_hash=""),
    )
    return {"calls": blanked} if blanked else {}


# --- raw inbound messages --------------------------------------------------------------------


def _due_inbound(cutoff: datetime) -> Any:
    from messaging.models import InboundMessage

    return InboundMessage.objects.filter(_copy_gone(), received_at__lte=cutoff)


def _due_accepted(cutoff: datetime) -> Any:
    """Texts accepted by the webhook and never stored (held, or no worker ran) for as
    long as a stored one is kept."""
    from messaging.models import AcceptedMessage

    return AcceptedMessage.objects.filter(received_at__lte=cutoff)


def count_inbound(cutoff: datetime) -> Counts:
    counts: Counts = {"messages": _due_inbound(cutoff).count()}
    _add(counts, "accepted", _due_accepted(cutoff).count())
    return counts


def purge_inbound(cutoff: datetime, size: int) -> Counts:
    from messaging.models import InboundMessage, OutboxMessage

    counts: Counts = {}
    for batch in _each_batch(_due_accepted(cutoff), size):
        _add(counts, "accepted", _due_accepted(cutoff).filter(pk__in=batch).delete()[0])
    for batch in _each_batch(_due_inbound(cutoff), size):
        # The replies go with them (they are rows of the conversation, not records).
        _total, deleted = _due_inbound(cutoff).filter(pk__in=batch).delete()
        _add(counts, "messages", deleted.get(InboundMessage._meta.label, 0))
        _add(counts, "replies", deleted.get(OutboxMessage._meta.label, 0))
    return counts


# --- subscribers who stopped ---------------------------------------------------------------


def _due_subscribers(cutoff: datetime) -> Any:
    from alerts.models import Subscriber, SubscriberStatus
    from messaging.models import InboundMessage

    # A sign-up never confirmed is dropped too, unless the phone wrote lately (a JOIN
    # waiting for its YES) or a code is still out.
    recent = InboundMessage.objects.filter(
        sender_hash=OuterRef("phone_hash"), received_at__gt=cutoff
    )
    return Subscriber.objects.filter(
        Q(status=SubscriberStatus.STOPPED, stopped_at__lte=cutoff)
        | (
            Q(status=SubscriberStatus.PENDING, created_at__lte=cutoff)
            & (Q(code_expires_at__isnull=True) | Q(code_expires_at__lte=cutoff))
            & ~Q(Exists(recent))
        )
    )


def count_subscribers(cutoff: datetime) -> Counts:
    return {"subscribers": _due_subscribers(cutoff).count()}


def purge_subscribers(cutoff: datetime, size: int) -> Counts:
    """Delete them with their areas; their number goes with the outbox rule once no
    message points to it. Opt-outs (STOP) are kept: carriers require them."""
    from alerts.models import Subscriber

    removed = 0
    for batch in _each_batch(_due_subscribers(cutoff), size):
        _total, deleted = _due_subscribers(cutoff).filter(pk__in=batch).delete()
        removed += deleted.get(Subscriber._meta.label, 0)
    return {"subscribers": removed} if removed else {}


# --- outbound messages and the numbers we texted --------------------------------------------


def _live_batches() -> list[str]:
    """The batches of alerts that may still write or send rows."""
    from alerts.models import Alert, AlertStatus

    live_alerts = Alert.objects.filter(
        status__in=[AlertStatus.AWAITING_APPROVAL, AlertStatus.SENDING, AlertStatus.PAUSED]
    )
    return [alert.batch for alert in live_alerts.only("uuid")]


def _due_outbox(cutoff: datetime) -> Any:
    """Sent (or settled) messages past the period, except what live alerts and open
    offers still point to; never one the sender may still send."""
    from dispatch.models import OPEN_OFFER_STATUSES, Offer
    from messaging.models import OutboxMessage, OutboxStatus

    live_batches = _live_batches()
    open_offers = Offer.objects.filter(sms=OuterRef("pk"), status__in=OPEN_OFFER_STATUSES)
    return (
        OutboxMessage.objects.filter(created_at__lte=cutoff)
        .exclude(status__in=[OutboxStatus.QUEUED, OutboxStatus.SENDING, OutboxStatus.HELD])
        .filter(Q(provider_sid__isnull=True) | _copy_gone())
        .exclude(batch__in=live_batches)
        .exclude(Exists(open_offers))
    )


def _unused_contacts(cutoff: datetime) -> Any:
    from alerts.models import Subscriber
    from messaging.models import Contact, OutboxMessage

    return Contact.objects.filter(created_at__lte=cutoff).exclude(
        Exists(OutboxMessage.objects.filter(contact=OuterRef("pk")))
        | Exists(Subscriber.objects.filter(contact=OuterRef("pk")))
    )


def _unused_bodies() -> Any:
    """Texts no message of their batch says any more, except a live alert's: its
    fan-out may be writing rows for them, unseen until it commits."""
    from messaging.models import OutboxBody, OutboxMessage

    return OutboxBody.objects.exclude(
        Exists(OutboxMessage.objects.filter(batch=OuterRef("batch")))
    ).exclude(batch__in=_live_batches())


def count_outbox(cutoff: datetime) -> Counts:
    """Contacts are counted as they stand: those the messages due would free are
    found only once the messages are gone."""
    counts: Counts = {}
    _add(counts, "messages", _due_outbox(cutoff).count())
    _add(counts, "contacts", _unused_contacts(cutoff).count())
    return counts


def purge_outbox(cutoff: datetime, size: int) -> Counts:
    counts: Counts = {}
    for batch in _each_batch(_due_outbox(cutoff), size):
        _add(counts, "messages", _due_outbox(cutoff).filter(pk__in=batch).delete()[0])
    for batch in _each_batch(_unused_bodies(), size):
        _add(counts, "bodies", _unused_bodies().filter(pk__in=batch).delete()[0])
    # A number may be written to again at any moment (contact_for): each delete checks
    # again, in its statement, that no message or subscriber points to the contact.
    for batch in _each_batch(_unused_contacts(cutoff), size):
        _add(counts, "contacts", _unused_contacts(cutoff).filter(pk__in=batch).delete()[0])
    return counts


# --- the rules, in the order a purge runs them ------------------------------------------------

# --- family-support cases -------------------------------------------------------------------


def _due_cases(cutoff: datetime) -> Any:
    from cases.models import Case, CaseStatus

    return Case.objects.filter(
        status=CaseStatus.CLOSED, closed_at__lte=cutoff, key_destroyed_at__isnull=True
    )


def count_closed_cases(cutoff: datetime) -> Counts:
    counts: Counts = {}
    _add(counts, "cases", _due_cases(cutoff).count())
    return counts


def purge_closed_cases(cutoff: datetime, size: int) -> Counts:
    """Crypto-shred closed cases: each case's key is destroyed in the key store, which
    no database backup contains (cases.keystore), so the case is unreadable everywhere.
    ``shred_case`` checks the case and the cutoff again under a row lock (a case
    reopened, or reopened and closed again, meanwhile is kept)."""
    from cases import actions
    from cases.models import Case

    counts: Counts = {}
    for batch in _each_batch(_due_cases(cutoff), size):
        for case in Case.objects.filter(pk__in=batch, closed_at__lte=cutoff):
            if actions.shred_case(case=case, closed_before=cutoff):
                _add(counts, "cases", 1)
    return counts


RULES: tuple[Rule, ...] = (
    Rule(
        "provider_copies",
        _("Provider's copies"),
        _(
            "The SMS and voice provider's own copies of messages and calls (numbers and "
            "texts), deleted through its API once we have processed or sent them."
        ),
        default_days=1,
        min_days=0,
        max_days=30,
        count=count_provider_copies,
        purge=purge_provider_copies,
    ),
    Rule(
        "voicemail_recordings",
        _("Voicemail recordings"),
        _(
            "Callers' recorded messages: deleted at the provider, and their address and "
            "transcript forgotten here."
        ),
        default_days=7,
        min_days=1,
        max_days=30,
        count=count_recordings,
        purge=purge_recordings,
    ),
    Rule(
        "unverified_reports",
        _("Reports of unverified and false incidents"),
        _(
            "Reports (with photos) of incidents that were not verified, with the "
            "responders' field reports and evidence and the reasons on the timeline, "
            "counted from the incident's last change."
        ),
        default_days=14,
        min_days=1,
        max_days=30,
        count=count_unverified_reports,
        purge=purge_unverified_reports,
    ),
    Rule(
        "unlinked_reports",
        _("Reports not linked to an incident"),
        _("Reports never grouped into an incident, or dismissed, with their photos."),
        default_days=30,
        min_days=1,
        max_days=90,
        count=count_unlinked_reports,
        purge=purge_unlinked_reports,
    ),
    Rule(
        "closed_contacts",
        _("Reporters' numbers after their incident closes"),
        _(
            "The number (and its keyed hash) on reports, their texts and calls, counted "
            "from the incident's closing; 0 means at the next purge."
        ),
        default_days=0,
        min_days=0,
        max_days=30,
        count=count_closed_contacts,
        purge=purge_closed_contacts,
    ),
    Rule(
        "call_numbers",
        _("Callers' numbers on calls"),
        _("The number of every ended call, called back or not."),
        default_days=30,
        min_days=1,
        max_days=90,
        count=count_call_numbers,
        purge=purge_call_numbers,
    ),
    Rule(
        "inbound_messages",
        _("Texts as received"),
        _(
            "Incoming texts (sender, words, media links) and our replies; reports keep "
            "their own copy under the report rules."
        ),
        default_days=7,
        min_days=1,
        max_days=30,
        count=count_inbound,
        purge=purge_inbound,
    ),
    Rule(
        "stopped_subscribers",
        _("Alert subscribers who stopped"),
        _(
            "Subscribers who stopped, or never confirmed, with their areas. Numbers that "
            "texted STOP stay blocked."
        ),
        default_days=30,
        min_days=1,
        max_days=365,
        count=count_subscribers,
        purge=purge_subscribers,
    ),
    Rule(
        "outbox_messages",
        _("Texts we sent, and the numbers we texted"),
        _(
            "Sent messages (replies, offers, alerts, codes), except what live alerts and "
            "open offers still need, then every number no message or subscriber uses."
        ),
        default_days=7,
        min_days=1,
        max_days=90,
        count=count_outbox,
        purge=purge_outbox,
    ),
    Rule(
        "closed_cases",
        _("Closed family-support cases"),
        _(
            "Counted from the case's closing: its key is destroyed, so nothing about the "
            "person can be read any more, here or in any database backup; contacts, "
            "notes, tasks and hearings are deleted."
        ),
        default_days=90,
        min_days=7,
        max_days=365,
        count=count_closed_cases,
        purge=purge_closed_cases,
    ),
)
RULES_BY_KEY = {rule.key: rule for rule in RULES}


# --- periods -------------------------------------------------------------------------------


def periods() -> dict[str, int]:
    """Each rule's period in days: the coordinators' choice, or the default."""
    chosen = dict(RetentionPolicy.objects.values_list("rule", "days"))
    return {
        rule.key: min(rule.max_days, max(rule.min_days, chosen.get(rule.key, rule.default_days)))
        for rule in RULES
    }


def set_period(*, actor: Any, rule: str, days: int) -> RetentionPolicy:
    """A coordinator's new period for one rule, within its bounds; audited."""
    found = RULES_BY_KEY.get(rule)
    if found is None:
        raise RetentionRefused(_("Unknown retention rule."))
    if not found.min_days <= days <= found.max_days:
        raise RetentionRefused(
            _("Choose between %(min)d and %(max)d days.")
            % {"min": found.min_days, "max": found.max_days}
        )
    user = actor if getattr(actor, "is_authenticated", False) else None
    with transaction.atomic():
        policy = RetentionPolicy.objects.select_for_update().filter(rule=rule).first()
        previous = policy.days if policy is not None else found.default_days
        if policy is None:
            policy = RetentionPolicy(rule=rule)
        policy.days = days
        policy.updated_at = timezone.now()
        policy.updated_by = user
        policy.save()
        AuditEvent.objects.create(
            actor=user,
            action=AuditAction.RETENTION_CHANGED,
            target_type=RetentionPolicy._meta.label_lower,
            target_id=rule,
            detail={"rule": rule, "from_days": previous, "to_days": days},
        )
    return policy


# --- running a purge ------------------------------------------------------------------------


def purge(
    *,
    dry_run: bool = False,
    now: datetime | None = None,
    batch_size: int = BATCH_SIZE,
    progress: Callable[[Outcome], object] | None = None,
) -> list[Outcome]:
    """Run every rule once (or, dry, count what each would remove). Each rule that
    removed something writes one audit event with counts only."""
    moment = now or timezone.now()
    chosen = periods()
    outcomes = []
    for rule in RULES:
        days = chosen[rule.key]
        cutoff = moment - timedelta(days=days)
        outcome = Outcome(rule, days)
        if dry_run:
            outcome.counts = rule.count(cutoff)
        else:
            outcome.counts = rule.purge(cutoff, batch_size)
            if outcome.total:
                AuditEvent.objects.create(
                    action=AuditAction.RETENTION_PURGED,
                    target_type=RetentionPolicy._meta.label_lower,
                    target_id=rule.key,
                    detail={"rule": rule.key, "days": days, **outcome.counts},
                )
        outcomes.append(outcome)
        if progress is not None:
            progress(outcome)
    return outcomes


def purge_exclusively(**options: Any) -> list[Outcome] | None:
    """A purge, unless another process is running one (then None)."""
    with locks.exclusive(LOCK_NAME, ttl_seconds=6 * 3600) as acquired:
        if not acquired:
            return None
        return purge(**options)


_running = threading.Lock()


def start_scheduled_purge() -> bool:
    """The worker's periodic job: a purge in a thread of its own, so deleting many
    copies at the provider never holds up the other periodic jobs. Returns whether one
    started (not when one is still running in this process)."""
    if not _running.acquire(blocking=False):
        return False

    def run() -> None:
        try:
            outcomes = purge_exclusively()
            if outcomes:
                removed = sum(outcome.total for outcome in outcomes)
                if removed:
                    logger.info("Retention purge removed %d items.", removed)
        except Exception:
            logger.exception("The retention purge failed; it runs again at the next interval.")
        finally:
            connections.close_all()
            _running.release()

    threading.Thread(target=run, name="retention-purge", daemon=True).start()
    return True


def interval_seconds() -> float:
    return float(getattr(settings, "RR_RETENTION_INTERVAL_SECONDS", DEFAULT_INTERVAL_SECONDS))
