"""Hearing pages: who may add, change and cancel dates, what bad input gets, the
calendar (only readable cases, bounded, no query per row) and the case page section."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from accounts.models import Role, User
from cases import hearings, reminders
from cases.models import (
    AccessEvent,
    Hearing,
    HearingKind,
    HearingReminder,
    ReminderStatus,
)
from cases.reminders import network_zone
from cases.tests.hearing_factories import (
    A_NUMBER,
    add_hearing,
    close_case,
    in_days,
    make_case,
    make_contact,
    volunteer,
)
from conftest import make_user
from core.models import AuditAction, AuditEvent

pytestmark = pytest.mark.django_db


@pytest.fixture
def fam() -> User:
    return make_user(Role.FAMILY_SUPPORT, username="fam")


@pytest.fixture
def fam_client(fam: User) -> Client:
    client = Client()
    client.force_login(fam)
    return client


def form(starts_at: Any = None, **overrides: str) -> dict[str, str]:
    local = (starts_at or in_days(4)).astimezone(network_zone())
    data = {
        "kind": HearingKind.HEARING,
        "day": local.date().isoformat(),
        "at": local.strftime("%H:%M"),
        "place": "Immigration Court, 100 Montgomery St, Room 7",
        "language_needed": "es",
        "accompaniment_wanted": "on",
        "notes": "Judge asked for the asylum application.",
    }
    data.update(overrides)
    return data


# Adding


def test_family_support_adds_a_hearing_with_reminders_and_an_audit_trail(
    fam: User, fam_client: Client
) -> None:
    case = make_case(opened_by=fam, assigned_to=fam)
    make_contact(case)
    response = fam_client.post(reverse("cases:hearing-new", args=[case.uuid]), form())
    assert response.status_code == 302
    assert response["Location"].endswith(f"/cases/{case.uuid}/#hearings")
    hearing = Hearing.objects.get(case=case)
    assert hearing.kind == HearingKind.HEARING
    assert hearing.notes == "Judge asked for the asylum application."
    assert len(hearing.code) == 4 and hearing.code.isdigit()
    assert HearingReminder.objects.filter(hearing=hearing).count() == 2
    assert AccessEvent.objects.filter(case=case, what="hearing:added").count() == 1
    event = AuditEvent.objects.get(action=AuditAction.HEARING_SAVED)
    assert event.target_id == str(hearing.uuid)
    assert "Judge" not in str(event.detail)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"day": "2020-01-01"}, "must be in the future"),
        ({"day": "not a date"}, "Enter a valid date"),
        ({"at": "25:99"}, "Enter a valid time"),
        ({"kind": "party"}, "Select a valid choice"),
        ({"place": ""}, "This field is required"),
        ({"place": "x" * 301}, "at most 300"),
        ({"language_needed": "xx"}, "Select a valid choice"),
    ],
)
def test_bad_input_is_refused_and_changes_nothing(
    fam: User, fam_client: Client, overrides: dict[str, str], message: str
) -> None:
    case = make_case(opened_by=fam)
    response = fam_client.post(reverse("cases:hearing-new", args=[case.uuid]), form(**overrides))
    assert response.status_code == 422
    assert message in response.content.decode()
    assert not Hearing.objects.exists()
    assert not AccessEvent.objects.filter(what__startswith="hearing").exists()


def test_a_time_earlier_today_is_in_the_past(fam: User, fam_client: Client) -> None:
    case = make_case(opened_by=fam)
    earlier = timezone.now() - timedelta(minutes=5)
    response = fam_client.post(reverse("cases:hearing-new", args=[case.uuid]), form(earlier))
    assert response.status_code == 422
    assert not Hearing.objects.exists()


def test_a_closed_case_takes_no_new_dates(fam: User, fam_client: Client) -> None:
    case = make_case(opened_by=fam)
    close_case(case)
    response = fam_client.post(reverse("cases:hearing-new", args=[case.uuid]), form())
    assert response.status_code == 422
    assert "closed" in response.content.decode()
    assert not Hearing.objects.exists()


def test_the_action_refuses_a_past_time_even_without_the_form(fam: User) -> None:
    case = make_case(opened_by=fam)
    with pytest.raises(hearings.HearingRefused):
        add_hearing(case, actor=fam, starts_at=timezone.now() - timedelta(hours=1))
    assert not Hearing.objects.exists()


# Who may


def test_a_colleagues_case_is_not_found(fam_client: Client) -> None:
    colleague = make_user(Role.FAMILY_SUPPORT, username="colleague")
    case = make_case(opened_by=colleague, assigned_to=colleague)
    hearing = add_hearing(case, actor=colleague)
    assert fam_client.get(reverse("cases:hearing-new", args=[case.uuid])).status_code == 404
    assert fam_client.get(reverse("cases:hearing-edit", args=[hearing.uuid])).status_code == 404
    response = fam_client.post(reverse("cases:hearing-cancel", args=[hearing.uuid]))
    assert response.status_code == 404
    hearing.refresh_from_db()
    assert hearing.cancelled_at is None


def test_dispatchers_may_not_and_coordinators_may(fam: User) -> None:
    case = make_case(opened_by=fam, assigned_to=fam)
    dispatcher, coordinator = Client(), Client()
    dispatcher.force_login(make_user(Role.DISPATCHER))
    coordinator.force_login(make_user(Role.COORDINATOR))
    url = reverse("cases:hearing-new", args=[case.uuid])
    assert dispatcher.post(url, form()).status_code == 403
    assert not Hearing.objects.exists()
    assert dispatcher.get(reverse("cases:hearing-calendar")).status_code == 403
    assert coordinator.post(url, form()).status_code == 302
    assert Hearing.objects.count() == 1


# Changing and cancelling


def test_moving_a_hearing_rearms_reminders_and_is_audited(fam: User, fam_client: Client) -> None:
    case = make_case(opened_by=fam)
    rosa = make_contact(case)
    hearing = add_hearing(case, actor=fam)
    evening = reminders.due_times(hearing.starts_at)["day_before"]  # type: ignore[index]
    reminders.send_due(now=evening)
    url = reverse("cases:hearing-edit", args=[hearing.uuid])
    page = fam_client.get(url)
    assert page.status_code == 200
    assert AccessEvent.objects.filter(case=case, action="viewed", what="hearing").exists()
    response = fam_client.post(url, form(in_days(6), kind=HearingKind.ICE_CHECKIN))
    assert response.status_code == 302
    hearing.refresh_from_db()
    assert hearing.kind == HearingKind.ICE_CHECKIN
    assert AccessEvent.objects.filter(case=case, what="hearing:moved").exists()
    row = HearingReminder.objects.get(hearing=hearing, contact=rosa, lead="day_before")
    assert row.status == ReminderStatus.PENDING
    assert row.due_at == reminders.due_times(hearing.starts_at)["day_before"]  # type: ignore[index]


def test_moving_into_the_past_is_refused(fam: User, fam_client: Client) -> None:
    case = make_case(opened_by=fam)
    hearing = add_hearing(case, actor=fam)
    before = hearing.starts_at
    response = fam_client.post(
        reverse("cases:hearing-edit", args=[hearing.uuid]), form(timezone.now() - timedelta(days=1))
    )
    assert response.status_code == 422
    hearing.refresh_from_db()
    assert hearing.starts_at == before


def test_cancelling_is_post_only_and_stops_reminders(fam: User, fam_client: Client) -> None:
    case = make_case(opened_by=fam)
    make_contact(case)
    hearing = add_hearing(case, actor=fam)
    url = reverse("cases:hearing-cancel", args=[hearing.uuid])
    assert fam_client.get(url).status_code == 405
    assert fam_client.post(url).status_code == 302
    hearing.refresh_from_db()
    assert hearing.cancelled_at is not None
    assert set(HearingReminder.objects.values_list("status", flat=True)) == {"skipped"}
    assert AuditEvent.objects.filter(action=AuditAction.HEARING_CANCELLED).count() == 1
    # A cancelled date cannot be changed or cancelled again.
    again = fam_client.post(url, follow=True)
    assert "was cancelled" in again.content.decode()
    assert (
        fam_client.post(reverse("cases:hearing-edit", args=[hearing.uuid]), form()).status_code
        == 422
    )


def test_family_support_cancels_a_volunteers_sign_up(fam: User, fam_client: Client) -> None:
    case = make_case(opened_by=fam)
    hearing = add_hearing(case, actor=fam)
    vera = volunteer()
    accompaniment = hearings.sign_up(responder=vera, hearing=hearing).accompaniment
    url = reverse("cases:accompaniment-cancel", args=[accompaniment.uuid])
    assert fam_client.post(url).status_code == 302
    accompaniment.refresh_from_db()
    assert accompaniment.status == "cancelled"
    assert accompaniment.cancelled_by == fam
    assert set(HearingReminder.objects.filter(responder=vera).values_list("status", flat=True)) == {
        "skipped"
    }


# The calendar


def test_the_calendar_lists_only_readable_cases_and_no_names(fam: User, fam_client: Client) -> None:
    mine = make_case(opened_by=fam, assigned_to=fam)
    colleague = make_user(Role.FAMILY_SUPPORT, username="colleague")
    theirs = make_case(opened_by=colleague, assigned_to=colleague)
    add_hearing(mine, actor=fam, starts_at=in_days(1), place="Court A")
    add_hearing(theirs, actor=colleague, starts_at=in_days(1), place="Court B")
    page = fam_client.get(reverse("cases:hearing-calendar")).content.decode()
    assert "Court A" in page
    assert "Court B" not in page
    for secret in ("Maria", A_NUMBER):
        assert secret not in page
    coordinator = Client()
    coordinator.force_login(make_user(Role.COORDINATOR))
    everything = coordinator.get(reverse("cases:hearing-calendar")).content.decode()
    assert "Court A" in everything and "Court B" in everything


def test_the_calendar_pages_by_week_and_month(fam: User, fam_client: Client) -> None:
    case = make_case(opened_by=fam)
    add_hearing(case, actor=fam, starts_at=in_days(1), place="Soon court")
    add_hearing(case, actor=fam, starts_at=in_days(40), place="Later court")
    url = reverse("cases:hearing-calendar")
    week = fam_client.get(url).content.decode()
    assert "Soon court" in week and "Later court" not in week
    later = in_days(40).date().isoformat()
    month = fam_client.get(url, {"start": later, "span": "month"}).content.decode()
    assert "Later court" in month and "Soon court" not in month
    bad = fam_client.get(url, {"start": "yesterday", "span": "year"})
    assert bad.status_code == 422


def _calendar_queries(client: Client) -> int:
    with CaptureQueriesContext(connection) as queries:
        response = client.get(reverse("cases:hearing-calendar"), {"span": "month"})
    assert response.status_code == 200
    return len(queries)


def test_the_calendar_runs_no_query_per_row(fam: User, fam_client: Client) -> None:
    case = make_case(opened_by=fam)
    add_hearing(case, actor=fam, starts_at=in_days(1))
    hearings.sign_up(responder=volunteer(), hearing=Hearing.objects.get())
    few = _calendar_queries(fam_client)
    for days in range(2, 12):
        other = make_case(opened_by=fam)
        hearing = add_hearing(other, actor=fam, starts_at=in_days(days % 5 + 1))
        hearings.sign_up(responder=volunteer(), hearing=hearing)
    assert _calendar_queries(fam_client) == few


# The case page section


def test_the_section_renders_upcoming_and_past_with_volunteers(fam: User) -> None:
    from django.template.loader import render_to_string
    from django.test import RequestFactory

    case = make_case(opened_by=fam)
    upcoming = add_hearing(case, actor=fam, place="Upcoming court")
    cancelled = add_hearing(case, actor=fam, place="Cancelled court")
    hearings.cancel_hearing(actor=fam, hearing=cancelled)
    vera = volunteer()
    hearings.sign_up(responder=vera, hearing=upcoming)
    request = RequestFactory().get("/")
    request.user = fam
    with CaptureQueriesContext(connection) as queries:
        html = render_to_string(
            "cases/_hearings_section.html", {"case": case, "can_edit": True}, request=request
        )
    assert "Upcoming court" in html and "Cancelled court" in html
    assert "Vol Unteer" in html
    assert f"ACCOMPANY {upcoming.code}" in html
    assert reverse("cases:hearing-new", args=[case.uuid]) in html
    assert len(queries) <= 12
