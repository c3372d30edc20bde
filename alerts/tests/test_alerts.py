"""Alerts: only from verified incidents, approved by a second dispatcher, fanned out in
bulk nearest first, paused, resumed, cancelled, limited per area, switched off."""

from __future__ import annotations

import itertools
import random
from datetime import timedelta
from typing import Any

import h3
import pytest
from django.utils import timezone
from hypothesis import given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from accounts.models import User
from alerts import actions, subscriptions
from alerts.models import Alert, AlertKind, AlertStatus, AlertTemplate, Subscriber, SubscriberCell
from alerts.tests.conftest import incident_at
from alerts.tests.factories import subscriber
from conftest import DOWNTOWN, FRUITVALE, at_once, committed
from core import retention
from core.geo import Point, distance_meters
from core.models import AuditAction, AuditEvent
from core.sms import segments
from incidents import actions as incident_actions
from incidents.models import Incident, IncidentStatus
from messaging import outbox
from messaging.models import (
    OptOut,
    OutboxBody,
    OutboxMessage,
    OutboxStatus,
    attach_shared_texts,
)
from messaging.providers import SendError
from messaging.selectors import conversation_with

BODIES = {
    "en": "VERIFIED: agents at International & 35th.",
    "es": "VERIFICADO: agentes en International y 35.",
}


def compose(incident: Incident, actor: User, radius_m: int = 2000, **kwargs: Any) -> Alert:
    return actions.compose(
        actor=actor,
        incident=incident,
        kind=kwargs.pop("kind", AlertKind.ALERT),
        radius_m=radius_m,
        bodies=kwargs.pop("bodies", BODIES),
    )


def approve(alert: Alert, actor: User) -> Alert:
    with committed():
        return actions.approve(actor=actor, alert=alert)


def north_of(point: tuple[float, float], metres: float) -> tuple[float, float]:
    return (point[0] + metres / 111_320, point[1])


# Verify before alert


@pytest.mark.django_db
@pytest.mark.parametrize(
    "status",
    [
        IncidentStatus.NEW,
        IncidentStatus.VERIFYING,
        IncidentStatus.UNVERIFIED,
        IncidentStatus.FALSE,
        IncidentStatus.CLOSED,
    ],
)
def test_only_a_verified_incident_can_produce_an_alert(
    service_area: Any, dispatcher: User, status: IncidentStatus
) -> None:
    incident = incident_at(FRUITVALE, status, dispatcher)
    subscriber(at=FRUITVALE)
    with pytest.raises(actions.AlertRefused, match="Only a verified incident"):
        compose(incident, dispatcher)
    assert not Alert.objects.exists()
    assert not OutboxMessage.objects.exists()


@pytest.mark.django_db
def test_an_alert_composed_before_the_incident_was_closed_is_not_approved(
    verified: Incident, dispatcher: User, second_dispatcher: User
) -> None:
    subscriber(at=FRUITVALE)
    alert = compose(verified, dispatcher)
    Incident.objects.filter(pk=verified.pk).update(status=IncidentStatus.CLOSED)
    with pytest.raises(actions.AlertRefused, match="Only a verified incident"):
        approve(alert, second_dispatcher)
    assert not OutboxMessage.objects.exists()


@pytest.mark.django_db
def test_a_false_incident_gets_rumour_control_not_an_alert(
    service_area: Any, dispatcher: User, second_dispatcher: User
) -> None:
    incident = incident_at(FRUITVALE, IncidentStatus.FALSE, dispatcher)
    subscriber(at=FRUITVALE)
    rumour = compose(incident, dispatcher, kind=AlertKind.RUMOUR)
    approve(rumour, second_dispatcher)
    assert OutboxMessage.objects.filter(batch=rumour.batch).count() == 1
    verified = incident_at(DOWNTOWN, IncidentStatus.VERIFIED, dispatcher)
    with pytest.raises(actions.AlertRefused, match="Rumour control is only"):
        compose(verified, dispatcher, kind=AlertKind.RUMOUR)


