"""SMS reminders of hearings to the family and to the volunteers going with them.

- ``schedule`` runs inside every write that can change who is reminded or when (a
  hearing added, moved or cancelled, a sign-up made or cancelled): it brings the
  hearing's ``HearingReminder`` rows in line with what is wanted now. A reminder is due
  the day before at 18:00 and the morning of at 08:00, in the network's time zone
  (``TIME_ZONE``); a lead already past is not scheduled. A moved hearing re-arms its
  rows (one per hearing, recipient and lead), so the new time is sent even where the
  old one already was.
- ``send_due`` (periodic) claims due rows under ``SELECT … FOR UPDATE SKIP LOCKED``
  and, in the same transaction, queues each SMS in the outbox and marks the row sent:
  two senders at once, or a sender run again after a crash, send each reminder once.
  Everything is checked again at that moment, so a reminder of a cancelled hearing, of
  a case that is no longer open, to a family member who withdrew consent or a volunteer
  who cancelled, or to a number that texted STOP, is skipped instead.

What an SMS may say: a text can be read by anyone holding the phone, so the family's
names the detained person by first name only, and a volunteer's names nobody at all:
kind, date, time, place, and the language to speak. Never the A-number, the
birth date or notes.
"""

from __future__ import annotations

import logging
import unicodedata
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from typing import Protocol
from zoneinfo import ZoneInfo

from django.conf import settings
from django.db import transaction
from django.db.models import QuerySet
from django.utils import formats, timezone, translation
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from cases.models import (
    Accompaniment,
    AccompanimentStatus,
    Case,
    CaseStatus,
    FamilyContact,
    Hearing,
    HearingKind,
    HearingReminder,
    ReminderLead,
    ReminderStatus,
)
from core import audit, phones
from core.models import AuditAction
from core.sms import is_gsm7
from messaging.models import OptOut, OutboxKind
from messaging.outbox import queue_sms

logger = logging.getLogger(__name__)

DAY_BEFORE_AT = time(18, 0)
MORNING_OF_AT = time(8, 0)
# A morning reminder this close to the start is no use; the evening one has gone.
MORNING_MIN_AHEAD = timedelta(hours=1)
# Each batch is one transaction that holds the write lock on SQLite (about ten queries
# a reminder): small batches keep intake's writes from waiting behind it.
SEND_BATCH = 20
# A released person still has hearings and check-ins; a closed case, or one whose person
# was removed from the country, gets no more reminders.
ACTIVE_CASE_STATUSES = frozenset({CaseStatus.OPEN, CaseStatus.RELEASED})

# How each kind reads inside a sentence of an SMS.
KIND_IN_SMS = {
    HearingKind.HEARING: gettext_lazy("an immigration court hearing"),
    HearingKind.ICE_CHECKIN: gettext_lazy("an ICE check-in"),
    HearingKind.COURT_DATE: gettext_lazy("a court date"),
}


def network_zone() -> ZoneInfo:
    return ZoneInfo(settings.TIME_ZONE)


def due_times(starts_at: datetime) -> dict[ReminderLead, datetime]:
    """When each lead is due for a hearing at ``starts_at`` (local wall-clock times, so
    a daylight-saving change in between keeps them at 18:00 and 08:00)."""
    zone = network_zone()
    day = starts_at.astimezone(zone).date()
    leads = {
        ReminderLead.DAY_BEFORE: datetime.combine(day - timedelta(days=1), DAY_BEFORE_AT, zone)
    }
    morning = datetime.combine(day, MORNING_OF_AT, zone)
    if starts_at - morning >= MORNING_MIN_AHEAD:
        leads[ReminderLead.MORNING_OF] = morning
    return leads


# A recipient: ("contact", pk) or ("responder", pk).
Recipient = tuple[str, int]


def _recipient(reminder: HearingReminder) -> Recipient:
    if reminder.contact_id is not None:
        return ("contact", reminder.contact_id)
    return ("responder", int(reminder.responder_id or 0))


def _wanted_recipients(hearing: Hearing) -> list[Recipient]:
    """Family members who agreed to texts and have a phone, and the volunteers signed
    up (active ones)."""
    contacts = [
        ("contact", contact.pk)
        for contact in FamilyContact.objects.filter(case_id=hearing.case_id, sms_consent=True)
        if contact.phone
    ]
    volunteers = [
        ("responder", pk)
        for pk in Accompaniment.objects.filter(
            hearing=hearing, status=AccompanimentStatus.SIGNED_UP, responder__active=True
        ).values_list("responder_id", flat=True)
    ]
    return contacts + volunteers


