"""Hearings, ICE check-ins and court dates of a case, and the volunteers who go along.

Writes (keyword-only, one transaction, one access event on the case's trail, reminders
scheduled in the same transaction) and the reads behind the case page's hearings
section, the calendar and the volunteers' sign-up page.

What a volunteer sees of a hearing: its kind, date, time, place and the language to
speak, and how many have signed up. Never the person's name, the case or the family.
"""

from __future__ import annotations

import secrets
import uuid
from collections import defaultdict
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from django.conf import settings
from django.core import signing
from django.db import IntegrityError, transaction
from django.db.models import Count, F, Q, QuerySet
from django.http import HttpRequest
from django.urls import reverse
from django.utils import timezone, translation
from django.utils.translation import gettext as _

from accounts.models import Role, User
from cases import reminders
from cases.actions import record_access
from cases.models import (
    AccessAction,
    Accompaniment,
    AccompanimentStatus,
    Case,
    Hearing,
    HearingKind,
    HearingReminder,
    ReminderStatus,
)
from core import audit
from core.models import AuditAction
from dispatch.forms import LANGUAGE_NAMES
from dispatch.models import ROLE_BITS, Responder, ResponderRole

# How far ahead volunteers are shown hearings to sign up for.
SIGN_UP_HORIZON = timedelta(days=60)
# Enough volunteers: a hearing with this many signed up is no longer "needs people".
ENOUGH_VOLUNTEERS = 2
VOLUNTEER_SALT = "cases.volunteer-link"


class HearingRefused(ValueError):
    """The change is not possible; the message says why and nothing changed."""


def language_name(code: str) -> str:
    return str(LANGUAGE_NAMES.get(code, code))


# Writes


@dataclass(frozen=True)
class HearingData:
    kind: str
    starts_at: datetime
    place: str
    notes: str = ""
    language_needed: str = ""
    accompaniment_wanted: bool = True


def _check(data: HearingData, *, now: datetime, new_time: bool) -> None:
    if data.kind not in HearingKind.values:
        raise HearingRefused(_("Choose what kind of date this is."))
    if timezone.is_naive(data.starts_at):
        raise HearingRefused(_("The date and time need a time zone."))
    if new_time and data.starts_at <= now:
        raise HearingRefused(_("The date and time must be in the future."))
    if data.starts_at > now + timedelta(days=3 * 366):
        raise HearingRefused(_("The date is more than three years away; check the year."))
    if not data.place.strip():
        raise HearingRefused(_("Say where it takes place."))
    if data.language_needed and data.language_needed not in LANGUAGE_NAMES:
        raise HearingRefused(_("Choose a language from the list."))


def _locked_case(case: Case) -> Case:
    locked = Case.objects.select_for_update().get(pk=case.pk)
    if locked.shredded:
        raise HearingRefused(_("This case was purged and can no longer be changed."))
    if locked.status not in reminders.ACTIVE_CASE_STATUSES:
        raise HearingRefused(_("This case is closed; reopen it to add or change dates."))
    return locked


def _new_code(now: datetime) -> str:
    """Four digits no other upcoming hearing has, so ACCOMPANY 4821 names one hearing."""
    taken = set(
        Hearing.objects.filter(starts_at__gt=now - timedelta(days=1))
        .exclude(code="")
        .values_list("code", flat=True)
    )
    for _attempt in range(50):
        code = f"{secrets.randbelow(9000) + 1000}"
        if code not in taken:
            return code
    raise HearingRefused(_("Too many upcoming hearings to give this one a code; try again."))


def _apply(hearing: Hearing, data: HearingData) -> None:
    hearing.kind = data.kind
    hearing.starts_at = data.starts_at
    hearing.place = data.place.strip()
    hearing.notes = data.notes.strip()
    hearing.language_needed = data.language_needed
    hearing.accompaniment_wanted = data.accompaniment_wanted