# Approval


@pytest.mark.django_db
def test_the_composer_cannot_approve_a_second_dispatcher_can(
    verified: Incident, dispatcher: User, second_dispatcher: User
) -> None:
    subscriber(at=FRUITVALE)
    alert = compose(verified, dispatcher)
    assert alert.status == AlertStatus.AWAITING_APPROVAL
    assert not OutboxMessage.objects.exists()
    with pytest.raises(actions.AlertRefused, match="second dispatcher"):
        approve(alert, dispatcher)
    approved = approve(alert, second_dispatcher)
    assert approved.status == AlertStatus.SENDING and approved.approved_by == second_dispatcher
    assert approved.valid_until is not None
    actions_logged = set(AuditEvent.objects.values_list("action", flat=True))
    assert {AuditAction.ALERT_COMPOSED, AuditAction.ALERT_APPROVED} <= actions_logged


@pytest.mark.django_db
def test_without_second_approval_composing_sends(
    verified: Incident, dispatcher: User, settings: Any
) -> None:
    settings.RR_ALERT_SECOND_APPROVAL = False
    subscriber(at=FRUITVALE)
    with committed():
        alert = compose(verified, dispatcher)
    assert alert.status == AlertStatus.SENDING
    assert OutboxMessage.objects.get(batch=alert.batch).status == OutboxStatus.SENT


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("radius", "bodies", "problem"),
    [
        (50, BODIES, "radius"),
        (20_000, BODIES, "radius"),
        (2000, {"en": "only English"}, "every language"),
        (2000, {"en": "  ", "es": "x"}, "every language"),
    ],
)
def test_bad_compositions_are_refused(
    verified: Incident, dispatcher: User, radius: int, bodies: dict[str, str], problem: str
) -> None:
    with pytest.raises(actions.AlertRefused, match=problem):
        compose(verified, dispatcher, radius_m=radius, bodies=bodies)
    assert not Alert.objects.exists()


# Audience and fan-out


@pytest.mark.django_db
def test_the_audience_is_active_subscribers_whose_areas_meet_the_circle(
    verified: Incident, dispatcher: User, second_dispatcher: User
) -> None:
    near = subscriber(at=north_of(FRUITVALE, 300))
    edge = subscriber(at=north_of(FRUITVALE, 2600), radius_m=1000)  # its area reaches in
    subscriber(at=north_of(FRUITVALE, 6000))  # too far
    subscriber(at=FRUITVALE, active=False)  # never confirmed
    stopped = subscriber(at=FRUITVALE)
    subscriptions.stop(phone_hash=stopped.phone_hash)
    opted = subscriber(at=FRUITVALE)
    OptOut.objects.create(phone_hash=opted.phone_hash)  # blocked at the carrier
    assert actions.audience_count(verified, 2000) == 2
    alert = compose(verified, dispatcher)
    assert alert.audience == 2
    approve(alert, second_dispatcher)
    rows = OutboxMessage.objects.filter(batch=alert.batch).order_by("priority")
    assert [r.recipient_hash for r in rows] == [near.phone_hash, edge.phone_hash]


@pytest.mark.django_db
def test_each_subscriber_gets_their_language_nearest_first(
    verified: Incident, dispatcher: User, second_dispatcher: User, settings: Any
) -> None:
    settings.RR_SMS_RATE_PER_SECOND = 1  # the sender must not drain it before we look
    people = [
        subscriber(at=north_of(FRUITVALE, metres), language=language, radius_m=200)
        for metres, language in [(1500, "es"), (200, "en"), (900, "es"), (3000, "en")]
    ]
    # Approved outside a commit: the sender is not woken, so the rows stay queued.
    alert = actions.approve(
        actor=second_dispatcher, alert=compose(verified, dispatcher, radius_m=5000)
    )
    actions.fan_out(alert.pk)
    rows = list(OutboxMessage.objects.filter(batch=alert.batch).order_by("priority"))
    by_distance = [people[1], people[2], people[0], people[3]]
    assert [r.recipient_hash for r in rows] == [p.phone_hash for p in by_distance]
    assert [r.text for r in rows] == [BODIES[p.language] for p in by_distance]
    # One encrypted text per language, not one per recipient.
    assert OutboxBody.objects.filter(batch=alert.batch).count() == 2
    assert all(r.body is None and r.valid_until == alert.valid_until for r in rows)
    assert all(r.status == OutboxStatus.QUEUED for r in rows)


