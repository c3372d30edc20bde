"""The case pages: opening from a verified incident, edits that refuse bad input and
change nothing, the 48-hour goal, exports behind re-authentication (R14), access
events for every view (R27) and a fixed number of queries per page."""

from __future__ import annotations

import time
import uuid
from datetime import timedelta
from typing import Any

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone
from django.utils.http import urlencode

from accounts import reauth
from accounts.models import User
from accounts.testing import enrol_totp, fresh_code
from cases import actions
from cases.models import (
    AccessAction,
    AccessEvent,
    Case,
    CaseStatus,
    LegalStage,
    PartnerOrganisation,
)
from cases.tests.conftest import incident_with
from cases.tests.factories import A_NUMBER, PERSON, facility, open_case, organisation
from conftest import make_user
from incidents.models import Incident, IncidentStatus

FORMAT = "%Y-%m-%dT%H:%M"


def _login(user: User) -> Client:
    client = Client()
    client.force_login(user)
    return client


def _open_data(**changes: str) -> dict[str, str]:
    data = {
        "person_name": PERSON,
        "person_birth_date": "1988-03-14",
        "a_number": "a 201-555-019",
        "detained_at": (timezone.localtime() - timedelta(hours=2)).strftime(FORMAT),
        "detained_place": "Fruitvale BART",
        "facility": str(facility().pk),
        "assigned_to": "",
    }
    data.update(changes)
    return data


@pytest.mark.django_db
def test_family_support_opens_a_case_from_a_verified_incident(
    verified: Incident, family_support: User
) -> None:
    client = _login(family_support)
    page = client.get(reverse("cases:new")).content.decode()
    assert reverse("cases:open", args=[verified.uuid]) in page
    response = client.post(reverse("cases:open", args=[verified.uuid]), _open_data())
    case = Case.objects.get()
    assert response.status_code == 302
    assert response["Location"] == reverse("cases:detail", args=[case.uuid])
    assert case.person_name == PERSON
    assert case.a_number == A_NUMBER  # normalised
    assert case.person_birth_date == "1988-03-14"
    assert case.assigned_to == family_support  # who opens it has it
    assert list(case.incidents.all()) == [verified]
    assert case.facility == facility()
    assert case.transfers.count() == 1
    assert AccessEvent.objects.get(case=case).action == AccessAction.CREATED


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("person_name", ""),
        ("a_number", "12345"),
        ("detained_at", "tomorrow"),
        ("person_birth_date", "2999-01-01"),
        ("facility", "999999"),
    ],
)
def test_bad_input_opens_nothing(
    verified: Incident, family_support: User, field: str, value: str
) -> None:
    response = _login(family_support).post(
        reverse("cases:open", args=[verified.uuid]), _open_data(**{field: value})
    )
    assert response.status_code == 422
    assert not Case.objects.exists()


@pytest.mark.django_db
def test_a_future_detention_is_refused(verified: Incident, family_support: User) -> None:
    future = (timezone.localtime() + timedelta(days=1)).strftime(FORMAT)
    response = _login(family_support).post(
        reverse("cases:open", args=[verified.uuid]), _open_data(detained_at=future)
    )
    assert response.status_code == 422
    assert not Case.objects.exists()


@pytest.mark.django_db
@pytest.mark.parametrize("status", [IncidentStatus.NEW, IncidentStatus.VERIFYING])
def test_no_case_from_an_incident_not_verified(
    service_area: Any, dispatcher: User, family_support: User, status: IncidentStatus
) -> None:
    incident = incident_with(status, dispatcher)
    client = _login(family_support)
    assert client.get(reverse("cases:open", args=[incident.uuid])).status_code == 404
    assert client.post(reverse("cases:open", args=[incident.uuid]), _open_data()).status_code == 404
    with pytest.raises(actions.CaseRefused):
        open_case(actor=family_support, incident=incident)
    assert not Case.objects.exists()


@pytest.mark.django_db
def test_a_verified_incident_that_closed_still_takes_a_case(
    verified: Incident, dispatcher: User, family_support: User
) -> None:
    from incidents import actions as incident_actions

    incident_actions.change_status(
        actor=dispatcher, incident=verified, status=IncidentStatus.CLOSED, reason="done"
    )
    assert open_case(actor=family_support, incident=verified).pk