def add_hearing(*, actor: User, case: Case, data: HearingData) -> Hearing:
    now = timezone.now()
    _check(data, now=now, new_time=True)
    with transaction.atomic():
        case = _locked_case(case)
        hearing = Hearing(case=case, created_by=actor, code=_new_code(now))
        _apply(hearing, data)
        hearing.created_at = hearing.updated_at = now
        hearing.save()
        hearing.case = case
        scheduled = reminders.schedule(hearing=hearing, now=now)
        record_access(actor=actor, case=case, action=AccessAction.CHANGED, what="hearing:added")
        audit.record(
            actor=actor,
            action=AuditAction.HEARING_SAVED,
            target=hearing,
            created=True,
            reminders=scheduled.created,
        )
    return hearing


def _locked_hearing(hearing: Hearing) -> Hearing:
    case = _locked_case(hearing.case)
    locked = Hearing.objects.select_for_update().get(pk=hearing.pk)
    locked.case = case
    if locked.cancelled_at is not None:
        raise HearingRefused(_("This date was cancelled; add a new one instead."))
    return locked


def change_hearing(*, actor: User, hearing: Hearing, data: HearingData) -> Hearing:
    """Edit a hearing. A new time must be in the future and re-arms the reminders (the
    ones sent told the old time); the same time keeps those already sent."""
    now = timezone.now()
    with transaction.atomic():
        hearing = _locked_hearing(hearing)
        moved = data.starts_at != hearing.starts_at
        _check(data, now=now, new_time=moved)
        if not moved and hearing.starts_at <= now:
            raise HearingRefused(_("This date has passed and can no longer be changed."))
        _apply(hearing, data)
        hearing.updated_at = now
        hearing.save()
        scheduled = reminders.schedule(hearing=hearing, moved=moved, now=now)
        audit.record(
            actor=actor,
            action=AuditAction.HEARING_SAVED,
            target=hearing,
            created=False,
            moved=moved,
            reminders=scheduled.created + scheduled.rearmed,
        )
        record_access(
            actor=actor,
            case=hearing.case,
            action=AccessAction.CHANGED,
            what="hearing:moved" if moved else "hearing:changed",
        )
    return hearing


def cancel_hearing(*, actor: User, hearing: Hearing) -> Hearing:
    """Cancel a hearing: its pending reminders are skipped; volunteers' sign-ups stay on
    record but no reminder goes to them."""
    now = timezone.now()
    with transaction.atomic():
        hearing = _locked_hearing(hearing)
        hearing.cancelled_at = hearing.updated_at = now
        hearing.save(update_fields=["cancelled_at", "updated_at"])
        scheduled = reminders.schedule(hearing=hearing, now=now)
        audit.record(
            actor=actor,
            action=AuditAction.HEARING_CANCELLED,
            target=hearing,
            reminders_skipped=scheduled.skipped,
        )
        record_access(
            actor=actor, case=hearing.case, action=AccessAction.CHANGED, what="hearing:cancelled"
        )
    return hearing


def is_eligible(responder: Responder) -> bool:
    """Active volunteers with the accompaniment role may go with families."""
    return responder.active and responder.has_role(ResponderRole.ACCOMPANIMENT)


def _open_for_sign_up(hearing: Hearing, now: datetime) -> bool:
    return (
        hearing.cancelled_at is None
        and hearing.accompaniment_wanted
        and hearing.case.status in reminders.ACTIVE_CASE_STATUSES
        and not hearing.case.shredded
        and now < hearing.starts_at <= now + SIGN_UP_HORIZON
    )


@dataclass(frozen=True)
class SignUpResult:
    accompaniment: Accompaniment
    changed: bool