@pytest.mark.django_db
def test_the_queue_is_by_each_persons_nearest_cell_then_sign_up_order(
    verified: Incident, dispatcher: User, second_dispatcher: User
) -> None:
    """The database orders by cell ranks computed here; the order must be the one the
    distances give: each person by the nearest of their cells, ties by who signed up
    first. Many people share cells and distances, so ties are common."""
    rng = random.Random(3)
    for _ in range(60):
        subscriber(
            at=(FRUITVALE[0] + rng.uniform(-0.03, 0.03), FRUITVALE[1] + rng.uniform(-0.03, 0.03)),
            radius_m=rng.choice([100, 500, 1500]),
            language=rng.choice(["en", "es", "fr"]),
        )
    alert = actions.approve(
        actor=second_dispatcher, alert=compose(verified, dispatcher, radius_m=2500)
    )
    actions.fan_out(alert.pk)
    cells = set(actions.audience_cells(verified, 2500))
    nearest: dict[int, float] = {}
    for person_id, cell in SubscriberCell.objects.values_list("subscriber_id", "h3_cell"):
        if cell in cells:
            place = Point(*h3.cell_to_latlng(h3.int_to_str(cell)))
            far = distance_meters(verified.point, place)
            nearest[person_id] = min(far, nearest.get(person_id, far))
    expected = sorted(nearest, key=lambda person_id: (nearest[person_id], person_id))
    rows = OutboxMessage.objects.filter(batch=alert.batch).order_by("priority")
    got = [int(str(key).rsplit(":", 1)[1]) for key in rows.values_list("dedupe_key", flat=True)]
    assert len(expected) > 20 and got == expected
    assert list(rows.values_list("priority", flat=True)) == list(range(len(expected)))
    # French has no text: those people get the first language written.
    languages = dict(Subscriber.objects.values_list("pk", "language"))
    assert [row.language for row in rows] == [
        "en" if languages[person_id] == "fr" else languages[person_id] for person_id in got
    ]


@pytest.mark.django_db
def test_fanning_out_again_writes_nothing_twice(
    verified: Incident, dispatcher: User, second_dispatcher: User
) -> None:
    for metres in range(0, 1000, 100):
        subscriber(at=north_of(FRUITVALE, metres))
    alert = compose(verified, dispatcher)
    actions.approve(actor=second_dispatcher, alert=alert)
    assert actions.fan_out(alert.pk) == 10
    first = dict(OutboxMessage.objects.filter(batch=alert.batch).values_list("dedupe_key", "pk"))
    # A worker killed mid-fan-out runs it again; a late subscriber is added, no one twice.
    late = subscriber(at=north_of(FRUITVALE, 50))
    assert actions.fan_out(alert.pk) == 11
    second = dict(OutboxMessage.objects.filter(batch=alert.batch).values_list("dedupe_key", "pk"))
    assert {k: second[k] for k in first} == first
    assert f"{alert.batch}:{late.pk:010d}" in second