@pytest.mark.django_db
def test_every_view_writes_an_access_event(verified: Incident, family_support: User) -> None:
    case = open_case(actor=family_support, incident=verified, assigned_to=family_support)
    client = _login(family_support)
    for _ in range(3):
        assert client.get(reverse("cases:detail", args=[case.uuid])).status_code == 200
    viewed = AccessEvent.objects.filter(case=case, action=AccessAction.VIEWED)
    assert viewed.count() == 3
    assert {event.actor for event in viewed} == {family_support}
    actions.add_note(actor=family_support, case=case, body="called the facility")
    page = client.get(reverse("cases:detail", args=[case.uuid])).content.decode()
    assert "changed: a note" in page  # the trail names the part, never its content


def _queries(client: Client, url: str) -> int:
    with CaptureQueriesContext(connection) as queries:
        assert client.get(url).status_code == 200
    return len(queries)


@pytest.mark.django_db
def test_the_list_costs_the_same_queries_for_one_case_or_twenty(
    verified: Incident, coordinator: User
) -> None:
    client = _login(coordinator)
    url = reverse("cases:list")
    open_case(actor=coordinator, incident=verified, assigned_to=coordinator)
    one = _queries(client, url)
    for number in range(19):
        open_case(actor=coordinator, incident=verified, person_name=f"Person {number}")
    twenty = _queries(client, url)
    assert twenty == one
    assert "Person 18" in client.get(url).content.decode()


@pytest.mark.django_db
def test_the_case_page_costs_the_same_queries_however_full(
    verified: Incident, coordinator: User
) -> None:
    client = _login(coordinator)
    case = open_case(actor=coordinator, incident=verified, assigned_to=coordinator)
    url = reverse("cases:detail", args=[case.uuid])

    def add_one(number: int) -> None:
        actions.save_contact(
            actor=coordinator,
            case=case,
            data=actions.ContactData(f"Contact {number}", "cousin", "", "en", False),
        )
        actions.add_note(actor=coordinator, case=case, body=f"note {number}")
        actions.add_task(
            actor=coordinator, case=case, title=f"task {number}", assignee=coordinator, due_on=None
        )
        actions.refer(
            actor=coordinator, case=case, organisation=organisation(f"Org {number}"), notes=""
        )
        actions.record_transfer(
            actor=coordinator,
            case=case,
            facility=facility(f"Facility {number}"),
            moved_at=timezone.now() - timedelta(minutes=number + 1),
        )

    add_one(0)
    few = _queries(client, url)
    for number in range(1, 8):
        add_one(number)
    many = _queries(client, url)
    assert many == few


@pytest.mark.django_db
def test_cases_past_the_48_hour_goal_stand_out_and_filter(
    verified: Incident, coordinator: User
) -> None:
    late = open_case(
        actor=coordinator,
        incident=verified,
        person_name="Late Person",
        detained_at=timezone.now() - timedelta(hours=49),
    )
    open_case(
        actor=coordinator,
        incident=verified,
        person_name="Recent Person",
        detained_at=timezone.now() - timedelta(hours=47),
    )
    consulted = open_case(
        actor=coordinator,
        incident=verified,
        person_name="Consulted Person",
        detained_at=timezone.now() - timedelta(hours=60),
    )
    actions.update_handling(
        actor=coordinator,
        case=consulted,
        legal_stage=LegalStage.CONSULTATION,
        status=CaseStatus.OPEN,
        assigned_to=None,
        consulted_at=timezone.now() - timedelta(hours=20),
    )
    client = _login(coordinator)
    page = client.get(reverse("cases:list"), {"overdue": "1"}).content.decode()
    assert "Late Person" in page
    assert "Recent Person" not in page and "Consulted Person" not in page
    assert 'class="overdue"' in page
    detail = client.get(reverse("cases:detail", args=[late.uuid])).content.decode()
    assert "the 48-hour goal passed" in detail


@pytest.mark.django_db
def test_the_list_filters_by_status_and_assignee(
    verified: Incident, coordinator: User, family_support: User
) -> None:
    open_case(actor=coordinator, incident=verified, assigned_to=coordinator, person_name="Mine One")
    other = open_case(
        actor=coordinator, incident=verified, assigned_to=family_support, person_name="Theirs One"
    )
    actions.update_handling(
        actor=coordinator,
        case=other,
        legal_stage=LegalStage.NO_LAWYER,
        status=CaseStatus.RELEASED,
        assigned_to=family_support,
        consulted_at=None,
    )
    client = _login(coordinator)
    mine = client.get(reverse("cases:list"), {"mine": "1"}).content.decode()
    assert "Mine One" in mine and "Theirs One" not in mine
    released = client.get(reverse("cases:list"), {"status": "released"}).content.decode()
    assert "Theirs One" in released and "Mine One" not in released