def sign_up(*, responder: Responder, hearing: Hearing) -> SignUpResult:
    """A volunteer signs up (from their page or by SMS). Signing up twice changes
    nothing; after a cancellation it signs them up again."""
    now = timezone.now()
    if not is_eligible(responder):
        raise HearingRefused(_("Only active accompaniment volunteers can sign up."))
    with transaction.atomic():
        locked = Hearing.objects.select_for_update().select_related("case").get(pk=hearing.pk)
        if not _open_for_sign_up(locked, now):
            raise HearingRefused(_("This date is no longer open for sign-up."))
        existing = (
            Accompaniment.objects.select_for_update()
            .filter(hearing=locked, responder=responder)
            .first()
        )
        if existing is not None and existing.status == AccompanimentStatus.SIGNED_UP:
            return SignUpResult(existing, changed=False)
        if existing is None:
            try:
                with transaction.atomic():
                    existing = Accompaniment.objects.create(hearing=locked, responder=responder)
            except IntegrityError:
                # The same volunteer's other request got there first.
                return SignUpResult(
                    Accompaniment.objects.get(hearing=locked, responder=responder), changed=False
                )
        else:
            existing.status = AccompanimentStatus.SIGNED_UP
            existing.cancelled_at = None
            existing.cancelled_by = None
            existing.save(update_fields=["status", "cancelled_at", "cancelled_by"])
        reminders.schedule(hearing=locked, now=now)
        audit.record(
            actor=None, action=AuditAction.ACCOMPANIMENT_CHANGED, target=existing, signed_up=True
        )
        record_access(
            actor=None, case=locked.case, action=AccessAction.CHANGED, what="accompaniment:signed"
        )
    return SignUpResult(existing, changed=True)


def cancel_sign_up(*, actor: User | None, accompaniment: Accompaniment) -> bool:
    """The volunteer (actor None) or family support cancels a sign-up; their pending
    reminders are skipped. Returns whether anything changed."""
    now = timezone.now()
    with transaction.atomic():
        locked = (
            Accompaniment.objects.select_for_update()
            .select_related("hearing", "hearing__case")
            .get(pk=accompaniment.pk)
        )
        if locked.status == AccompanimentStatus.CANCELLED:
            return False
        locked.status = AccompanimentStatus.CANCELLED
        locked.cancelled_at = now
        locked.cancelled_by = actor
        locked.save(update_fields=["status", "cancelled_at", "cancelled_by"])
        reminders.schedule(hearing=locked.hearing, now=now)
        audit.record(
            actor=actor, action=AuditAction.ACCOMPANIMENT_CHANGED, target=locked, signed_up=False
        )
        record_access(
            actor=actor,
            case=locked.hearing.case,
            action=AccessAction.CHANGED,
            what="accompaniment:cancelled",
        )
    return True


# How many volunteers one click asks by SMS; asking again reaches the next ones.
INVITE_BATCH = 10


def invite_text(hearing: Hearing, link: str) -> str:
    """The invitation, in the active language: what, when, where, the language; nothing
    about the person."""
    values = {
        "network": settings.RR_NETWORK_NAME,
        "what": reminders.KIND_IN_SMS[HearingKind(hearing.kind)],
        "when": reminders.when_text(hearing),
        "place": hearing.place,
        "code": hearing.code,
        "link": link,
    }
    if hearing.language_needed:
        return _(
            "%(network)s: a family needs someone to go with them to %(what)s on %(when)s at "
            "%(place)s. Language: %(language)s. Reply ACCOMPANY %(code)s to go, or see all "
            "dates: %(link)s"
        ) % {**values, "language": language_name(hearing.language_needed)}
    return (
        _(
            "%(network)s: a family needs someone to go with them to %(what)s on %(when)s at "
            "%(place)s. Reply ACCOMPANY %(code)s to go, or see all dates: %(link)s"
        )
        % values
    )


