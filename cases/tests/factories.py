"""Cases for cases-core's tests, made through the actions as the pages make them."""

from __future__ import annotations

from datetime import timedelta

from django.utils import timezone

from accounts.models import User
from cases import actions
from cases.models import Case, Facility, PartnerOrganisation
from incidents.models import Incident

PERSON = "Juana Inés Cruz"
A_NUMBER = "A201555019"


def person(**changes: object) -> actions.PersonData:
    values: dict[str, object] = {
        "person_name": PERSON,
        "person_birth_date": None,
        "a_number": A_NUMBER,
        "detained_at": timezone.now() - timedelta(hours=3),
        "detained_place": "International Blvd & 35th Ave",
    }
    values.update(changes)
    return actions.PersonData(**values)  # type: ignore[arg-type]


def facility(name: str = "Golden State Annex") -> Facility:
    found, _ = Facility.objects.get_or_create(name=name, defaults={"address": "McFarland, CA"})
    return found


def organisation(name: str = "Bay Legal Aid", capacity: int = 3) -> PartnerOrganisation:
    return PartnerOrganisation.objects.create(name=name, languages="en,es", capacity=capacity)


def open_case(
    *,
    actor: User,
    incident: Incident,
    assigned_to: User | None = None,
    **changes: object,
) -> Case:
    return actions.open_case(
        actor=actor,
        incident=incident,
        person=person(**changes),
        facility=facility(),
        assigned_to=assigned_to,
    )