@pytest.mark.django_db(transaction=True)
def test_two_fan_outs_at_once_write_each_row_once(
    verified: Incident, dispatcher: User, second_dispatcher: User
) -> None:
    """A fan-out task run twice at once (a lease given up too early): the second waits
    for the first's lock on the alert, then finds every row there and adds none."""
    from django.db import connection

    if connection.vendor != "postgresql":
        pytest.skip("SQLite runs one writer at a time anyway")
    for metres in range(0, 1200, 100):
        subscriber(at=north_of(FRUITVALE, metres))
    alert = actions.approve(actor=second_dispatcher, alert=compose(verified, dispatcher))
    counts = at_once(2, lambda: actions.fan_out(alert.pk))
    assert counts == [12, 12]
    rows = OutboxMessage.objects.filter(batch=alert.batch)
    keys = list(rows.values_list("dedupe_key", flat=True))
    assert len(keys) == len(set(keys)) == 12
    assert OutboxBody.objects.filter(batch=alert.batch).count() == 2


@pytest.mark.django_db
def test_a_list_of_alert_messages_reads_their_texts_in_one_query(
    verified: Incident,
    dispatcher: User,
    second_dispatcher: User,
    django_assert_num_queries: Any,
) -> None:
    people = [
        subscriber(at=north_of(FRUITVALE, metres), language=language)
        for metres, language in [(100, "en"), (300, "es"), (500, "es"), (700, "en")]
    ]
    alert = actions.approve(actor=second_dispatcher, alert=compose(verified, dispatcher))
    actions.fan_out(alert.pk)
    rows = list(OutboxMessage.objects.filter(batch=alert.batch).order_by("priority"))
    with django_assert_num_queries(1):
        attach_shared_texts(rows)
        texts = [row.text for row in rows]
    assert texts == [BODIES[language] for language in ("en", "es", "es", "en")]
    # One on its own reads its text itself.
    assert OutboxMessage.objects.get(pk=rows[1].pk).text == BODIES["es"]
    # A person's conversation (the test phone) shows the alert they were sent.
    lines = conversation_with(people[1].phone_hash, provider=rows[1].provider)
    assert [(line.inbound, line.body) for line in lines] == [(False, BODIES["es"])]


@pytest.mark.django_db
def test_an_alerts_texts_stay_while_it_is_live_and_go_with_its_last_message(
    verified: Incident, dispatcher: User, second_dispatcher: User
) -> None:
    """Rows are found by batch, not by a key: the purge must not take the text of an
    alert whose fan-out may still be writing rows for it."""
    subscriber(at=north_of(FRUITVALE, 100))
    alert = actions.approve(actor=second_dispatcher, alert=compose(verified, dispatcher))
    actions.fan_out(alert.pk)
    texts = OutboxBody.objects.filter(batch=alert.batch)
    later = timezone.now() + timedelta(days=400)
    OutboxMessage.objects.filter(batch=alert.batch).delete()
    retention.purge_outbox(later, 100)
    assert texts.count() == 2  # still sending: a fan-out run again needs them
    actions.cancel(actor=dispatcher, alert=alert)
    retention.purge_outbox(later, 100)
    assert texts.count() == 0


# Sending, pausing, cancelling


@pytest.mark.django_db
def test_an_approved_alert_is_sent_and_finishes(
    verified: Incident, dispatcher: User, second_dispatcher: User
) -> None:
    for metres in (100, 300, 500):
        subscriber(at=north_of(FRUITVALE, metres))
    alert = approve(compose(verified, dispatcher), second_dispatcher)
    progress = actions.progress(alert)
    assert (progress.total, progress.sent, progress.waiting, progress.percent) == (3, 3, 0, 100)
    assert actions.finish_sent_alerts() == 1
    alert.refresh_from_db()
    assert alert.status == AlertStatus.SENT and alert.finished_at is not None