def invite_volunteers(*, actor: User, hearing: Hearing) -> int:
    """Ask eligible volunteers by SMS, those who speak the language needed first. Each
    volunteer is asked once per hearing (the outbox's dedupe key); those signed up or
    who opted out are not asked. Returns how many were asked now."""
    from dispatch.actions import responder_language
    from messaging.models import OptOut, OutboxKind, OutboxMessage
    from messaging.outbox import queue_sms

    now = timezone.now()
    with transaction.atomic():
        hearing = _locked_hearing(hearing)
        if not _open_for_sign_up(hearing, now):
            raise HearingRefused(_("This date is not open for volunteers."))
        prefix = f"hearing-invite:{hearing.uuid.hex}:"
        asked = {
            str(key).removeprefix(prefix)
            for key in OutboxMessage.objects.filter(dedupe_key__startswith=prefix).values_list(
                "dedupe_key", flat=True
            )
        }
        going = set(
            Accompaniment.objects.filter(
                hearing=hearing, status=AccompanimentStatus.SIGNED_UP
            ).values_list("responder_id", flat=True)
        )
        candidates = [
            r
            for r in eligible_responders().order_by("pk")
            if r.uuid.hex not in asked and r.pk not in going
        ]
        stopped = set(
            OptOut.objects.filter(phone_hash__in=[r.phone_hash for r in candidates]).values_list(
                "phone_hash", flat=True
            )
        )
        candidates = [r for r in candidates if r.phone_hash not in stopped]
        needed = hearing.language_needed
        candidates.sort(key=lambda r: bool(needed) and not r.speaks(needed))
        invited = 0
        for volunteer in candidates[:INVITE_BATCH]:
            language = responder_language(volunteer)
            with translation.override(language):
                body = invite_text(hearing, volunteer_link(volunteer))
            message = queue_sms(
                to=volunteer.phone,
                body=body,
                language=language,
                kind=OutboxKind.REMINDER,
                valid_until=hearing.starts_at,
            )
            message.dedupe_key = prefix + volunteer.uuid.hex
            message.save(update_fields=["dedupe_key"])
            invited += 1
        if not invited:
            raise HearingRefused(_("Every volunteer who can go has been asked already."))
        audit.record(
            actor=actor, action=AuditAction.VOLUNTEERS_INVITED, target=hearing, count=invited
        )
        record_access(
            actor=actor, case=hearing.case, action=AccessAction.CHANGED, what="hearing:invited"
        )
    return invited


# Reads for staff


def readable_cases(user: Any) -> Q:
    """The cases ``user`` may read (cases.rules.may_read_case), as a filter on Case."""
    if not getattr(user, "is_authenticated", False):
        return Q(pk__in=[])
    if user.has_role(Role.COORDINATOR):
        return Q()
    if user.has_role(Role.FAMILY_SUPPORT):
        return Q(assigned_to__isnull=True) | Q(assigned_to=user)
    return Q(pk__in=[])


def hearing_for(user: Any, hearing_uuid: uuid.UUID) -> Hearing | None:
    """The hearing, if its case is one ``user`` may read (else None: the view says 404)."""
    hearing = Hearing.objects.select_related("case").filter(uuid=hearing_uuid).first()
    if hearing is None or not user.has_perm("cases.view_case", hearing.case):
        return None
    return hearing


def case_for(user: Any, case_uuid: uuid.UUID) -> Case | None:
    case = Case.objects.filter(uuid=case_uuid).first()
    if case is None or not user.has_perm("cases.view_case", case):
        return None
    return case


@dataclass
class HearingRow:
    hearing: Hearing
    volunteers: list[Accompaniment]
    reminders_sent: int
    reminders_pending: int
    signed_up_count: int

    @property
    def language_label(self) -> str:
        code = self.hearing.language_needed
        return language_name(code) if code else ""


def _rows(hearings: list[Hearing], *, with_volunteers: bool) -> list[HearingRow]:
    """Each hearing with its reminder and sign-up counts (and its volunteers), in three
    queries in all however many hearings there are."""
    ids = [h.pk for h in hearings]
    signed_up = signed_up_counts(ids) if ids else {}
    volunteers: dict[int, list[Accompaniment]] = defaultdict(list)
    if with_volunteers and ids:
        for accompaniment in (
            Accompaniment.objects.filter(hearing_id__in=ids)
            .select_related("responder", "cancelled_by")
            .order_by("created_at", "pk")
        ):
            volunteers[accompaniment.hearing_id].append(accompaniment)
    counts: dict[tuple[int, str], int] = {}
    if ids:
        for hearing_id, status, count in (
            HearingReminder.objects.filter(hearing_id__in=ids)
            .values_list("hearing_id", "status")
            .annotate(n=Count("pk"))
            .values_list("hearing_id", "status", "n")
        ):
            counts[(hearing_id, status)] = count
    return [
        HearingRow(
            hearing=h,
            volunteers=volunteers.get(h.pk, []),
            reminders_sent=counts.get((h.pk, ReminderStatus.SENT), 0),
            reminders_pending=counts.get((h.pk, ReminderStatus.PENDING), 0),
            signed_up_count=signed_up.get(h.pk, 0),
        )
        for h in hearings
    ]