# --- edits ----------------------------------------------------------------------------------


@pytest.fixture
def case(verified: Incident, family_support: User) -> Case:
    return open_case(actor=family_support, incident=verified, assigned_to=family_support)


@pytest.mark.django_db
def test_a_transfer_moves_the_person_and_keeps_the_history(
    case: Case, family_support: User
) -> None:
    client = _login(family_support)
    new_place = facility("Mesa Verde")
    moved = (timezone.localtime() - timedelta(minutes=30)).strftime(FORMAT)
    client.post(
        reverse("cases:transfer", args=[case.uuid]), {"facility": new_place.pk, "moved_at": moved}
    )
    case.refresh_from_db()
    assert case.facility == new_place
    assert [t.facility.name for t in case.transfers.all()] == ["Mesa Verde", "Golden State Annex"]
    # A transfer before the detention is refused and changes nothing.
    early = (case.detained_at - timedelta(days=1)).astimezone().strftime(FORMAT)
    client.post(
        reverse("cases:transfer", args=[case.uuid]), {"facility": facility().pk, "moved_at": early}
    )
    case.refresh_from_db()
    assert case.facility == new_place
    assert case.transfers.count() == 2


@pytest.mark.django_db
def test_referrals_use_capacity_and_a_consultation_meets_the_goal(
    case: Case, family_support: User
) -> None:
    client = _login(family_support)
    full = organisation("Full Org", capacity=0)
    client.post(reverse("cases:refer", args=[case.uuid]), {"organisation": full.pk})
    assert not case.referrals.exists()
    partner = organisation("Open Org", capacity=1)
    client.post(reverse("cases:refer", args=[case.uuid]), {"organisation": partner.pk})
    referral = case.referrals.get()
    assert PartnerOrganisation.objects.get(pk=partner.pk).capacity == 0
    client.post(
        reverse("cases:referral-status", args=[case.uuid, referral.uuid]), {"status": "consulted"}
    )
    case.refresh_from_db()
    assert case.consulted_at is not None
    assert case.legal_stage == LegalStage.CONSULTATION
    assert not case.consultation_overdue(timezone.now() + timedelta(days=5))
    client.post(
        reverse("cases:referral-status", args=[case.uuid, referral.uuid]), {"status": "nonsense"}
    )
    referral.refresh_from_db()
    assert referral.status == "consulted"


@pytest.mark.django_db
def test_card_numbers_are_never_stored(case: Case, family_support: User) -> None:
    client = _login(family_support)
    card = "4111 1111 1111 1111"
    client.post(reverse("cases:note", args=[case.uuid]), {"body": f"paid with {card}"})
    response = client.post(
        reverse("cases:fund-new", args=[case.uuid]),
        {
            "kind": "bond",
            "purpose": f"card {card}",
            "requested": "1500",
            "raised": "0",
            "paid": "0",
        },
    )
    assert response.status_code == 422
    assert not case.notes.exists()
    assert not case.funds.exists()
    # An A-number or an amount is not a card number.
    client.post(reverse("cases:note", args=[case.uuid]), {"body": f"A-number {A_NUMBER}, $1500"})
    assert case.notes.count() == 1


@pytest.mark.django_db
def test_card_numbers_are_refused_in_referral_and_hearing_notes(
    case: Case, family_support: User
) -> None:
    client = _login(family_support)
    card = "4111-1111-1111-1111"
    partner = organisation()
    client.post(
        reverse("cases:refer", args=[case.uuid]),
        {"organisation": partner.pk, "notes": f"bond paid with {card}"},
    )
    assert not case.referrals.exists()
    day = (timezone.localdate() + timedelta(days=20)).isoformat()
    response = client.post(
        reverse("cases:hearing-new", args=[case.uuid]),
        {
            "kind": "hearing",
            "day": day,
            "at": "09:00",
            "place": "630 Sansome St, San Francisco",
            "notes": f"fee paid by card {card}",
        },
    )
    assert response.status_code == 422
    assert "looks like a card number" in response.content.decode()
    assert not case.hearings.exists()
    # Without the card number both are saved: the refusal above was for the card.
    client.post(
        reverse("cases:refer", args=[case.uuid]), {"organisation": partner.pk, "notes": "bond"}
    )
    assert case.referrals.count() == 1