@pytest.mark.django_db
def test_pause_holds_resume_sends_cancel_drops(
    verified: Incident, dispatcher: User, second_dispatcher: User, settings: Any
) -> None:
    for metres in range(0, 1000, 100):
        subscriber(at=north_of(FRUITVALE, metres))
    alert = compose(verified, dispatcher)
    actions.approve(actor=second_dispatcher, alert=alert)
    actions.fan_out(alert.pk)
    assert outbox.send_due(limit=3) == 3
    actions.pause(actor=dispatcher, alert=alert)
    assert outbox.send_due() == 0
    progress = actions.progress(alert)
    assert (progress.sent, progress.waiting) == (3, 7)
    assert OutboxMessage.objects.filter(batch=alert.batch, status=OutboxStatus.HELD).count() == 7
    with pytest.raises(actions.AlertRefused):
        actions.pause(actor=dispatcher, alert=alert)
    actions.resume(actor=dispatcher, alert=alert)
    assert outbox.send_due(limit=2) == 2
    actions.cancel(actor=dispatcher, alert=alert)
    assert outbox.send_due() == 0
    counts = actions.progress(alert)
    assert (counts.sent, counts.expired, counts.waiting, counts.percent) == (5, 5, 0, 100)
    alert.refresh_from_db()
    assert alert.status == AlertStatus.CANCELLED
    with pytest.raises(actions.AlertRefused):
        actions.resume(actor=dispatcher, alert=alert)


@pytest.mark.django_db
def test_an_alert_tells_twilio_when_to_drop_it_and_where_to_report(
    verified: Incident, dispatcher: User, second_dispatcher: User, twilio_api: Any, settings: Any
) -> None:
    """Twilio gets a ValidityPeriod (seconds left until valid_until), so a message
    stuck in its queue expires instead of arriving late, and a StatusCallback, so
    delivery is recorded."""
    settings.RR_ALERT_VALIDITY_MINUTES = 30
    person = subscriber(at=FRUITVALE)
    before = timezone.now()
    alert = approve(compose(verified, dispatcher), second_dispatcher)
    [sent] = twilio_api.messages
    assert sent.to == person.contact.phone
    assert alert.valid_until is not None
    left = (alert.valid_until - before).total_seconds()
    assert sent.validity_period is not None
    assert left - 30 <= sent.validity_period <= left
    assert sent.validity_period <= 30 * 60
    assert sent.status_callback == f"{settings.RR_PUBLIC_URL}/hooks/twilio/status"
    assert sent.status_callback.endswith("/hooks/twilio/status")
    row = OutboxMessage.objects.get(batch=alert.batch)
    assert row.status == OutboxStatus.SENT and row.provider_sid == sent.sid


@pytest.mark.django_db
def test_a_stale_alert_expires_instead_of_arriving_late(
    verified: Incident, dispatcher: User, second_dispatcher: User
) -> None:
    subscriber(at=FRUITVALE)
    alert = compose(verified, dispatcher)
    actions.approve(actor=second_dispatcher, alert=alert)
    actions.fan_out(alert.pk)
    OutboxMessage.objects.filter(batch=alert.batch).update(
        valid_until=timezone.now() - timedelta(seconds=1)
    )
    outbox.send_due()
    assert OutboxMessage.objects.get(batch=alert.batch).status == OutboxStatus.EXPIRED


@pytest.mark.django_db
def test_someone_who_texts_stop_mid_send_gets_nothing_more(
    verified: Incident, dispatcher: User, second_dispatcher: User
) -> None:
    person = subscriber(at=FRUITVALE)
    alert = compose(verified, dispatcher)
    actions.approve(actor=second_dispatcher, alert=alert)
    actions.fan_out(alert.pk)
    OptOut.objects.create(phone_hash=person.phone_hash)
    outbox.send_due()
    assert OutboxMessage.objects.get(batch=alert.batch).status == OutboxStatus.SKIPPED


# Breaker and kill switch


