"""R8: a flood of unverified reports for one area never reaches subscribers.

A thousand reports from a thousand different phones and browsers, through the signed
SMS webhook and the web form's action, collapse into one incident on the console; the
surge breaker flags it once; nothing is queued for subscribers, and the flood cannot
make the incident verified (field confirmation) nor compose an alert from it."""

from __future__ import annotations

import random
import uuid
from typing import Any

import pytest
from django.test import Client
from django.utils import timezone

from alerts import actions as alert_actions
from alerts.models import Alert, AlertKind
from alerts.tests.factories import subscriber
from conftest import FRUITVALE, committed, post_twilio, sms_params
from core.geo import Point
from core.models import AuditAction, AuditEvent
from incidents import actions as incident_actions
from incidents.models import Incident, IncidentStatus, TimelineEntry, TimelineKind
from intake.actions import WebReport, submit_web_report
from intake.models import Report
from messaging.models import OutboxKind, OutboxMessage

FLOOD = 1000
BY_SMS = 150  # the rest through the web form's action


def near_fruitvale(rng: random.Random) -> tuple[float, float]:
    """A point within about 150 m of the same corner: one place, many phones."""
    return FRUITVALE[0] + rng.uniform(-0.0012, 0.0012), FRUITVALE[1] + rng.uniform(-0.0012, 0.0012)


@pytest.mark.django_db
def test_a_thousand_unverified_reports_make_one_flagged_incident_and_no_alert(
    client: Client, dispatcher_client: Client, dispatcher: Any, service_area: Any
) -> None:
    rng = random.Random(8)
    # People who would be alerted about Fruitvale, if anything could alert them.
    neighbours = [subscriber(at=FRUITVALE, radius_m=2000) for _ in range(5)]
    outbox_before = OutboxMessage.objects.count()  # their confirmations

    for n in range(BY_SMS):
        lat, lng = near_fruitvale(rng)
        body = f"ICE raid happening now at {lat:.5f},{lng:.5f} everyone come"
        response = post_twilio(
            client,
            "/hooks/twilio/sms",
            sms_params(f"SMflood{n:05d}", body, sender=f"+1510557{n:04d}"),
        )
        assert response.status_code == 200
    for _n in range(FLOOD - BY_SMS):
        with committed():
            submit_web_report(
                WebReport(
                    text="ICE checkpoint, agents everywhere, tell everyone",
                    language="en",
                    submission_key=uuid.uuid4(),
                    observed_at=timezone.now(),
                    location_text="Fruitvale",
                    point=Point(*near_fruitvale(rng)),
                )
            )

    assert Report.objects.count() == FLOOD
    # One clustered incident, still unverified, flagged once by the surge breaker.
    incident = Incident.objects.get()
    assert incident.reports.count() == FLOOD
    assert incident.status == IncidentStatus.NEW
    assert incident.surge_at is not None
    assert TimelineEntry.objects.filter(incident=incident, kind=TimelineKind.SURGE).count() == 1
    surge_events = AuditEvent.objects.filter(action=AuditAction.INCIDENT_SURGE)
    assert surge_events.count() == 1 and surge_events.get().target_id == str(incident.uuid)

    # Nothing for subscribers: no alert, no alert row, no message to any of them.
    assert not Alert.objects.exists()
    assert not OutboxMessage.objects.filter(kind=OutboxKind.ALERT).exists()
    new_rows = OutboxMessage.objects.order_by("pk")[outbox_before:]
    assert {row.kind for row in new_rows} <= {OutboxKind.REPLY}
    neighbour_contacts = {person.contact_id for person in neighbours}
    assert not any(row.contact_id in neighbour_contacts for row in new_rows)

    # The console shows the one incident, with its count and the badge.
    console = dispatcher_client.get("/console/")
    assert console.status_code == 200
    page = console.content.decode()
    assert page.count('data-incident="') == 1
    assert "Possible flood" in page
    assert f'<td class="num">{FLOOD}</td>' in page
    detail = dispatcher_client.get(f"/console/incidents/{incident.uuid}/")
    assert detail.status_code == 200
    detail_page = detail.content.decode()
    assert "possibly a flood of false tips" in detail_page
    assert f"{FLOOD} reports" in detail_page
    assert detail_page.count('class="report-card"') == 50  # paginated
    assert "Page 1 of 20" in detail_page

    # The flood cannot take the incident further by itself: verifying needs a
    # responder's field confirmation, and an alert needs a verified incident.
    incident_actions.change_status(
        actor=dispatcher, incident=incident, status=IncidentStatus.VERIFYING, reason="checking"
    )
    with pytest.raises(incident_actions.ActionRefused):
        incident_actions.change_status(
            actor=dispatcher,
            incident=incident,
            status=IncidentStatus.VERIFIED,
            reason="a thousand people texted",
        )
    incident.refresh_from_db()
    assert incident.status == IncidentStatus.VERIFYING
    with pytest.raises(alert_actions.AlertRefused):
        alert_actions.compose(
            actor=dispatcher,
            incident=incident,
            kind=AlertKind.ALERT,
            radius_m=1000,
            bodies={"en": "ICE in Fruitvale", "es": "ICE en Fruitvale"},
        )
    assert not Alert.objects.exists()