def section_context(request: HttpRequest, case: Case) -> dict[str, Any]:
    """The case page's hearings section: upcoming first (soonest first), then past and
    cancelled ones (latest first)."""
    now = timezone.now()
    hearings = list(Hearing.objects.filter(case=case).order_by("starts_at", "pk"))
    upcoming = [h for h in hearings if h.cancelled_at is None and h.starts_at > now]
    other = sorted(
        (h for h in hearings if h.cancelled_at is not None or h.starts_at <= now),
        key=lambda h: h.starts_at,
        reverse=True,
    )
    for hearing in hearings:
        hearing.case = case
    return {
        "hearing_rows": _rows(upcoming, with_volunteers=True),
        "past_hearing_rows": _rows(other, with_volunteers=True),
        "hearings_can_change": case.status in reminders.ACTIVE_CASE_STATUSES and not case.shredded,
    }


@dataclass(frozen=True)
class CalendarRange:
    start: date
    end: date  # exclusive
    span: str  # "week" or "month"

    @property
    def previous(self) -> date:
        if self.span == "week":
            return self.start - timedelta(days=7)
        return (self.start - timedelta(days=1)).replace(day=1)

    @property
    def next(self) -> date:
        return self.end

    @property
    def last(self) -> date:
        """The range's last day (``end`` is the day after it)."""
        return self.end - timedelta(days=1)


def calendar_range(start: date, span: str) -> CalendarRange:
    if span == "month":
        first = start.replace(day=1)
        end = (first + timedelta(days=32)).replace(day=1)
        return CalendarRange(first, end, "month")
    monday = start - timedelta(days=start.weekday())
    return CalendarRange(monday, monday + timedelta(days=7), "week")


CALENDAR_LIMIT = 500


def calendar(
    user: Any, span: CalendarRange, *, include_cancelled: bool = False
) -> list[HearingRow]:
    """Hearings in the range across the cases ``user`` may read, soonest first: a
    bounded number of rows (the range, and at most CALENDAR_LIMIT) in three queries."""
    zone = reminders.network_zone()
    start = datetime.combine(span.start, datetime.min.time(), zone)
    end = datetime.combine(span.end, datetime.min.time(), zone)
    hearings = (
        Hearing.objects.filter(starts_at__gte=start, starts_at__lt=end)
        .filter(case__in=Case.objects.filter(readable_cases(user)))
        .select_related("case")
        .order_by("starts_at", "pk")
    )
    if not include_cancelled:
        hearings = hearings.filter(cancelled_at__isnull=True)
    return _rows(list(hearings[:CALENDAR_LIMIT]), with_volunteers=False)


def signed_up_counts(hearing_ids: list[int]) -> dict[int, int]:
    return dict(
        Accompaniment.objects.filter(
            hearing_id__in=hearing_ids, status=AccompanimentStatus.SIGNED_UP
        )
        .values_list("hearing_id")
        .annotate(n=Count("pk"))
        .values_list("hearing_id", "n")
    )


# Volunteers' side


def volunteer_path(responder: Responder) -> str:
    token = signing.TimestampSigner(salt=VOLUNTEER_SALT).sign(responder.uuid.hex)
    return reverse("cases:volunteer", args=[token])


def volunteer_link(responder: Responder) -> str:
    """The signed link to a volunteer's hearings page (sent by SMS)."""
    return settings.RR_PUBLIC_URL + volunteer_path(responder)


