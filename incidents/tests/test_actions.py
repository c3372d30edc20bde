"""Incident actions: the state machine, moving, merging, splitting, triage, placing."""

from __future__ import annotations

import itertools
from datetime import timedelta

import pytest
from django.utils import timezone
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.django import TestCase

from accounts.models import User
from conftest import DOWNTOWN, FRUITVALE, OUTSIDE_AREA
from core.areas import OutsideServiceArea
from core.geo import Point
from core.models import AuditAction, AuditEvent
from incidents import actions
from incidents.models import (
    TRANSITIONS,
    ConsoleEvent,
    IllegalTransition,
    Incident,
    IncidentStatus,
    Level,
    TimelineKind,
)
from intake.models import Report, ReportStatus, Triage
from intake.tests.factories import web_report


def incident_with_status(status: IncidentStatus) -> Incident:
    report = web_report(at=FRUITVALE)
    incident = report.incident
    assert incident is not None
    Incident.objects.filter(pk=incident.pk).update(
        status=status, closed_at=timezone.now() if status == IncidentStatus.CLOSED else None
    )
    incident.refresh_from_db()
    return incident


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("current", "requested"), list(itertools.product(IncidentStatus, IncidentStatus))
)
def test_every_transition_is_allowed_or_refused_with_a_clear_error(
    dispatcher: User, current: IncidentStatus, requested: IncidentStatus
) -> None:
    incident = incident_with_status(current)
    allowed = requested in TRANSITIONS[current]
    if allowed:
        changed = actions.change_status(
            actor=dispatcher, incident=incident, status=requested, reason="checked"
        )
        assert changed.status == requested
        assert (changed.closed_at is not None) == (requested == IncidentStatus.CLOSED)
        entry = changed.timeline.filter(kind=TimelineKind.STATUS).last()
        assert entry is not None
        assert (entry.from_value, entry.to_value, entry.actor) == (current, requested, dispatcher)
        assert entry.reason == "checked"
    else:
        with pytest.raises(IllegalTransition, match=f"'{current}' cannot become '{requested}'"):
            actions.change_status(
                actor=dispatcher, incident=incident, status=requested, reason="checked"
            )
        incident.refresh_from_db()
        assert incident.status == current


def test_the_documented_path_is_possible() -> None:
    path = [IncidentStatus.NEW, IncidentStatus.VERIFYING]
    assert IncidentStatus.VERIFYING in TRANSITIONS[IncidentStatus.NEW]
    for outcome in (IncidentStatus.VERIFIED, IncidentStatus.UNVERIFIED, IncidentStatus.FALSE):
        assert outcome in TRANSITIONS[path[-1]]
        assert IncidentStatus.CLOSED in TRANSITIONS[outcome]
    assert TRANSITIONS[IncidentStatus.CLOSED] == frozenset()


class StatusSequences(TestCase):
    @settings(max_examples=40, deadline=None)
    @given(st.lists(st.sampled_from(list(IncidentStatus)), max_size=8))
    def test_no_sequence_of_requests_reaches_an_unreachable_state(
        self, requests: list[IncidentStatus]
    ) -> None:
        actor = User.objects.get_or_create(username="seq", defaults={"role": "dispatcher"})[0]
        incident = incident_with_status(IncidentStatus.NEW)
        history = [IncidentStatus.NEW]
        for requested in requests:
            try:
                incident = actions.change_status(
                    actor=actor, incident=incident, status=requested, reason="r"
                )
                history.append(requested)
            except IllegalTransition:
                pass
        for before, after in itertools.pairwise(history):
            assert after in TRANSITIONS[before]
        statuses = list(
            incident.timeline.filter(kind=TimelineKind.STATUS).values_list("to_value", flat=True)
        )
        assert statuses == history[1:]


@pytest.mark.django_db
def test_a_reason_is_required(dispatcher: User) -> None:
    incident = incident_with_status(IncidentStatus.NEW)
    with pytest.raises(actions.ActionRefused):
        actions.change_status(
            actor=dispatcher, incident=incident, status=IncidentStatus.VERIFYING, reason="  "
        )
    with pytest.raises(actions.ActionRefused):
        actions.change_level(actor=dispatcher, incident=incident, level=Level.RED, reason="")