@pytest.mark.django_db
def test_at_most_n_alerts_per_area_per_hour(
    verified: Incident, dispatcher: User, second_dispatcher: User, settings: Any
) -> None:
    settings.RR_ALERTS_PER_AREA_PER_HOUR = 2
    subscriber(at=FRUITVALE)
    for _ in range(2):
        approve(compose(verified, dispatcher), second_dispatcher)
    with pytest.raises(actions.AlertRefused, match="already had 2"):
        compose(verified, dispatcher)
    # Another area is not affected; and an hour later this one is open again.
    downtown = incident_at(DOWNTOWN, IncidentStatus.VERIFIED, dispatcher, "Clay & 13th")
    assert downtown.neighbourhood_id != verified.neighbourhood_id
    compose(downtown, dispatcher)
    Alert.objects.filter(incident=verified).update(
        approved_at=timezone.now() - timedelta(hours=1, minutes=1)
    )
    compose(verified, dispatcher)


@pytest.mark.django_db
def test_the_kill_switch_holds_everything_and_refuses_approval(
    verified: Incident, dispatcher: User, second_dispatcher: User, coordinator: User
) -> None:
    for metres in (0, 200, 400):
        subscriber(at=north_of(FRUITVALE, metres))
    sending = compose(verified, dispatcher)
    actions.approve(actor=second_dispatcher, alert=sending)
    actions.fan_out(sending.pk)
    waiting = compose(verified, dispatcher)
    actions.set_sending_enabled(actor=coordinator, enabled=False)
    sending.refresh_from_db()
    assert sending.status == AlertStatus.PAUSED
    assert outbox.send_due() == 0
    with pytest.raises(actions.AlertRefused, match="switched off"):
        approve(waiting, second_dispatcher)
    with pytest.raises(actions.AlertRefused, match="switched off"):
        actions.resume(actor=dispatcher, alert=sending)
    with pytest.raises(actions.AlertRefused, match="switched off"):
        compose(verified, dispatcher)
    actions.set_sending_enabled(actor=coordinator, enabled=True)
    sending.refresh_from_db()
    assert sending.status == AlertStatus.PAUSED  # nothing resumes by itself
    actions.resume(actor=dispatcher, alert=sending)
    assert outbox.send_due() == 3
    assert AuditEvent.objects.filter(action=AuditAction.ALERTS_SWITCHED).count() == 2


# Status callbacks


STATUSES = ["queued", "sent", "delivered", "undelivered", "failed"]


@pytest.mark.django_db
@hypothesis_settings(max_examples=40, deadline=None)
@given(order=st.permutations(STATUSES), repeats=st.lists(st.sampled_from(STATUSES), max_size=4))
def test_callbacks_in_any_order_end_in_the_right_state(
    order: list[str], repeats: list[str]
) -> None:
    sid = f"SM{next(_callback_sids)}"
    message = OutboxMessage.objects.create(
        provider="twilio",
        kind="alert",
        contact=outbox.contact_for("+15105550999"),
        recipient_hash="h",
        language="en",
        status=OutboxStatus.SENT,
        provider_sid=sid,
    )
    callbacks = [*order, *repeats]
    for status in callbacks:
        outbox.record_status(provider_sid=sid, status=status)
    message.refresh_from_db()
    # The first final status to arrive wins; nothing moves a final state.
    finals = [s for s in callbacks if s in {"delivered", "undelivered", "failed"}]
    assert message.status == finals[0]


_callback_sids = itertools.count()


# Templates


@pytest.mark.django_db
def test_templates_fill_placeholders_in_each_language(
    verified: Incident, coordinator: User
) -> None:
    actions.save_template(
        actor=coordinator,
        kind=AlertKind.ALERT,
        language="es",
        body="{network}: agentes en {place}, {time}.",
    )
    bodies = actions.suggested_bodies(verified, AlertKind.ALERT)
    assert bodies["es"].startswith("Test Rapid Response: agentes en International & 35th, ")
    assert "{" not in bodies["en"] and "VERIFIED" in bodies["en"]
    with pytest.raises(actions.AlertRefused, match="Unknown placeholder"):
        actions.save_template(
            actor=coordinator, kind=AlertKind.ALERT, language="en", body="{street}"
        )
    assert AlertTemplate.objects.count() == 1