def _is_live(hearing: Hearing, now: datetime) -> bool:
    case = hearing.case
    return (
        hearing.cancelled_at is None
        and case.status in ACTIVE_CASE_STATUSES
        and not case.shredded
        and hearing.starts_at > now
    )


@dataclass(frozen=True)
class Scheduled:
    created: int
    rearmed: int
    skipped: int


def schedule(*, hearing: Hearing, moved: bool = False, now: datetime | None = None) -> Scheduled:
    """Bring the hearing's reminders in line with what is wanted now (call it inside the
    transaction of the change). ``moved``: the hearing's time changed, so reminders
    already sent told the old time and are armed again for the new one."""
    moment = now or timezone.now()
    existing = {
        (_recipient(row), ReminderLead(row.lead)): row
        for row in HearingReminder.objects.select_for_update().filter(hearing=hearing)
    }
    wanted: dict[tuple[Recipient, ReminderLead], datetime] = {}
    if _is_live(hearing, moment):
        leads = {lead: due for lead, due in due_times(hearing.starts_at).items() if due > moment}
        for recipient in _wanted_recipients(hearing):
            for lead, due in leads.items():
                wanted[(recipient, lead)] = due
    created = rearmed = skipped = 0
    for key, row in existing.items():
        wanted_due = wanted.get(key)
        if wanted_due is None:
            if row.status == ReminderStatus.PENDING:
                row.status = ReminderStatus.SKIPPED
                row.skip_reason = "not_wanted"
                row.save(update_fields=["status", "skip_reason"])
                skipped += 1
            continue
        if row.status == ReminderStatus.SENT and not moved:
            continue  # this time was already sent
        if row.status != ReminderStatus.PENDING or row.due_at != wanted_due:
            rearmed += row.status != ReminderStatus.PENDING
            row.status = ReminderStatus.PENDING
            row.due_at = wanted_due
            row.sent_at = None
            row.outbox_message = None
            row.skip_reason = ""
            row.save(update_fields=["status", "due_at", "sent_at", "outbox_message", "skip_reason"])
    new = [
        HearingReminder(
            hearing=hearing,
            contact_id=recipient[1] if recipient[0] == "contact" else None,
            responder_id=recipient[1] if recipient[0] == "responder" else None,
            lead=lead,
            due_at=due,
        )
        for (recipient, lead), due in wanted.items()
        if (recipient, lead) not in existing
    ]
    HearingReminder.objects.bulk_create(new)
    created = len(new)
    if wanted:
        transaction.on_commit(_wake_sender_if_due)
    return Scheduled(created=created, rearmed=rearmed, skipped=skipped)


def _wake_sender_if_due() -> None:
    """A reminder due at once (a hearing added late in the evening before) need not
    wait for the next periodic run."""
    if due_reminders(timezone.now()).exists():
        from cases.tasks import send_hearing_reminders

        send_hearing_reminders.enqueue()


def skip_for_case(*, case_id: int) -> int:
    """Skip every pending reminder of a case (it closed, or its person was removed):
    call it in that transaction. The sender checks the case again anyway."""
    return HearingReminder.objects.filter(
        hearing__case_id=case_id, status=ReminderStatus.PENDING
    ).update(status=ReminderStatus.SKIPPED, skip_reason="case_closed")


def reschedule_case(*, case: Case, now: datetime | None = None) -> None:
    """Schedule again every upcoming hearing of a case (its family contacts changed)."""
    moment = now or timezone.now()
    for hearing in Hearing.objects.select_related("case").filter(
        case=case, cancelled_at__isnull=True, starts_at__gt=moment
    ):
        schedule(hearing=hearing, now=moment)


def due_reminders(now: datetime) -> QuerySet[HearingReminder]:
    return HearingReminder.objects.filter(status=ReminderStatus.PENDING, due_at__lte=now)


# Sending


class _Dated(Protocol):
    @property
    def starts_at(self) -> datetime: ...


def gsm_spelling(word: str) -> str:
    """``word`` without its accents when only they keep it out of the GSM alphabet
    ("sábado" -> "sabado"): one such letter makes a whole text UCS-2, about twice the
    segments (and the cost) for every reminder on that day."""
    if is_gsm7(word):
        return word
    plain = "".join(c for c in unicodedata.normalize("NFD", word) if not unicodedata.combining(c))
    return plain if is_gsm7(plain) else word


