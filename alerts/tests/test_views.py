"""The alert pages as dispatchers and coordinators use them."""

from __future__ import annotations

from typing import Any

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from accounts.models import User
from alerts import actions
from alerts.models import Alert, AlertKind, AlertStatus, AlertTemplate
from alerts.tests.conftest import incident_at
from alerts.tests.factories import subscriber
from conftest import DOWNTOWN, FRUITVALE, committed
from incidents.models import Incident, IncidentStatus
from messaging.models import OutboxMessage, OutboxStatus


def logged_in(user: User) -> Client:
    client = Client()
    client.force_login(user)
    return client


def compose_form(incident: Incident, client: Client, **fields: str) -> Any:
    page = client.get(f"/alerts/incidents/{incident.uuid}/new/")
    assert page.status_code == 200
    form = page.context["form"]
    data = {"radius_m": "2000", **{f.html_name: f.value() for f in form.body_fields()}}
    data.update(fields)
    return client.post(f"/alerts/incidents/{incident.uuid}/new/", data)


@pytest.mark.django_db
def test_compose_shows_filled_templates_segments_and_audience(
    verified: Incident, dispatcher: User, coordinator: User
) -> None:
    actions.save_template(
        actor=coordinator,
        kind=AlertKind.ALERT,
        language="es",
        body="{network} VERIFICADO: operativo de inmigración en {place} a las {time}. Guarde "
        "silencio y no abra la puerta sin una orden firmada por un juez. Más información "
        "en la línea.",
    )
    for _ in range(3):
        subscriber(at=FRUITVALE)
    page = logged_in(dispatcher).get(f"/alerts/incidents/{verified.uuid}/new/")
    html = page.content.decode()
    assert (
        "International &amp; 35th" in html
        and "{place}" not in page.context["form"]["body_en"].value()
    )
    assert "3 subscribers will get it." in html
    # Accents outside GSM-7 force UCS-2: 70 characters a segment.
    info = {f.html_name: i for f, i in page.context["body_info"]}
    assert info["body_es"].encoding == "UCS-2" and info["body_es"].segments > 1
    assert info["body_en"].encoding == "GSM-7" and info["body_en"].segments == 1
    assert "Longer than one text message" in html


@pytest.mark.django_db
def test_the_audience_preview_follows_the_radius(verified: Incident, dispatcher: User) -> None:
    subscriber(at=FRUITVALE, radius_m=200)
    subscriber(at=(FRUITVALE[0] + 0.03, FRUITVALE[1]), radius_m=200)  # about 3.3 km north
    client = logged_in(dispatcher)
    url = f"/alerts/incidents/{verified.uuid}/audience/"
    assert "1 subscriber will get it." in client.get(url, {"radius_m": "1000"}).content.decode()
    assert "2 subscribers will get it." in client.get(url, {"radius_m": "5000"}).content.decode()
    assert client.get(url, {"radius_m": "12345"}).status_code == 422


def test_the_drain_estimate_counts_segments_against_the_validity_period(settings: Any) -> None:
    settings.RR_SMS_RATE_PER_SECOND = 1
    settings.RR_ALERT_VALIDITY_MINUTES = 60
    one = actions.drain_estimate(100_000)
    assert (one.seconds, one.in_time, one.too_late, one.too_slow) == (100_000, 3600, 96_400, True)
    two = actions.drain_estimate(100_000, segments=2)
    assert (two.seconds, two.in_time) == (200_000, 1800)
    settings.RR_SMS_RATE_PER_SECOND = 100  # a short code
    fast = actions.drain_estimate(100_000)
    assert (fast.minutes, fast.too_slow, fast.too_late) == (17, False, 0)
    assert actions.drain_estimate(0).too_slow is False
    settings.RR_SMS_RATE_PER_SECOND = 0.29  # 6000 * 0.29 is 1739.999... in floating point
    settings.RR_ALERT_VALIDITY_MINUTES = 100
    assert actions.drain_estimate(5000).in_time == 1740