@pytest.mark.django_db
def test_changing_the_level_is_recorded(dispatcher: User) -> None:
    incident = incident_with_status(IncidentStatus.NEW)
    actions.change_level(actor=dispatcher, incident=incident, level=Level.RED, reason="arrest seen")
    incident.refresh_from_db()
    assert incident.level == Level.RED
    entry = incident.timeline.get(kind=TimelineKind.LEVEL)
    assert (entry.from_value, entry.to_value) == (Level.YELLOW, Level.RED)
    assert AuditEvent.objects.filter(action=AuditAction.INCIDENT_COLOUR).count() == 1
    with pytest.raises(actions.ActionRefused):
        actions.change_level(actor=dispatcher, incident=incident, level=Level.RED, reason="again")


@pytest.mark.django_db
def test_merging_moves_every_report_and_closes_the_source(
    dispatcher: User, service_area: object
) -> None:
    a = web_report(at=FRUITVALE)
    b = web_report(at=DOWNTOWN)
    web_report(at=DOWNTOWN)
    assert a.incident and b.incident and a.incident != b.incident
    source, target = b.incident, a.incident
    actions.merge_incidents(actor=dispatcher, source=source, target=target, reason="same raid")
    source.refresh_from_db()
    target.refresh_from_db()
    assert source.status == IncidentStatus.CLOSED and source.merged_into == target
    assert target.reports.count() == 3
    assert not source.reports.exists()
    assert target.timeline.filter(kind=TimelineKind.MERGED_FROM, other_incident=source).exists()
    assert source.timeline.filter(kind=TimelineKind.MERGED_INTO, other_incident=target).exists()
    with pytest.raises(actions.ActionRefused):
        actions.merge_incidents(actor=dispatcher, source=source, target=target, reason="again")
    with pytest.raises(actions.ActionRefused):
        actions.merge_incidents(actor=dispatcher, source=target, target=target, reason="self")


@pytest.mark.django_db
def test_moving_the_last_report_closes_the_emptied_incident(dispatcher: User) -> None:
    a = web_report(at=FRUITVALE)
    b = web_report(at=DOWNTOWN)
    assert a.incident and b.incident
    actions.move_report(actor=dispatcher, report=b, incident=a.incident, reason="duplicate")
    b.refresh_from_db()
    old = Incident.objects.exclude(pk=a.incident.pk).get()
    assert b.incident == a.incident
    assert old.status == IncidentStatus.CLOSED
    assert old.timeline.filter(kind=TimelineKind.REPORT_REMOVED, report=b).exists()
    with pytest.raises(actions.ActionRefused):
        actions.move_report(actor=dispatcher, report=b, incident=a.incident)
    with pytest.raises(actions.ActionRefused):
        actions.move_report(actor=dispatcher, report=a, incident=old)


@pytest.mark.django_db
def test_moving_updates_the_seen_times_of_both_incidents(dispatcher: User) -> None:
    now = timezone.now()
    early = web_report(at=FRUITVALE, observed_at=now - timedelta(minutes=30))
    late = web_report(at=FRUITVALE, observed_at=now)
    other = web_report(at=DOWNTOWN, observed_at=now - timedelta(minutes=5))
    assert early.incident == late.incident and other.incident
    actions.move_report(actor=dispatcher, report=early, incident=other.incident)
    assert late.incident_id is not None
    remaining = Incident.objects.get(pk=late.incident_id)
    target = Incident.objects.get(pk=other.incident.pk)
    assert remaining.first_seen == late.observed_at == remaining.last_seen
    assert target.first_seen == early.observed_at
    assert target.last_seen == other.observed_at


@pytest.mark.django_db
def test_splitting_makes_a_new_incident_from_one_report(dispatcher: User) -> None:
    first = web_report(at=FRUITVALE)
    second = web_report(at=FRUITVALE)
    assert first.incident == second.incident
    new = actions.split_report(actor=dispatcher, report=second, reason="different car")
    second.refresh_from_db()
    assert second.incident == new != first.incident
    assert new.reports.count() == 1
    with pytest.raises(actions.ActionRefused):
        actions.split_report(actor=dispatcher, report=second)  # its only report


