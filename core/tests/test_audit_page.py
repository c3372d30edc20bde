"""The coordinators' audit log search (``/audit/``)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from accounts.models import Role, User
from conftest import make_user
from core.models import AuditAction, AuditEvent

# Session, user, count, one page of events with their actors, and the audit event of
# the search itself: the same for 5 events as for 50.
AUDIT_PAGE_QUERIES = 5


def event(actor: User | None, action: AuditAction, target_id: str, **fields: object) -> AuditEvent:
    return AuditEvent.objects.create(
        actor=actor,
        action=action,
        target_type="intake.report",
        target_id=target_id,
        detail={"incident": 7, "photos": 2},
        **fields,
    )


@pytest.fixture
def coordinator_client(coordinator: User) -> Client:
    client = Client()
    client.force_login(coordinator)
    return client


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("role", "status"),
    [
        (None, 302),
        (Role.VERIFIER, 403),
        (Role.FAMILY_SUPPORT, 403),
        (Role.DISPATCHER, 403),
        (Role.COORDINATOR, 200),
    ],
)
def test_only_coordinators_reach_the_audit_log(role: Role | None, status: int) -> None:
    client = Client()
    if role is not None:
        client.force_login(make_user(role))
    response = client.get("/audit/")
    assert response.status_code == status
    if status == 302:
        assert response["Location"].startswith("/accounts/login/")
    searched = AuditEvent.objects.filter(action=AuditAction.AUDIT_VIEWED).exists()
    assert searched == (role == Role.COORDINATOR)


@pytest.mark.django_db
def test_a_coordinator_sees_who_did_what_and_when_newest_first(
    coordinator_client: Client, dispatcher: User
) -> None:
    now = timezone.now()
    event(dispatcher, AuditAction.REPORT_CONTACT_VIEWED, "older", at=now - timedelta(hours=2))
    event(None, AuditAction.RETENTION_PURGED, "newer", at=now - timedelta(hours=1))
    response = coordinator_client.get("/audit/")
    assert response.status_code == 200
    assert response["Cache-Control"].count("no-store") == 1
    text = response.content.decode()
    assert "reporter contact viewed" in text
    assert "personal data purged on schedule" in text
    assert dispatcher.username in text
    assert "incident=7" in text
    assert "photos=2" in text
    assert text.index("newer") < text.index("older")


@pytest.mark.django_db
def test_filters_narrow_the_events(coordinator_client: Client, dispatcher: User) -> None:
    now = timezone.now()
    event(dispatcher, AuditAction.REPORT_CONTACT_VIEWED, "r-contact")
    event(dispatcher, AuditAction.REPORT_PHOTO_VIEWED, "r-photo")
    event(None, AuditAction.RETENTION_PURGED, "r-purge")
    event(dispatcher, AuditAction.REPORT_CONTACT_VIEWED, "r-old", at=now - timedelta(days=10))

    def shown(**params: str) -> set[str]:
        response = coordinator_client.get("/audit/", params)
        assert response.status_code == 200
        return {row.target_id for row in response.context["rows"]}

    assert shown(actor=dispatcher.username) == {"r-contact", "r-photo", "r-old"}
    assert shown(action=AuditAction.REPORT_CONTACT_VIEWED) == {"r-contact", "r-old"}
    assert shown(target_type="intake.report", target_id="r-photo") == {"r-photo"}
    today = timezone.localdate()
    assert shown(since=str(today - timedelta(days=11)), until=str(today - timedelta(days=9))) == {
        "r-old"
    }
    assert "r-old" not in shown(since=str(today))
    assert shown(actor="nobody") == set()

    viewed = AuditEvent.objects.filter(action=AuditAction.AUDIT_VIEWED).latest("pk")
    assert viewed.detail == {"actor": "nobody", "page": 1, "shown": 0, "valid": True}


@pytest.mark.django_db
def test_bad_filters_are_form_errors(coordinator_client: Client) -> None:
    event(None, AuditAction.RETENTION_PURGED, "r-purge")
    for params, message in [
        ({"since": "yesterday"}, "Enter a date as YYYY-MM-DD."),
        ({"until": "2026-13-45"}, "Enter a date as YYYY-MM-DD."),
        ({"action": "report.stolen"}, "Select a valid choice."),
        ({"since": "2026-05-02", "until": "2026-05-01"}, "The end date is before the start date."),
    ]:
        response = coordinator_client.get("/audit/", params)
        assert response.status_code == 422
        assert message in response.content.decode()
        assert response.context["rows"] == []


@pytest.mark.django_db
def test_the_audit_log_is_paginated_and_keeps_its_filters(
    coordinator_client: Client, dispatcher: User
) -> None:
    for n in range(55):
        event(dispatcher, AuditAction.INCIDENT_VIEWED, f"i-{n}")
    response = coordinator_client.get("/audit/", {"actor": dispatcher.username})
    assert len(response.context["rows"]) == 50
    assert f"?actor={dispatcher.username}&amp;page=2" in response.content.decode()
    response = coordinator_client.get("/audit/", {"actor": dispatcher.username, "page": "2"})
    assert len(response.context["rows"]) == 5


@pytest.mark.django_db
def test_the_audit_log_does_not_query_per_row(coordinator_client: Client) -> None:
    actors = [make_user(Role.DISPATCHER, f"dispatcher-{n}") for n in range(50)]
    for actor in actors[:5]:
        event(actor, AuditAction.INCIDENT_VIEWED, "few")
    with CaptureQueriesContext(connection) as few:
        assert coordinator_client.get("/audit/", {"target_id": "few"}).status_code == 200
    for actor in actors:
        event(actor, AuditAction.INCIDENT_VIEWED, "many")
    with CaptureQueriesContext(connection) as many:
        response = coordinator_client.get("/audit/", {"target_id": "many"})
    assert len(response.context["rows"]) == 50
    assert len(few) == len(many) == AUDIT_PAGE_QUERIES