@pytest.mark.django_db
def test_the_composer_is_told_when_the_sender_cannot_reach_everyone_in_time(
    verified: Incident, dispatcher: User, settings: Any
) -> None:
    for _ in range(4):
        subscriber(at=FRUITVALE)
    client = logged_in(dispatcher)
    page = client.get(f"/alerts/incidents/{verified.uuid}/new/").content.decode()
    assert "Sending takes less than a minute." in page and "Too many for the sender" not in page
    # One text every 100 s and a 5-minute validity: 3 of the 4 get it in time.
    settings.RR_SMS_RATE_PER_SECOND = 0.01
    settings.RR_ALERT_VALIDITY_MINUTES = 5
    page = client.get(f"/alerts/incidents/{verified.uuid}/new/").content.decode()
    assert "Sending takes about 7 minutes." in page
    assert "only 3 would get it in time and 1 would not." in page
    # The preview follows the texts too (posted, so they stay out of URLs and logs):
    # two segments each halve what goes out in time.
    url = f"/alerts/incidents/{verified.uuid}/audience/"
    short = client.post(url, {"radius_m": "2000", "body_en": "Short."}).content.decode()
    assert "only 3 would get it in time" in short
    long = client.post(url, {"radius_m": "2000", "body_en": "x" * 200}).content.decode()
    assert "only 1 would get it in time and 3 would not." in long


@pytest.mark.django_db
def test_the_approver_sees_the_same_warning(
    verified: Incident, dispatcher: User, second_dispatcher: User, settings: Any
) -> None:
    for _ in range(4):
        subscriber(at=FRUITVALE)
    compose_form(verified, logged_in(dispatcher))
    alert = Alert.objects.get()
    settings.RR_SMS_RATE_PER_SECOND = 0.01
    settings.RR_ALERT_VALIDITY_MINUTES = 5
    page = logged_in(second_dispatcher).get(f"/alerts/{alert.uuid}/").content.decode()
    assert "only 3 would get it in time and 1 would not." in page


@pytest.mark.django_db
def test_compose_then_a_second_dispatcher_approves_on_the_page(
    verified: Incident, dispatcher: User, second_dispatcher: User
) -> None:
    subscriber(at=FRUITVALE)
    response = compose_form(verified, logged_in(dispatcher))
    alert = Alert.objects.get()
    assert response.status_code == 302 and response["Location"] == f"/alerts/{alert.uuid}/"
    own = logged_in(dispatcher).get(f"/alerts/{alert.uuid}/")
    assert "Waiting for a second dispatcher" in own.content.decode()
    assert "Approve and send" not in own.content.decode()
    refused = logged_in(dispatcher).post(f"/alerts/{alert.uuid}/approve/", follow=True)
    assert "A second dispatcher must approve" in refused.content.decode()
    other = logged_in(second_dispatcher)
    assert (
        "Approve and send to 1 subscriber" in other.get(f"/alerts/{alert.uuid}/").content.decode()
    )
    with committed():
        other.post(f"/alerts/{alert.uuid}/approve/")
    alert.refresh_from_db()
    assert alert.status == AlertStatus.SENDING
    progress = other.get(f"/alerts/{alert.uuid}/", HTTP_HX_REQUEST="true")
    assert progress.status_code == 200
    assert 'data-progress-percent="100"' in progress.content.decode()
    assert "<html" not in progress.content.decode()