class LinkExpired(Exception):
    pass


class LinkInvalid(Exception):
    pass


def volunteer_from(token: str) -> Responder:
    """The active responder a volunteer link names."""
    signer = signing.TimestampSigner(salt=VOLUNTEER_SALT)
    try:
        value = signer.unsign(token, max_age=settings.RR_RESPONDER_LINK_HOURS * 3600)
    except signing.SignatureExpired as exc:
        raise LinkExpired from exc
    except signing.BadSignature as exc:
        raise LinkInvalid from exc
    try:
        responder_uuid = uuid.UUID(hex=value)
    except ValueError as exc:
        raise LinkInvalid from exc
    responder = Responder.objects.filter(uuid=responder_uuid, active=True).first()
    if responder is None:
        raise LinkInvalid
    return responder


@dataclass(frozen=True)
class OpenHearing:
    """A hearing as a volunteer sees it: nothing about the person or the case."""

    uuid: uuid.UUID
    code: str
    kind_label: str
    starts_at: datetime
    place: str
    language_needed: str
    signed_up: int
    mine: Accompaniment | None

    @property
    def language_label(self) -> str:
        return language_name(self.language_needed) if self.language_needed else ""

    @property
    def needs_people(self) -> bool:
        return self.signed_up < ENOUGH_VOLUNTEERS


def _open_hearings() -> QuerySet[Hearing]:
    now = timezone.now()
    return Hearing.objects.filter(
        cancelled_at__isnull=True,
        accompaniment_wanted=True,
        starts_at__gt=now,
        starts_at__lte=now + SIGN_UP_HORIZON,
        case__status__in=reminders.ACTIVE_CASE_STATUSES,
        case__key_destroyed_at__isnull=True,
    )


def volunteer_view(responder: Responder) -> tuple[list[OpenHearing], list[OpenHearing]]:
    """The volunteer's own upcoming sign-ups, and the other open hearings (those in a
    language they speak first, then those short of people, then by date)."""
    hearings = list(_open_hearings().order_by("starts_at", "pk")[:100])
    counts = signed_up_counts([h.pk for h in hearings])
    mine = {
        a.hearing_id: a
        for a in Accompaniment.objects.filter(
            responder=responder,
            hearing_id__in=[h.pk for h in hearings],
            status=AccompanimentStatus.SIGNED_UP,
        )
    }
    items = [
        OpenHearing(
            uuid=h.uuid,
            code=h.code,
            kind_label=str(HearingKind(h.kind).label),
            starts_at=h.starts_at,
            place=h.place,
            language_needed=h.language_needed,
            signed_up=counts.get(h.pk, 0),
            mine=mine.get(h.pk),
        )
        for h in hearings
    ]
    own = [item for item in items if item.mine is not None]
    others = [item for item in items if item.mine is None]
    others.sort(
        key=lambda item: (
            bool(item.language_needed) and not responder.speaks(item.language_needed),
            not item.needs_people,
            item.starts_at,
        )
    )
    return own, others


def open_hearing_by_code(code: str) -> Hearing | None:
    return _open_hearings().select_related("case").filter(code=code).first()


def open_hearing_by_uuid(hearing_uuid: uuid.UUID) -> Hearing | None:
    return _open_hearings().select_related("case").filter(uuid=hearing_uuid).first()


def own_accompaniment(responder: Responder, hearing_uuid: uuid.UUID) -> Accompaniment | None:
    return (
        Accompaniment.objects.select_related("hearing")
        .filter(responder=responder, hearing__uuid=hearing_uuid)
        .first()
    )


def eligible_responders() -> QuerySet[Responder]:
    """Volunteers who may be shown hearings: active, with the accompaniment role."""
    bit = ROLE_BITS[ResponderRole.ACCOMPANIMENT]
    return (
        Responder.objects.filter(active=True)
        .annotate(role_hit=F("roles").bitand(bit))
        .filter(role_hit__gt=0)
    )
