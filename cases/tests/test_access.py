"""Who may read which case (R13): every case endpoint, for every kind of user."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client
from django.urls import reverse

from accounts.models import Role, User
from cases import actions
from cases.models import AccessEvent, Case, FundKind
from cases.tests.factories import PERSON, open_case, organisation
from conftest import make_user
from incidents.models import Incident
from tests.test_permissions import url_patterns

CHILD_KWARGS = ("contact_uuid", "referral_uuid", "fund_uuid", "task_uuid")


def _client(user: User | None) -> Client:
    client = Client()
    if user is not None:
        client.force_login(user)
    return client


def case_with_everything(actor: User, incident: Incident, assigned_to: User | None) -> Case:
    case = open_case(actor=actor, incident=incident, assigned_to=assigned_to)
    actions.save_contact(
        actor=actor,
        case=case,
        data=actions.ContactData("Rosa Cruz", "sister", "+15105550188", "es", True),
    )
    actions.refer(actor=actor, case=case, organisation=organisation(), notes="")
    actions.save_fund(
        actor=actor,
        case=case,
        data=actions.FundData(FundKind.BOND, "bond", 1500, 0, 0),  # type: ignore[arg-type]
    )
    actions.add_task(actor=actor, case=case, title="Call the lawyer", assignee=None, due_on=None)
    return case


def case_urls(case: Case) -> list[tuple[str, str]]:
    """Every URL that names a case, with the case's own children filled in."""
    children = {
        "contact_uuid": case.contacts.get().uuid,
        "referral_uuid": case.referrals.get().uuid,
        "fund_uuid": case.funds.get().uuid,
        "task_uuid": case.tasks.get().uuid,
    }
    found = []
    for name, pattern in url_patterns().items():
        converters = getattr(pattern.pattern, "converters", {})
        if "case_uuid" not in converters:
            continue
        kwargs: dict[str, Any] = {"case_uuid": case.uuid}
        for key in converters:
            if key in children:
                kwargs[key] = children[key]
        if set(kwargs) != set(converters):
            continue
        found.append((name, reverse(name, kwargs=kwargs)))
    return found


@pytest.fixture
def setup(verified: Incident, coordinator: User, family_support: User) -> dict[str, Any]:
    case = case_with_everything(coordinator, verified, assigned_to=family_support)
    return {"case": case, "urls": case_urls(case)}


@pytest.mark.django_db
def test_the_case_urls_cover_every_case_endpoint(setup: dict[str, Any]) -> None:
    names = {name for name, _ in setup["urls"]}
    assert {
        "cases:detail",
        "cases:edit-person",
        "cases:contact-edit",
        "cases:contact-remove",
        "cases:referral-status",
        "cases:fund-edit",
        "cases:task-done",
        "cases:export",
    } <= names


@pytest.mark.django_db
def test_a_colleague_not_assigned_gets_404_everywhere_and_changes_nothing(
    setup: dict[str, Any], colleague: User
) -> None:
    client = _client(colleague)
    case: Case = setup["case"]
    events = AccessEvent.objects.count()
    wrong = []
    for name, url in setup["urls"]:
        # A method the view does not take is refused first (405), which says nothing
        # about the case; the method it takes must answer as for a missing case.
        got = {
            client.get(url).status_code,
            client.post(url, {"status": "closed", "body": "x", "done": "1"}).status_code,
        }
        if 404 not in got or not got <= {404, 405}:
            wrong.append(f"{name}: {sorted(got)}")
    assert not wrong, wrong
    case.refresh_from_db()
    assert case.status == "open"
    assert case.contacts.count() == 1
    assert AccessEvent.objects.count() == events
    assert PERSON not in client.get(reverse("cases:list")).content.decode()


@pytest.mark.django_db
def test_dispatchers_and_verifiers_get_403_on_every_case_endpoint(setup: dict[str, Any]) -> None:
    for role in (Role.DISPATCHER, Role.VERIFIER):
        client = _client(make_user(role, f"other-{role.value}"))
        for name, url in setup["urls"]:
            assert client.get(url).status_code == 403, (role, name)
            assert client.post(url, {}).status_code == 403, (role, name)


@pytest.mark.django_db
def test_the_assigned_member_and_coordinators_read_it(
    setup: dict[str, Any], family_support: User, coordinator: User
) -> None:
    case: Case = setup["case"]
    for user in (family_support, coordinator):
        response = _client(user).get(reverse("cases:detail", args=[case.uuid]))
        assert response.status_code == 200
        assert PERSON in response.content.decode()


@pytest.mark.django_db
def test_an_unassigned_case_is_in_everyones_pool(
    verified: Incident, coordinator: User, family_support: User, colleague: User
) -> None:
    pooled = open_case(actor=coordinator, incident=verified, assigned_to=None)
    mine = open_case(
        actor=coordinator, incident=verified, assigned_to=family_support, person_name="Other One"
    )
    page = _client(colleague).get(reverse("cases:list")).content.decode()
    assert PERSON in page
    assert "Other One" not in page
    assert _client(colleague).get(reverse("cases:detail", args=[pooled.uuid])).status_code == 200
    assert _client(colleague).get(reverse("cases:detail", args=[mine.uuid])).status_code == 404


@pytest.mark.django_db
def test_family_support_cannot_give_a_case_to_a_colleague(
    verified: Incident, family_support: User, colleague: User
) -> None:
    case = open_case(actor=family_support, incident=verified, assigned_to=family_support)
    response = _client(family_support).post(
        reverse("cases:edit-handling", args=[case.uuid]),
        {"legal_stage": "no_lawyer", "status": "open", "assigned_to": colleague.pk},
    )
    assert response.status_code == 422
    case.refresh_from_db()
    assert case.assigned_to == family_support


@pytest.mark.django_db
def test_the_incident_page_tells_dispatchers_only_that_there_is_a_case(
    setup: dict[str, Any], dispatcher: User, coordinator: User, verified: Incident
) -> None:
    case: Case = setup["case"]
    url = reverse("incidents:incident", args=[verified.uuid])
    page = _client(dispatcher).get(url).content.decode()
    assert "This incident has a family-support case." in page
    assert PERSON not in page
    assert str(case.uuid) not in page
    assert reverse("cases:open", args=[verified.uuid]) not in page
    page = _client(coordinator).get(url).content.decode()
    assert reverse("cases:detail", args=[case.uuid]) in page
    assert reverse("cases:open", args=[verified.uuid]) in page