@pytest.mark.django_db
def test_a_false_incident_offers_rumour_control_and_composes_it(
    service_area: Any, dispatcher: User, second_dispatcher: User
) -> None:
    incident = incident_at(FRUITVALE, IncidentStatus.FALSE, dispatcher)
    subscriber(at=FRUITVALE)
    client = logged_in(dispatcher)
    panel = client.get(f"/console/incidents/{incident.uuid}/").content.decode()
    assert "Write rumour control" in panel and "Write an alert" not in panel
    assert f"/alerts/incidents/{incident.uuid}/new/" in panel
    page = client.get(f"/alerts/incidents/{incident.uuid}/new/")
    html = page.content.decode()
    assert page.status_code == 200 and page.context["kind"] == AlertKind.RUMOUR
    assert "<h1>Rumour control</h1>" in html
    assert "RUMOUR CHECK" in page.context["form"]["body_en"].value()
    response = compose_form(incident, client)
    rumour = Alert.objects.get()
    assert response.status_code == 302 and response["Location"] == f"/alerts/{rumour.uuid}/"
    assert (rumour.kind, rumour.status) == (AlertKind.RUMOUR, AlertStatus.AWAITING_APPROVAL)
    assert "FALSE" in rumour.bodies["en"]
    with committed():
        logged_in(second_dispatcher).post(f"/alerts/{rumour.uuid}/approve/")
    assert OutboxMessage.objects.get(batch=rumour.batch).status == OutboxStatus.SENT


@pytest.mark.django_db
def test_an_unverified_incident_has_no_compose_page(service_area: Any, dispatcher: User) -> None:
    incident = incident_at(FRUITVALE, IncidentStatus.VERIFYING, dispatcher)
    client = logged_in(dispatcher)
    response = client.get(f"/alerts/incidents/{incident.uuid}/new/", follow=True)
    assert "Only a verified incident" in response.content.decode()
    posted = client.post(
        f"/alerts/incidents/{incident.uuid}/new/",
        {"radius_m": "2000", "body_en": "x", "body_es": "y"},
    )
    assert posted.status_code == 302
    assert not Alert.objects.exists()


@pytest.mark.django_db
def test_a_bad_composition_is_shown_again_with_the_error(
    verified: Incident, dispatcher: User
) -> None:
    response = compose_form(verified, logged_in(dispatcher), body_es="", radius_m="7")
    assert response.status_code == 422
    assert not Alert.objects.exists()


@pytest.mark.django_db
def test_pause_resume_and_cancel_from_the_page(
    verified: Incident, dispatcher: User, second_dispatcher: User, settings: Any
) -> None:
    settings.RR_SMS_RATE_PER_SECOND = 1
    for _ in range(2):
        subscriber(at=FRUITVALE)
    alert = actions.approve(
        actor=second_dispatcher,
        alert=actions.compose(
            actor=dispatcher,
            incident=verified,
            kind=AlertKind.ALERT,
            radius_m=2000,
            bodies={"en": "a", "es": "b"},
        ),
    )
    actions.fan_out(alert.pk)
    client = logged_in(dispatcher)
    client.post(f"/alerts/{alert.uuid}/pause/")
    alert.refresh_from_db()
    assert alert.status == AlertStatus.PAUSED
    page = client.get(f"/alerts/{alert.uuid}/").content.decode()
    assert "2 held while paused." in page
    client.post(f"/alerts/{alert.uuid}/resume/")
    client.post(f"/alerts/{alert.uuid}/cancel/")
    alert.refresh_from_db()
    assert alert.status == AlertStatus.CANCELLED
    assert set(OutboxMessage.objects.values_list("status", flat=True)) == {OutboxStatus.CANCELLED}
    assert client.post(f"/alerts/{alert.uuid}/explode/").status_code == 404


@pytest.mark.django_db
def test_the_progress_says_how_long_the_rest_takes_at_the_configured_rate(
    verified: Incident, dispatcher: User, second_dispatcher: User, settings: Any
) -> None:
    settings.RR_SMS_RATE_PER_SECOND = 0.01  # one message every 100 s
    for _ in range(3):
        subscriber(at=FRUITVALE)
    # Approved and fanned out outside a commit: the sender is not woken, all 3 wait.
    alert = actions.approve(
        actor=second_dispatcher,
        alert=actions.compose(
            actor=dispatcher,
            incident=verified,
            kind=AlertKind.ALERT,
            radius_m=2000,
            bodies={"en": "a", "es": "b"},
        ),
    )
    actions.fan_out(alert.pk)
    progress = logged_in(dispatcher).get(f"/alerts/{alert.uuid}/", HTTP_HX_REQUEST="true")
    html = progress.content.decode()
    assert "3 waiting, about 5 min left at the configured rate." in html
    settings.RR_SMS_RATE_PER_SECOND = 1
    html = logged_in(dispatcher).get(f"/alerts/{alert.uuid}/").content.decode()
    assert "3 waiting, about 3 s left at the configured rate." in html