def when_text(item: _Dated) -> str:
    """Weekday, date and time in the active language's own formats."""
    local = item.starts_at.astimezone(network_zone())
    return "{} {}, {}".format(
        gsm_spelling(formats.date_format(local, "l")),
        formats.date_format(local, "DATE_FORMAT"),
        formats.time_format(local, "TIME_FORMAT"),
    )


def first_name(full_name: str) -> str:
    parts = full_name.split()
    return parts[0] if parts else ""


def family_text(hearing: Hearing, person_name: str) -> str:
    """The family's reminder, in the active language: first name only."""
    name = first_name(person_name)
    values = {
        "network": settings.RR_NETWORK_NAME,
        "what": KIND_IN_SMS[HearingKind(hearing.kind)],
        "when": when_text(hearing),
        "place": hearing.place,
    }
    if name:
        return _("%(network)s reminder: %(what)s for %(name)s on %(when)s at %(place)s.") % {
            **values,
            "name": name,
        }
    return _("%(network)s reminder: %(what)s on %(when)s at %(place)s.") % values


def volunteer_text(hearing: Hearing, link: str) -> str:
    """A volunteer's reminder, in the active language: nothing that names the family."""
    from cases.hearings import language_name

    values = {
        "network": settings.RR_NETWORK_NAME,
        "what": KIND_IN_SMS[HearingKind(hearing.kind)],
        "when": when_text(hearing),
        "place": hearing.place,
        "link": link,
    }
    if hearing.language_needed:
        return _(
            "%(network)s reminder: you are going with a family to %(what)s on %(when)s at "
            "%(place)s. Language: %(language)s. Details or cancel: %(link)s"
        ) % {**values, "language": language_name(hearing.language_needed)}
    return (
        _(
            "%(network)s reminder: you are going with a family to %(what)s on %(when)s at "
            "%(place)s. Details or cancel: %(link)s"
        )
        % values
    )


@dataclass
class _Batch:
    """What the checks of one claimed batch need, each read once."""

    signed_up: set[tuple[int, int]]
    stopped: set[str]


def _load_batch(due: list[HearingReminder]) -> tuple[_Batch, dict[int, str]]:
    hearing_ids = {r.hearing_id for r in due}
    responder_ids = {r.responder_id for r in due if r.responder_id is not None}
    signed_up = set(
        Accompaniment.objects.filter(
            hearing_id__in=hearing_ids,
            responder_id__in=responder_ids,
            status=AccompanimentStatus.SIGNED_UP,
        ).values_list("hearing_id", "responder_id")
    )
    # Numbers of this batch, decrypted once each; only their keyed hashes are compared.
    numbers: dict[int, str] = {}
    for reminder in due:
        number = _number(reminder)
        if number:
            numbers[reminder.pk] = number
    hashes = {phones.phone_hash(n) for n in numbers.values()}
    stopped = set(OptOut.objects.filter(phone_hash__in=hashes).values_list("phone_hash", flat=True))
    return _Batch(signed_up, stopped), numbers


def _number(reminder: HearingReminder) -> str:
    if reminder.contact is not None:
        if reminder.hearing.case.shredded:
            return ""
        return str(reminder.contact.phone or "")
    if reminder.responder is not None:
        return str(reminder.responder.phone or "")
    return ""


def _why_not(  # noqa: PLR0911 - one reason for each check, in order
    reminder: HearingReminder, batch: _Batch, number: str, now: datetime
) -> str:
    """Why this reminder must not go out now ("" when it may)."""
    hearing = reminder.hearing
    case = hearing.case
    if hearing.cancelled_at is not None:
        return "cancelled"
    if case.status not in ACTIVE_CASE_STATUSES or case.shredded:
        return "case_closed"
    if hearing.starts_at <= now:
        return "too_late"
    if not number:
        return "no_number"
    if reminder.contact is not None:
        if not reminder.contact.sms_consent or reminder.contact.case_id != case.pk:
            return "no_consent"
    else:
        responder = reminder.responder
        if responder is None or not responder.active:
            return "inactive"
        if (hearing.pk, responder.pk) not in batch.signed_up:
            return "not_signed_up"
    if phones.phone_hash(number) in batch.stopped:
        return "opted_out"
    return ""