@pytest.mark.django_db
@pytest.mark.parametrize("language", ["en", "es"])
@pytest.mark.parametrize("kind", list(AlertKind))
def test_the_built_in_texts_fit_one_segment(
    service_area: Any, dispatcher: User, language: str, kind: AlertKind
) -> None:
    status = IncidentStatus.VERIFIED if kind == AlertKind.ALERT else IncidentStatus.FALSE
    incident = incident_at(FRUITVALE, status, dispatcher, where="International Blvd & 35th Ave")
    text = actions.suggested_bodies(incident, kind)[language]
    assert "{" not in text
    assert segments(text).segments == 1, (text, segments(text))


@pytest.mark.django_db
def test_old_drafts_approved_together_still_meet_the_limit(
    verified: Incident, dispatcher: User, second_dispatcher: User, settings: Any
) -> None:
    settings.RR_ALERTS_PER_AREA_PER_HOUR = 1
    first, second = compose(verified, dispatcher), compose(verified, dispatcher)
    Alert.objects.update(created_at=timezone.now() - timedelta(hours=3))
    approve(first, second_dispatcher)
    with pytest.raises(actions.AlertRefused, match="already had 1"):
        approve(second, second_dispatcher)


@pytest.mark.django_db
def test_a_cancelled_alert_still_counts_against_the_hourly_limit(
    verified: Incident, dispatcher: User, second_dispatcher: User, settings: Any
) -> None:
    """Approve, send, cancel, approve again: the first approval may already have reached
    people, so it still counts."""
    settings.RR_ALERTS_PER_AREA_PER_HOUR = 1
    subscriber(at=FRUITVALE)
    draft = compose(verified, dispatcher)
    sent = approve(compose(verified, dispatcher), second_dispatcher)
    assert OutboxMessage.objects.get(batch=sent.batch).status == OutboxStatus.SENT
    actions.cancel(actor=dispatcher, alert=sent)
    with pytest.raises(actions.AlertRefused, match="already had 1"):
        compose(verified, dispatcher)
    with pytest.raises(actions.AlertRefused, match="already had 1"):
        approve(draft, second_dispatcher)
    assert OutboxMessage.objects.count() == 1


# What must stop an alert also stops rows that come back to the queue


@pytest.mark.django_db
def test_rows_that_come_back_after_a_cancel_are_not_sent(
    verified: Incident, dispatcher: User, second_dispatcher: User, twilio_api: Any
) -> None:
    for metres in (0, 200, 400):
        subscriber(at=north_of(FRUITVALE, metres))
    alert = actions.approve(actor=second_dispatcher, alert=compose(verified, dispatcher))
    actions.fan_out(alert.pk)
    # A sender has the rows in hand when the alert is cancelled; the provider answers
    # 429 for one of them, which goes back to the queue; another sender died.
    claimed = outbox._claim(timezone.now(), 3, "in-flight")
    actions.cancel(actor=dispatcher, alert=alert)
    outbox._record_outcome(claimed[0], "in-flight", SendError("busy", code="20429", retry=True))
    OutboxMessage.objects.filter(pk=claimed[0].pk).update(next_attempt_at=timezone.now())
    outbox.release_expired_leases(now=timezone.now() + outbox.LEASE + timedelta(seconds=1))
    outbox.send_due()
    assert twilio_api.messages == []
    statuses = set(OutboxMessage.objects.filter(batch=alert.batch).values_list("status", flat=True))
    assert statuses == {OutboxStatus.CANCELLED}