@pytest.mark.django_db
def test_bond_amounts_cannot_be_negative(case: Case, family_support: User) -> None:
    response = _login(family_support).post(
        reverse("cases:fund-new", args=[case.uuid]),
        {"kind": "bond", "purpose": "", "requested": "-5", "raised": "0", "paid": "0"},
    )
    assert response.status_code == 422
    assert not case.funds.exists()


@pytest.mark.django_db
def test_contacts_keep_their_language_and_consent(case: Case, family_support: User) -> None:
    client = _login(family_support)
    response = client.post(
        reverse("cases:contact-new", args=[case.uuid]),
        {"name": "Rosa", "relation": "sister", "phone": "", "language": "es", "sms_consent": "on"},
    )
    assert response.status_code == 422  # texts need a phone
    client.post(
        reverse("cases:contact-new", args=[case.uuid]),
        {
            "name": "Rosa",
            "relation": "sister",
            "phone": "(510) 555-0177",
            "language": "es",
            "sms_consent": "on",
        },
    )
    contact = case.contacts.get()
    assert contact.phone == "+15105550177"
    assert contact.language == "es"
    assert contact.sms_consent
    # Opening the contact's form shows the number: that is a read of the case too.
    before = AccessEvent.objects.filter(case=case, action=AccessAction.VIEWED).count()
    page = client.get(reverse("cases:contact-edit", args=[case.uuid, contact.uuid]))
    assert "+15105550177" in page.content.decode()
    assert AccessEvent.objects.filter(case=case, action=AccessAction.VIEWED).count() == before + 1


@pytest.mark.django_db
def test_closing_starts_the_retention_clock(case: Case, family_support: User) -> None:
    _login(family_support).post(
        reverse("cases:edit-handling", args=[case.uuid]),
        {"legal_stage": "represented", "status": "closed", "assigned_to": family_support.pk},
    )
    case.refresh_from_db()
    assert case.status == CaseStatus.CLOSED
    assert case.closed_at is not None
    assert AccessEvent.objects.filter(case=case, action=AccessAction.CLOSED).count() == 1


# --- export ---------------------------------------------------------------------------------


def _step_up(client: Client, user: User, next_url: str = "", **changes: str) -> Any:
    """Post the re-authentication page (accounts.reauth): password and a TOTP code."""
    data = {"password": "a-long-test-password", "code": fresh_code(user), "next": next_url}
    data.update(changes)
    return client.post(reverse("accounts:reauth"), data)


def _reauthenticated(user: User) -> Client:
    enrol_totp(user)
    client = _login(user)
    assert _step_up(client, user).status_code == 302
    return client


@pytest.mark.django_db
def test_export_needs_password_and_second_factor(case: Case, family_support: User) -> None:
    enrol_totp(family_support)
    client = _login(family_support)  # signed in with MFA, but not in the last 5 minutes
    url = reverse("cases:export", args=[case.uuid])
    asks = f"{reverse('accounts:reauth')}?{urlencode({'next': url})}"
    response = client.get(url)
    assert response.status_code == 302 and response["Location"] == asks
    # A POST without re-authentication exports nothing either.
    response = client.post(url, {"format": "csv", "reason": "for Bay Legal Aid intake"})
    assert response.status_code == 302 and response["Location"] == asks
    assert not AccessEvent.objects.filter(action=AccessAction.EXPORTED).exists()

    # The password alone, or a wrong password with a right code, is not enough.
    assert _step_up(client, family_support, url, code="").status_code == 200
    assert _step_up(client, family_support, url, password="not-the-password").status_code == 200
    assert client.get(url)["Location"] == asks

    right = _step_up(client, family_support, url)
    assert right.status_code == 302 and right["Location"] == url
    assert client.get(url).status_code == 200


@pytest.mark.django_db
def test_a_re_authentication_lasts_five_minutes(case: Case, family_support: User) -> None:
    client = _reauthenticated(family_support)
    url = reverse("cases:export", args=[case.uuid])
    assert client.get(url).status_code == 200
    session = client.session
    session[reauth.REAUTH_AT] = int(time.time()) - 301
    session.save()
    response = client.get(url)
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("accounts:reauth") + "?next=")


@pytest.mark.django_db
def test_the_reauth_page_never_sends_people_elsewhere(family_support: User) -> None:
    enrol_totp(family_support)
    client = _login(family_support)
    response = _step_up(client, family_support, "https://evil.example/")
    assert response.status_code == 302
    assert not response["Location"].startswith("https://evil.example")


@pytest.mark.django_db
def test_an_export_of_a_case_one_cannot_read_is_a_404_before_any_step_up(
    case: Case, family_support: User
) -> None:
    client = _login(family_support)
    response = client.get(reverse("cases:export", args=[uuid.uuid4()]))
    assert response.status_code == 404