def _superseded(due: list[HearingReminder]) -> set[int]:
    """When a recipient has more than one reminder of a hearing due at once (the sender
    was down for a night), only the latest goes out."""
    latest: dict[tuple[int, Recipient], HearingReminder] = {}
    for reminder in due:
        key = (reminder.hearing_id, _recipient(reminder))
        if key not in latest or reminder.due_at > latest[key].due_at:
            latest[key] = reminder
    keep = {r.pk for r in latest.values()}
    return {r.pk for r in due if r.pk not in keep}


def _language(reminder: HearingReminder) -> str:
    from dispatch.actions import responder_language

    if reminder.contact is not None:
        language = reminder.contact.language
        return language if language in settings.RR_LANGUAGES else str(settings.RR_LANGUAGES[0])
    if reminder.responder is None:
        raise ValueError("A reminder names a contact or a responder.")
    return responder_language(reminder.responder)


def _text(reminder: HearingReminder, batch: _Batch) -> str:
    from cases.hearings import volunteer_link

    hearing = reminder.hearing
    if reminder.contact is not None:
        return family_text(hearing, str(hearing.case.person_name or ""))
    if reminder.responder is None:
        raise ValueError("A reminder names a contact or a responder.")
    return volunteer_text(hearing, volunteer_link(reminder.responder))


def _queue(reminder: HearingReminder, number: str, batch: _Batch, moment: datetime) -> None:
    language = _language(reminder)
    with translation.override(language):
        body = _text(reminder, batch)
    reminder.outbox_message = queue_sms(
        to=number,
        body=body,
        language=language,
        kind=OutboxKind.REMINDER,
        # Useless once the hearing has begun.
        valid_until=reminder.hearing.starts_at,
    )
    reminder.status = ReminderStatus.SENT
    reminder.sent_at = moment
    reminder.save(update_fields=["outbox_message", "status", "sent_at"])


@dataclass(frozen=True)
class SendResult:
    sent: int
    skipped: int


def send_due(*, now: datetime | None = None, limit: int = SEND_BATCH) -> SendResult:
    """Send the reminders that are due, once each. Safe to run from several workers at
    once and again after a crash: rows are claimed under a row lock that skips rows
    another sender holds, and marked in the transaction that queues their SMS."""
    moment = now or timezone.now()
    sent = skipped = 0
    while True:
        with transaction.atomic():
            due = list(
                due_reminders(moment)
                .select_for_update(skip_locked=True, of=("self",))
                .select_related("hearing", "hearing__case", "contact", "responder")
                .order_by("due_at", "pk")[:limit]
            )
            if not due:
                break
            batch, numbers = _load_batch(due)
            sent_per_hearing: dict[int, int] = {}
            superseded = _superseded(due)
            for reminder in due:
                number = numbers.get(reminder.pk, "")
                reason = "superseded" if reminder.pk in superseded else ""
                reason = reason or _why_not(reminder, batch, number, moment)
                if reason:
                    reminder.status = ReminderStatus.SKIPPED
                    reminder.skip_reason = reason
                    reminder.save(update_fields=["status", "skip_reason"])
                    skipped += 1
                    logger.info("Hearing reminder %s skipped (%s).", reminder.pk, reason)
                    continue
                try:
                    # A savepoint: one reminder that cannot be queued (a number the
                    # outbox refuses) must not hold back the rest, run after run.
                    with transaction.atomic():
                        _queue(reminder, number, batch, moment)
                except Exception:
                    logger.exception("Hearing reminder %s could not be queued.", reminder.pk)
                    reminder.status = ReminderStatus.SKIPPED
                    reminder.skip_reason = "error"
                    reminder.save(update_fields=["status", "skip_reason"])
                    skipped += 1
                    continue
                sent_per_hearing[reminder.hearing_id] = (
                    sent_per_hearing.get(reminder.hearing_id, 0) + 1
                )
                sent += 1
            # One audit event per hearing: how many went out, never to whom or what.
            hearings_by_id = {r.hearing_id: r.hearing for r in due}
            for hearing_id, count in sent_per_hearing.items():
                audit.record(
                    actor=None,
                    action=AuditAction.REMINDERS_SENT,
                    target=hearings_by_id[hearing_id],
                    count=count,
                )
        if len(due) < limit:
            break
    return SendResult(sent=sent, skipped=skipped)


def periodic_send() -> None:
    send_due()