@pytest.mark.django_db
def test_placing_an_unplaced_report_groups_it(dispatcher: User, service_area: object) -> None:
    located = web_report(at=FRUITVALE)
    unplaced = web_report("la migra en la escuela", where="near the school")
    assert unplaced.status == ReportStatus.UNPLACED and unplaced.incident is None
    incident = actions.place_report(actor=dispatcher, report=unplaced, point=Point(*FRUITVALE))
    unplaced.refresh_from_db()
    assert incident == located.incident == unplaced.incident
    assert unplaced.neighbourhood is not None and unplaced.neighbourhood.name == "Fruitvale"
    with pytest.raises(actions.ActionRefused):
        actions.place_report(actor=dispatcher, report=unplaced, point=Point(*FRUITVALE))


@pytest.mark.django_db
def test_placing_outside_the_area_changes_nothing(dispatcher: User, service_area: object) -> None:
    report = web_report(where="somewhere")
    with pytest.raises(OutsideServiceArea):
        actions.place_report(actor=dispatcher, report=report, point=Point(*OUTSIDE_AREA))
    report.refresh_from_db()
    assert report.status == ReportStatus.UNPLACED and report.lat is None
    assert not Incident.objects.exists()


@pytest.mark.django_db
def test_dismissing_a_report_takes_it_out_and_restoring_brings_it_back(dispatcher: User) -> None:
    report = web_report(at=FRUITVALE)
    incident = report.incident
    assert incident is not None
    actions.triage_report(actor=dispatcher, report=report, triage=Triage.HOSTILE)
    report.refresh_from_db()
    incident.refresh_from_db()
    assert report.status == ReportStatus.DISMISSED and report.incident is None
    assert incident.status == IncidentStatus.CLOSED
    actions.triage_report(actor=dispatcher, report=report, triage=Triage.SIGHTING)
    report.refresh_from_db()
    assert report.status == ReportStatus.ATTACHED
    assert report.incident is not None and report.incident != incident


@pytest.mark.django_db
def test_every_action_publishes_to_the_console_and_audits(dispatcher: User) -> None:
    before_events = ConsoleEvent.objects.count()
    before_audit = AuditEvent.objects.count()
    report = web_report(at=FRUITVALE)
    assert report.incident is not None
    actions.change_status(
        actor=dispatcher, incident=report.incident, status=IncidentStatus.VERIFYING, reason="go"
    )
    assert ConsoleEvent.objects.count() >= before_events + 2
    events = AuditEvent.objects.order_by("pk")[before_audit:]
    assert [e.action for e in events] == [
        AuditAction.INCIDENT_OPENED,
        AuditAction.REPORT_RECEIVED,
        AuditAction.INCIDENT_STATUS,
    ]
    status_event = events[2]
    assert status_event.actor == dispatcher
    assert status_event.detail == {"from_status": "new", "to_status": "verifying"}


@pytest.mark.django_db
def test_an_unplaced_report_is_announced_to_the_console() -> None:
    report = web_report(where="somewhere")
    assert ConsoleEvent.objects.filter(kind="report", object_uuid=report.uuid).exists()
    assert Report.objects.get(pk=report.pk).status == ReportStatus.UNPLACED


@pytest.mark.django_db
def test_every_change_to_a_report_is_announced_for_its_page(dispatcher: User) -> None:
    a = web_report(at=FRUITVALE)
    b = web_report(at=DOWNTOWN)
    assert b.incident is not None
    before = ConsoleEvent.objects.filter(kind="report", object_uuid=a.uuid).count()
    actions.move_report(actor=dispatcher, report=a, incident=b.incident)
    actions.split_report(actor=dispatcher, report=a)
    after = ConsoleEvent.objects.filter(kind="report", object_uuid=a.uuid).count()
    assert after >= before + 2
