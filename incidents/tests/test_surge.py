"""The surge breaker: more than RR_SURGE_REPORTS recent reports around one place flag
the incident they join, once, with a timeline entry, an audit event and a badge."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.test import Client
from django.utils import timezone

from conftest import DOWNTOWN, FRUITVALE
from core.models import AuditAction, AuditEvent
from incidents import actions, surge
from incidents.models import Incident, TimelineEntry, TimelineKind
from intake.models import Report
from intake.tests.factories import web_report

# Inside the service area, two surge cells away from Fruitvale.
ELSEWHERE = DOWNTOWN


@pytest.fixture
def low_threshold(settings: Any) -> Any:
    settings.RR_SURGE_REPORTS = 4
    settings.RR_SURGE_WINDOW_MINUTES = 15
    return settings


def incident_at(point: tuple[float, float]) -> Incident:
    report = web_report(at=point)
    assert report.incident is not None
    return Incident.objects.get(pk=report.incident.pk)


@pytest.mark.django_db
def test_the_breaker_trips_once_past_the_threshold(service_area: Any, low_threshold: Any) -> None:
    for _ in range(4):
        web_report(at=FRUITVALE)
    incident = Incident.objects.get()
    assert incident.surge_at is None  # four reports: the threshold, not past it
    web_report(at=FRUITVALE)
    incident.refresh_from_db()
    assert incident.surge_at is not None
    for _ in range(3):
        web_report(at=FRUITVALE)
    entries = TimelineEntry.objects.filter(incident=incident, kind=TimelineKind.SURGE)
    assert list(entries.values_list("to_value", flat=True)) == ["5"]
    event = AuditEvent.objects.get(action=AuditAction.INCIDENT_SURGE)
    assert event.target_id == str(incident.uuid)
    assert event.detail == {"reports": 5, "window_minutes": 15}


@pytest.mark.django_db
def test_reports_elsewhere_or_older_do_not_count(service_area: Any, low_threshold: Any) -> None:
    for _ in range(3):
        web_report(at=ELSEWHERE)
    for _ in range(3):
        web_report(at=FRUITVALE)
    Report.objects.update(received_at=timezone.now() - timedelta(minutes=16))
    for _ in range(3):
        web_report(at=FRUITVALE)
    assert not Incident.objects.filter(surge_at__isnull=False).exists()
    assert surge.recent_reports_around(Report.objects.first().h3_cell) == 3  # type: ignore[union-attr, arg-type]


@pytest.mark.django_db
def test_the_area_counts_the_neighbouring_cells_too() -> None:
    cell = Report(lat=FRUITVALE[0], lng=FRUITVALE[1]).point.cell()  # type: ignore[union-attr]
    cells = surge.area_cells(cell)
    assert cell in cells
    assert len(cells) == 7 * 7  # the surge cell and its six neighbours, at report resolution


@pytest.mark.django_db
def test_the_console_and_the_incident_page_show_the_flag(
    service_area: Any, low_threshold: Any, dispatcher_client: Client
) -> None:
    calm = incident_at(ELSEWHERE)
    for _ in range(5):
        web_report(at=FRUITVALE)
    flagged = Incident.objects.get(surge_at__isnull=False)
    page = dispatcher_client.get("/console/").content.decode()
    flagged_row = page.split(f'id="incident-{flagged.uuid}"')[1].split("</tr>")[0]
    calm_row = page.split(f'id="incident-{calm.uuid}"')[1].split("</tr>")[0]
    assert "Possible flood" in flagged_row
    assert "Possible flood" not in calm_row
    detail = dispatcher_client.get(f"/console/incidents/{flagged.uuid}/").content.decode()
    assert "possibly a flood of false tips" in detail
    assert "Possible flood of reports" in detail  # the timeline entry


@pytest.mark.django_db
def test_merging_a_flagged_incident_keeps_the_flag_on_the_one_that_remains(
    service_area: Any, low_threshold: Any, dispatcher: Any
) -> None:
    calm = incident_at(ELSEWHERE)
    for _ in range(5):
        web_report(at=FRUITVALE)
    flagged = Incident.objects.get(surge_at__isnull=False)
    actions.merge_incidents(actor=dispatcher, source=flagged, target=calm, reason="same raid")
    calm.refresh_from_db()
    # The flooded reports now count on the merged incident: so must the warning.
    assert calm.surge_at == flagged.surge_at