@pytest.mark.django_db
def test_rows_that_come_back_while_paused_are_held_then_sent_on_resume(
    verified: Incident, dispatcher: User, second_dispatcher: User, twilio_api: Any
) -> None:
    for metres in (0, 200):
        subscriber(at=north_of(FRUITVALE, metres))
    alert = actions.approve(actor=second_dispatcher, alert=compose(verified, dispatcher))
    actions.fan_out(alert.pk)
    outbox._claim(timezone.now(), 2, "dead-sender")
    actions.pause(actor=dispatcher, alert=alert)
    outbox.release_expired_leases(now=timezone.now() + outbox.LEASE + timedelta(seconds=1))
    outbox.send_due()
    assert twilio_api.messages == []
    assert set(OutboxMessage.objects.values_list("status", flat=True)) == {OutboxStatus.HELD}
    actions.resume(actor=dispatcher, alert=alert)
    outbox.send_due()
    assert len(twilio_api.messages) == 2


@pytest.mark.django_db
def test_switched_off_before_the_fan_out_ran_the_rows_are_held(
    verified: Incident, dispatcher: User, second_dispatcher: User, coordinator: User
) -> None:
    subscriber(at=FRUITVALE)
    alert = actions.approve(actor=second_dispatcher, alert=compose(verified, dispatcher))
    actions.set_sending_enabled(actor=coordinator, enabled=False)
    actions.fan_out(alert.pk)
    alert.refresh_from_db()
    assert alert.status == AlertStatus.PAUSED
    assert OutboxMessage.objects.get(batch=alert.batch).status == OutboxStatus.HELD
    assert outbox.send_due() == 0


@pytest.mark.django_db
def test_closing_the_incident_cancels_its_alert(
    verified: Incident, dispatcher: User, second_dispatcher: User
) -> None:
    subscriber(at=FRUITVALE)
    waiting = compose(verified, dispatcher)
    approved = actions.approve(actor=second_dispatcher, alert=compose(verified, dispatcher))
    incident_actions.change_status(
        actor=dispatcher, incident=verified, status=IncidentStatus.CLOSED, reason="agents left"
    )
    for alert in (waiting, approved):
        alert.refresh_from_db()
        assert alert.status == AlertStatus.CANCELLED
    # The fan-out task that was already queued writes nothing.
    assert actions.fan_out(approved.pk) == 0
    assert not OutboxMessage.objects.exists()


@pytest.mark.django_db
def test_a_lost_fan_out_is_run_again(
    verified: Incident, dispatcher: User, second_dispatcher: User
) -> None:
    subscriber(at=FRUITVALE)
    alert = actions.approve(actor=second_dispatcher, alert=compose(verified, dispatcher))
    assert actions.retry_lost_fan_outs() == 0  # too early to call it lost
    Alert.objects.filter(pk=alert.pk).update(approved_at=timezone.now() - timedelta(minutes=5))
    with committed():
        assert actions.retry_lost_fan_outs() == 1
    alert.refresh_from_db()
    assert alert.fanned_out_at is not None
    assert OutboxMessage.objects.filter(batch=alert.batch).count() == 1
    assert actions.retry_lost_fan_outs() == 0


@pytest.mark.django_db
def test_a_language_dropped_since_the_alert_was_written_falls_back(
    verified: Incident, dispatcher: User, second_dispatcher: User, settings: Any
) -> None:
    subscriber(at=FRUITVALE, language="es")
    alert = actions.approve(actor=second_dispatcher, alert=compose(verified, dispatcher))
    settings.RR_LANGUAGES = ["en"]
    assert actions.fan_out(alert.pk) == 1
    assert OutboxMessage.objects.get().text == BODIES["es"]


@pytest.mark.django_db
def test_line_breaks_are_counted_as_the_phone_counts_them(
    verified: Incident, dispatcher: User, coordinator: User
) -> None:
    alert = compose(verified, dispatcher, bodies={"en": "one\r\ntwo", "es": "uno\rdos"})
    assert alert.bodies == {"en": "one\ntwo", "es": "uno\ndos"}
    template = actions.save_template(
        actor=coordinator, kind=AlertKind.ALERT, language="en", body="{network}\r\n{place}"
    )
    assert template.body == "{network}\n{place}"