@pytest.mark.django_db
def test_a_csv_export_is_recorded_with_its_reason_never_its_content(
    case: Case, family_support: User
) -> None:
    actions.save_contact(
        actor=family_support,
        case=case,
        data=actions.ContactData("=HYPERLINK(1)", "sister", "+15105550188", "es", True),
    )
    client = _reauthenticated(family_support)
    reason = "Bay Legal Aid asked for the bond hearing"
    response = client.post(
        reverse("cases:export", args=[case.uuid]), {"format": "csv", "reason": reason}
    )
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/csv")
    body = response.content.decode()
    assert PERSON in body and A_NUMBER in body and "+15105550188" in body
    assert "'=HYPERLINK(1)" in body  # no formula runs in a spreadsheet
    event = AccessEvent.objects.get(action=AccessAction.EXPORTED)
    assert event.actor == family_support and event.case == case and event.what == "export:csv"
    assert event.reason == reason
    with connection.cursor() as cursor:
        cursor.execute("SELECT reason, what FROM cases_accessevent WHERE id = %s", [event.pk])
        stored_reason, what = cursor.fetchone()
    assert reason not in stored_reason and PERSON not in what


@pytest.mark.django_db
def test_a_pdf_export(case: Case, coordinator: User) -> None:
    client = _reauthenticated(coordinator)
    response = client.post(
        reverse("cases:export", args=[case.uuid]),
        {"format": "pdf", "reason": "for the represented hearing"},
    )
    assert response.status_code == 200
    assert response["Content-Type"] == "application/pdf"
    assert response.content.startswith(b"%PDF")
    assert AccessEvent.objects.filter(action=AccessAction.EXPORTED, what="export:pdf").count() == 1


@pytest.mark.django_db
def test_an_export_without_a_reason_is_refused(case: Case, family_support: User) -> None:
    client = _reauthenticated(family_support)
    response = client.post(
        reverse("cases:export", args=[case.uuid]), {"format": "csv", "reason": ""}
    )
    assert response.status_code == 422
    assert not AccessEvent.objects.filter(action=AccessAction.EXPORTED).exists()


# --- directories ---------------------------------------------------------------------------


@pytest.mark.django_db
def test_coordinators_maintain_the_directories(coordinator: User, family_support: User) -> None:
    client = _login(coordinator)
    client.post(
        reverse("cases:facility-new"),
        {"name": "Mesa Verde ICE Processing Center", "address": "Bakersfield", "active": "on"},
    )
    client.post(
        reverse("cases:partner-new"),
        {"name": "Bay Legal Aid", "languages": ["en", "es"], "capacity": "4", "active": "on"},
    )
    partner = PartnerOrganisation.objects.get()
    assert partner.language_list == ["en", "es"]
    assert partner.capacity == 4
    page = _login(family_support).get(reverse("cases:partners")).content.decode()
    assert "Bay Legal Aid" in page
    assert "Mesa Verde" in _login(family_support).get(reverse("cases:facilities")).content.decode()
    response = client.post(reverse("cases:partner-new"), {"name": "", "capacity": "-1"})
    assert response.status_code == 422
    assert PartnerOrganisation.objects.count() == 1


@pytest.mark.django_db
def test_the_nav_shows_cases_only_to_those_who_work_them(verified: Incident) -> None:
    from accounts.models import Role

    for role, shown in (
        (Role.FAMILY_SUPPORT, True),
        (Role.COORDINATOR, True),
        (Role.DISPATCHER, False),
        (Role.VERIFIER, False),
    ):
        page = _login(make_user(role, f"nav-{role.value}")).get("/test-phone/").content.decode()
        assert (f'href="{reverse("cases:list")}"' in page) is shown, role


@pytest.mark.django_db
def test_each_case_the_list_names_is_an_audited_read(verified: Incident, coordinator: User) -> None:
    from cases.models import AccessAction, AccessEvent

    client = _login(coordinator)
    shown = [
        open_case(actor=coordinator, incident=verified, person_name=f"Person {n}") for n in range(3)
    ]
    before = AccessEvent.objects.count()
    assert client.get(reverse("cases:list")).status_code == 200
    events = AccessEvent.objects.filter(what="list")
    assert AccessEvent.objects.count() == before + 3
    assert {e.case_id for e in events} == {c.pk for c in shown}
    assert all(e.actor == coordinator and e.action == AccessAction.VIEWED for e in events)