@pytest.mark.django_db
def test_people_without_the_role_cannot_reach_alerts(
    verified: Incident, verifier: User, dispatcher: User, client: Client
) -> None:
    assert client.get("/alerts/").status_code == 302  # to the login page
    as_verifier = logged_in(verifier)
    assert as_verifier.get("/alerts/").status_code == 403
    assert as_verifier.get(f"/alerts/incidents/{verified.uuid}/new/").status_code == 403
    as_dispatcher = logged_in(dispatcher)
    assert as_dispatcher.get("/alerts/templates/").status_code == 403
    assert as_dispatcher.post("/alerts/control/", {"sending": "off"}).status_code == 403
    assert actions.sending_enabled()


@pytest.mark.django_db
def test_coordinators_switch_sending_off_and_on(coordinator: User) -> None:
    client = logged_in(coordinator)
    page = client.post("/alerts/control/", {"sending": "off"}, follow=True).content.decode()
    assert not actions.sending_enabled()
    assert "Switch alert sending back on" in page
    client.post("/alerts/control/", {"sending": "on"})
    assert actions.sending_enabled()


@pytest.mark.django_db
def test_coordinators_edit_templates(coordinator: User) -> None:
    client = logged_in(coordinator)
    page = client.get("/alerts/templates/").content.decode()
    assert "{network} VERIFIED" in page and "{network} VERIFICADO" in page
    saved = client.post(
        "/alerts/templates/",
        {"kind": "alert", "language": "es", "body": "{network}: agentes en {place}."},
    )
    assert saved.status_code == 302
    assert AlertTemplate.objects.get(kind="alert", language="es").updated_by == coordinator
    bad = client.post("/alerts/templates/", {"kind": "alert", "language": "en", "body": "{street}"})
    assert bad.status_code == 422 and "Unknown placeholder" in bad.content.decode()
    assert (
        client.post(
            "/alerts/templates/", {"kind": "boom", "language": "en", "body": "x"}
        ).status_code
        == 422
    )
    assert AlertTemplate.objects.count() == 1


@pytest.mark.django_db
def test_the_alert_list_is_paginated_with_a_fixed_number_of_queries(
    service_area: Any, dispatcher: User, second_dispatcher: User, settings: Any
) -> None:
    settings.RR_ALERTS_PER_AREA_PER_HOUR = 100
    client = logged_in(dispatcher)

    def alerts_for(at: tuple[float, float], count: int) -> None:
        incident = incident_at(at, IncidentStatus.VERIFIED, dispatcher, where=f"{at}")
        for _ in range(count):
            actions.compose(
                actor=dispatcher,
                incident=incident,
                kind=AlertKind.ALERT,
                radius_m=1000,
                bodies={"en": "a", "es": "b"},
            )

    alerts_for(FRUITVALE, 1)
    with CaptureQueriesContext(connection) as few:
        assert client.get("/alerts/").status_code == 200
    alerts_for(DOWNTOWN, 3)
    with CaptureQueriesContext(connection) as more:
        page = client.get("/alerts/")
    assert page.content.decode().count('href="/alerts/') >= 4
    assert len(more) == len(few)


@pytest.mark.django_db
def test_the_incident_page_offers_to_write_the_alert(verified: Incident, dispatcher: User) -> None:
    page = logged_in(dispatcher).get(f"/console/incidents/{verified.uuid}/").content.decode()
    assert f"/alerts/incidents/{verified.uuid}/new/" in page
