"""Cases, family contacts, volunteers and hearings for the hearing and reminder tests."""

from __future__ import annotations

import itertools
from datetime import date, datetime, time, timedelta

from django.utils import timezone

from accounts.models import User
from cases import hearings, keystore
from cases.models import Case, CaseStatus, FamilyContact, Hearing, HearingKind
from cases.reminders import network_zone
from dispatch.models import Responder
from dispatch.tests.factories import responder

_numbers = itertools.count(600)

PERSON = "Maria Elena Lopez Garcia"
A_NUMBER = "A-201-555-019"


def make_case(*, opened_by: User, assigned_to: User | None = None, name: str = PERSON) -> Case:
    case = Case(
        key_ref=keystore.new_key(),
        opened_by=opened_by,
        assigned_to=assigned_to,
        detained_at=timezone.now() - timedelta(days=2),
    )
    case.person_name = name
    case.a_number = A_NUMBER
    case.person_birth_date = "1990-04-02"
    case.save()
    return case


def close_case(case: Case) -> None:
    case.status = CaseStatus.CLOSED
    case.closed_at = timezone.now()
    case.save(update_fields=["status", "closed_at"])


def make_contact(
    case: Case,
    *,
    phone: str | None = None,
    language: str = "es",
    consent: bool = True,
    name: str = "Rosa Lopez",
) -> FamilyContact:
    contact = FamilyContact(case=case, language=language, sms_consent=consent)
    contact.name = name
    contact.relation = "sister"
    contact.phone = phone if phone is not None else f"+1510555{next(_numbers):04d}"
    contact.save()
    return contact


def volunteer(*, languages: list[str] | None = None, phone: str | None = None) -> Responder:
    return responder(
        roles=["accompaniment"],
        languages=languages or ["en"],
        phone=phone,
        name="Vol Unteer",
        available=False,
    )


def local(day: date, at: time) -> datetime:
    return datetime.combine(day, at, network_zone())


def in_days(days: int, at: time = time(10, 0)) -> datetime:
    """A local time ``days`` from today."""
    today = timezone.localdate(timezone=network_zone())
    return local(today + timedelta(days=days), at)


def add_hearing(
    case: Case,
    *,
    actor: User,
    starts_at: datetime | None = None,
    kind: str = HearingKind.ICE_CHECKIN,
    place: str = "ICE field office, 630 Sansome St, San Francisco",
    language_needed: str = "es",
) -> Hearing:
    return hearings.add_hearing(
        actor=actor,
        case=case,
        data=hearings.HearingData(
            kind=kind,
            starts_at=starts_at or in_days(3),
            place=place,
            notes="Bring the I-220A and the lawyer's letter.",
            language_needed=language_needed,
        ),
    )
