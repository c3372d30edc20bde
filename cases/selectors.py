"""Reading cases: always through ``visible_cases``, so a case someone may not read
answers 404 exactly like one that does not exist (R13)."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Any

from django.db.models import Exists, OuterRef, Q, QuerySet
from django.http import Http404
from django.utils import timezone

from accounts.models import Role, User
from cases.models import (
    CONSULTATION_GOAL,
    AccessEvent,
    Case,
    CaseStatus,
    Facility,
    LegalStage,
    PartnerOrganisation,
    Referral,
    Task,
    Transfer,
)
from incidents.models import Incident, IncidentStatus, TimelineEntry, TimelineKind


def visible_cases(user: Any) -> QuerySet[Case]:
    """The cases ``user`` may read (the queryset form of ``rules.may_read_case``)."""
    if not getattr(user, "is_authenticated", False) or not user.is_active:
        return Case.objects.none()
    if user.role == Role.COORDINATOR:
        return Case.objects.all()
    if user.role == Role.FAMILY_SUPPORT:
        return Case.objects.filter(Q(assigned_to__isnull=True) | Q(assigned_to=user))
    return Case.objects.none()


def get_case(user: Any, case_uuid: str | uuid.UUID, *, for_update: bool = False) -> Case:
    try:
        key = uuid.UUID(str(case_uuid))
    except ValueError:
        raise Http404 from None
    found = visible_cases(user).select_related("facility", "assigned_to").filter(uuid=key).first()
    if found is None:
        raise Http404
    return found


def overdue_filter(now: datetime) -> Q:
    """Open cases without a consultation, past the 48-hour goal from detention."""
    return Q(
        status=CaseStatus.OPEN,
        consulted_at__isnull=True,
        legal_stage=LegalStage.NO_LAWYER,
        detained_at__lt=now - CONSULTATION_GOAL,
    )


def case_list(
    user: User, *, status: str = "", mine: bool = False, overdue: bool = False
) -> QuerySet[Case]:
    """The list page: one query for the page, whatever its length."""
    now = timezone.now()
    cases = visible_cases(user).select_related("facility", "assigned_to")
    if status in CaseStatus.values:
        cases = cases.filter(status=status)
    if mine:
        cases = cases.filter(assigned_to=user)
    if overdue:
        cases = cases.filter(overdue_filter(now))
    return cases.order_by("-opened_at", "-pk")


def case_detail(case: Case) -> dict[str, Any]:
    """Everything the case page shows, a fixed number of queries."""
    return {
        "transfers": list(
            Transfer.objects.filter(case=case).select_related("facility", "recorded_by")
        ),
        "contacts": list(case.contacts.all()),
        "referrals": list(
            Referral.objects.filter(case=case).select_related("organisation", "created_by")
        ),
        "funds": list(case.funds.all()),
        "notes": list(case.notes.select_related("author")[:50]),
        "tasks": list(case.tasks.select_related("assignee")),
        "incidents": list(case.incidents.order_by("-first_seen")),
    }


def access_events(case: Case, limit: int = 20) -> list[AccessEvent]:
    return list(AccessEvent.objects.filter(case=case).select_related("actor")[:limit])


def verified_incidents(*, days: int = 30) -> QuerySet[Incident]:
    """Incidents a case can be opened from: verified, now or before they closed."""
    since = timezone.now() - timedelta(days=days)
    was_verified = TimelineEntry.objects.filter(
        incident=OuterRef("pk"), kind=TimelineKind.STATUS, to_value=IncidentStatus.VERIFIED
    )
    return (
        Incident.objects.filter(last_seen__gte=since)
        .filter(Q(status=IncidentStatus.VERIFIED) | Q(Exists(was_verified)))
        .select_related("neighbourhood")
        .order_by("-last_seen", "-pk")
    )


def cases_of_incident(incident: Incident) -> list[Case]:
    return list(incident.cases.select_related("assigned_to").order_by("-opened_at"))


def active_facilities() -> QuerySet[Facility]:
    return Facility.objects.filter(active=True).order_by("name")


def active_organisations() -> QuerySet[PartnerOrganisation]:
    return PartnerOrganisation.objects.filter(active=True).order_by("name")


def case_workers() -> QuerySet[User]:
    return User.objects.filter(
        is_active=True, role__in=[Role.FAMILY_SUPPORT, Role.COORDINATOR]
    ).order_by("first_name", "username")


def my_open_tasks(user: User) -> QuerySet[Task]:
    return (
        Task.objects.filter(assignee=user, done_at__isnull=True, case__key_destroyed_at=None)
        .select_related("case")
        .order_by("due_on", "pk")
    )
