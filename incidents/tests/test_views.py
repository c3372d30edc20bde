"""The console pages: who may see them, what they cost, and what their forms do."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import URLPattern, URLResolver, get_resolver, reverse

from accounts.models import Role, User
from conftest import DOWNTOWN, FRUITVALE, OUTSIDE_AREA, committed, make_user
from core.models import AuditAction, AuditEvent
from incidents.models import Incident, IncidentStatus, Level
from intake.models import ReportStatus
from intake.tests.factories import web_report


def console_urls() -> list[str]:
    """Every console URL pattern, with made-up ids filled in."""
    resolver = get_resolver()
    urls = []

    def walk(patterns: list[URLPattern | URLResolver], prefix: str) -> None:
        for pattern in patterns:
            if isinstance(pattern, URLResolver):
                walk(pattern.url_patterns, prefix + str(pattern.pattern))
            else:
                urls.append(prefix + str(pattern.pattern))

    walk(resolver.url_patterns, "")
    made_up = str(uuid.uuid4())
    return [
        "/"
        + u.replace("<uuid:incident_uuid>", made_up)
        .replace("<uuid:report_uuid>", made_up)
        .replace("<uuid:photo_uuid>", made_up)
        for u in urls
        if u.startswith("console/") and "events" not in u
    ]


@pytest.mark.django_db
@pytest.mark.parametrize("url", console_urls())
def test_anonymous_visitors_are_sent_to_log_in(client: Client, url: str) -> None:
    response = client.get(url)
    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/")


@pytest.mark.django_db
@pytest.mark.parametrize("role", [Role.VERIFIER, Role.FAMILY_SUPPORT])
@pytest.mark.parametrize("url", console_urls())
def test_roles_without_dispatch_are_refused(client: Client, role: Role, url: str) -> None:
    client.force_login(make_user(role))
    assert client.get(url).status_code == 403
    assert client.post(url).status_code == 403


@pytest.mark.django_db
@pytest.mark.parametrize("role", [Role.DISPATCHER, Role.COORDINATOR])
def test_dispatchers_and_coordinators_see_the_console(client: Client, role: Role) -> None:
    client.force_login(make_user(role))
    response = client.get("/console/")
    assert response.status_code == 200
    assert response["Cache-Control"] == "no-store"


@pytest.mark.django_db
@pytest.mark.parametrize("role", [Role.DISPATCHER, Role.COORDINATOR])
def test_unknown_records_are_404_for_those_allowed(client: Client, role: Role) -> None:
    client.force_login(make_user(role))
    for url in console_urls():
        if url.endswith(("/", ".geojson")) and url.count("/") > 3:
            assert client.get(url).status_code in {404, 405}, url


@pytest.mark.django_db
def test_the_verifier_start_page_does_not_offer_the_console(client: Client) -> None:
    client.force_login(make_user(Role.VERIFIER))
    response = client.get("/", follow=True)
    assert response.status_code == 200
    assert b"/console/" not in response.content


def seed(n: int) -> None:
    for i in range(n):
        lat = FRUITVALE[0] + 0.001 * (i % 3)
        web_report(f"report {i}", at=(lat, FRUITVALE[1] - 0.01 * i))
    for i in range(n):
        web_report(f"unplaced {i}", where="somewhere")


@pytest.mark.django_db
def test_the_console_costs_the_same_queries_for_3_or_30_incidents(
    dispatcher_client: Client,
) -> None:
    seed(3)
    with CaptureQueriesContext(connection) as small:
        assert dispatcher_client.get("/console/").status_code == 200
    seed(27)
    with CaptureQueriesContext(connection) as large:
        response = dispatcher_client.get("/console/")
    assert response.status_code == 200
    assert len(large) == len(small)
    # The incidents, the unplaced queue and the phone section's five (calls app).
    assert len(large) <= 15


@pytest.mark.django_db
def test_the_incident_page_costs_the_same_queries_for_2_or_20_reports(
    dispatcher_client: Client,
) -> None:
    first = web_report(at=FRUITVALE)
    web_report(at=FRUITVALE)
    assert first.incident is not None
    url = f"/console/incidents/{first.incident.uuid}/"
    with CaptureQueriesContext(connection) as small:
        assert dispatcher_client.get(url).status_code == 200
    for _ in range(18):
        web_report(at=FRUITVALE)
    with CaptureQueriesContext(connection) as large:
        assert dispatcher_client.get(url).status_code == 200
    assert len(large) == len(small)


@pytest.mark.django_db
def test_the_console_is_paginated(dispatcher_client: Client) -> None:
    for i in range(55):
        web_report(f"r{i}", at=(FRUITVALE[0], FRUITVALE[1] - 0.01 * i))
    first = dispatcher_client.get("/console/")
    assert first.content.count(b'data-incident="') == 50
    second = dispatcher_client.get("/console/?page=2")
    assert second.content.count(b'data-incident="') == 5
    assert b'data-live-rows="0"' in second.content
    assert dispatcher_client.get("/console/?page=abc").status_code == 200


@pytest.mark.django_db
def test_changing_status_through_the_page(dispatcher_client: Client, dispatcher: User) -> None:
    report = web_report(at=FRUITVALE)
    assert report.incident is not None
    url = reverse("incidents:incident-status", args=[report.incident.uuid])
    with committed():
        response = dispatcher_client.post(url, {"status": "verifying", "reason": "two sent"})
    assert response.status_code == 302
    report.incident.refresh_from_db()
    assert report.incident.status == IncidentStatus.VERIFYING
    page = dispatcher_client.get(response["Location"])
    assert b"Status changed." in page.content


@pytest.mark.django_db
@pytest.mark.parametrize(
    "data",
    [{"status": "verifying", "reason": ""}, {"status": "verified", "reason": "x"}, {}],
)
def test_invalid_status_forms_are_422_and_change_nothing(
    dispatcher_client: Client, data: dict[str, str]
) -> None:
    report = web_report(at=FRUITVALE)
    assert report.incident is not None
    url = reverse("incidents:incident-status", args=[report.incident.uuid])
    response = dispatcher_client.post(url, data)
    assert response.status_code == 422
    report.incident.refresh_from_db()
    assert report.incident.status == IncidentStatus.NEW


@pytest.mark.django_db
def test_level_and_merge_through_the_page(dispatcher_client: Client) -> None:
    a = web_report(at=FRUITVALE)
    b = web_report(at=DOWNTOWN)
    assert a.incident and b.incident
    dispatcher_client.post(
        reverse("incidents:incident-level", args=[a.incident.uuid]),
        {"level": "red", "reason": "arrest"},
    )
    a.incident.refresh_from_db()
    assert a.incident.level == Level.RED
    response = dispatcher_client.post(
        reverse("incidents:incident-merge", args=[b.incident.uuid]),
        {"target": str(a.incident.uuid), "reason": "same"},
    )
    assert response["Location"] == f"/console/incidents/{a.incident.uuid}/"
    assert a.incident.reports.count() == 2
    bogus = dispatcher_client.post(
        reverse("incidents:incident-merge", args=[a.incident.uuid]),
        {"target": str(uuid.uuid4()), "reason": "x"},
    )
    assert bogus.status_code == 422


@pytest.mark.django_db
def test_placing_a_report_by_map_or_neighbourhood(
    dispatcher_client: Client, service_area: Any
) -> None:
    by_map = web_report(where="by the school")
    response = dispatcher_client.post(
        reverse("incidents:report-place", args=[by_map.uuid]),
        {"lat": str(FRUITVALE[0]), "lng": str(FRUITVALE[1])},
    )
    assert response.status_code == 302
    by_map.refresh_from_db()
    assert by_map.status == ReportStatus.ATTACHED

    by_name = web_report(where="downtown somewhere")
    dispatcher_client.post(
        reverse("incidents:report-place", args=[by_name.uuid]), {"neighbourhood": "downtown"}
    )
    by_name.refresh_from_db()
    assert by_name.neighbourhood is not None and by_name.neighbourhood.name == "Downtown"


@pytest.mark.django_db
@pytest.mark.parametrize(
    "data",
    [
        {"lat": "91", "lng": "0"},
        {"lat": "abc", "lng": "-122"},
        {"lat": str(OUTSIDE_AREA[0]), "lng": str(OUTSIDE_AREA[1])},
        {"neighbourhood": "atlantis"},
        {},
    ],
)
def test_bad_placements_are_422_and_change_nothing(
    dispatcher_client: Client, service_area: Any, data: dict[str, str]
) -> None:
    report = web_report(where="somewhere")
    response = dispatcher_client.post(reverse("incidents:report-place", args=[report.uuid]), data)
    assert response.status_code == 422
    report.refresh_from_db()
    assert report.status == ReportStatus.UNPLACED and report.lat is None
    assert not Incident.objects.exists()


@pytest.mark.django_db
def test_move_split_and_triage_through_the_page(dispatcher_client: Client) -> None:
    a = web_report(at=FRUITVALE)
    b = web_report(at=FRUITVALE)
    c = web_report(at=DOWNTOWN)
    assert a.incident and c.incident
    dispatcher_client.post(
        reverse("incidents:report-split", args=[b.uuid]), {"reason": "different street"}
    )
    b.refresh_from_db()
    assert b.incident != a.incident
    dispatcher_client.post(
        reverse("incidents:report-move", args=[b.uuid]), {"incident": str(c.incident.uuid)}
    )
    b.refresh_from_db()
    assert b.incident == c.incident
    dispatcher_client.post(reverse("incidents:report-triage", args=[b.uuid]), {"triage": "hostile"})
    b.refresh_from_db()
    assert b.status == ReportStatus.DISMISSED
    assert (
        dispatcher_client.post(
            reverse("incidents:report-triage", args=[b.uuid]), {"triage": "bogus"}
        ).status_code
        == 422
    )


@pytest.mark.django_db
def test_revealing_a_callback_number_is_audited(dispatcher_client: Client) -> None:
    report = web_report(at=FRUITVALE, callback="(510) 555-0142")
    page = dispatcher_client.get(reverse("incidents:report", args=[report.uuid]))
    assert b"5550142" not in page.content
    response = dispatcher_client.post(reverse("incidents:report-contact", args=[report.uuid]))
    assert b"+15105550142" in response.content
    event = AuditEvent.objects.get(action=AuditAction.REPORT_CONTACT_VIEWED)
    assert event.target_id == str(report.uuid)
    assert "5550142" not in str(event.detail)
    no_number = web_report(at=FRUITVALE)
    assert (
        dispatcher_client.post(
            reverse("incidents:report-contact", args=[no_number.uuid])
        ).status_code
        == 404
    )


@pytest.mark.django_db
def test_the_area_outline_is_served_to_dispatchers(
    dispatcher_client: Client, service_area: Any
) -> None:
    data = dispatcher_client.get("/console/area.geojson").json()
    assert {f["properties"]["name"] for f in data["features"]} >= {"Fruitvale", "Downtown"}


@pytest.mark.django_db
def test_a_live_refresh_leaves_the_flash_message_for_the_action_response(
    dispatcher_client: Client,
) -> None:
    report = web_report(at=FRUITVALE)
    assert report.incident is not None
    url = f"/console/incidents/{report.incident.uuid}/"
    dispatcher_client.post(f"{url}level/", {"level": "red", "reason": "arrest"})
    refresh = dispatcher_client.get(url, HTTP_HX_REQUEST="true", HTTP_HX_TARGET="incident-body")
    assert b"Level changed." not in refresh.content
    assert b"Level changed." in dispatcher_client.get(url).content


@pytest.mark.django_db
def test_texts_stuck_before_becoming_reports_are_shown(dispatcher_client: Client) -> None:
    from datetime import timedelta

    from django.utils import timezone

    from messaging.actions import receive_sms
    from messaging.models import InboundMessage

    receive_sms(
        provider="twilio",
        provider_sid="SMstuck",
        sender="+15105550123",
        recipient="",
        body="ICE here",
    )
    assert b"not become" not in dispatcher_client.get("/console/").content
    InboundMessage.objects.update(received_at=timezone.now() - timedelta(minutes=10))
    assert (
        b"1 text message has not become a report yet" in dispatcher_client.get("/console/").content
    )
