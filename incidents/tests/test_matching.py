"""A located report joins an open incident exactly when one is within the distance and
the time window; otherwise it opens a new one. Found through H3 cells, never a scan."""

from __future__ import annotations

import math
from datetime import datetime, timedelta
from unittest import mock

import pytest
from django.db import connection
from django.utils import timezone
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra.django import TestCase

from core.geo import Point, distance_meters
from incidents import matching
from incidents.models import Incident, IncidentStatus
from intake.models import Report, ReportStatus
from intake.tests.factories import web_report

BASE = Point(37.78, -122.23)


def offset(point: Point, north_m: float, east_m: float) -> Point:
    dlat = north_m / 111_195.0
    dlng = east_m / (111_195.0 * math.cos(math.radians(point.lat)))
    return Point(point.lat + dlat, point.lng + dlng)


existing_incident = st.fixed_dictionaries(
    {
        "north": st.floats(-1500, 1500),
        "east": st.floats(-1500, 1500),
        "minutes_ago": st.integers(0, 240),
        "span": st.integers(0, 90),
        "status": st.sampled_from(list(IncidentStatus)),
    }
)


class MatchingProperty(TestCase):
    @settings(
        max_examples=60,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow],
    )
    @given(
        incidents=st.lists(existing_incident, max_size=6),
        north=st.floats(-1000, 1000),
        east=st.floats(-1000, 1000),
        minutes_ago=st.integers(0, 180),
    )
    def test_a_report_joins_exactly_when_an_open_incident_is_in_range(
        self, incidents: list[dict[str, object]], north: float, east: float, minutes_ago: int
    ) -> None:
        now = timezone.now()
        for spec in incidents:
            point = offset(BASE, float(spec["north"]), float(spec["east"]))  # type: ignore[arg-type]
            last = now - timedelta(minutes=int(spec["minutes_ago"]))  # type: ignore[call-overload]
            Incident.objects.create(
                lat=point.lat,
                lng=point.lng,
                h3_cell=point.cell(),
                first_seen=last - timedelta(minutes=int(spec["span"])),  # type: ignore[call-overload]
                last_seen=last,
                status=str(spec["status"]),
                closed_at=now if spec["status"] == IncidentStatus.CLOSED else None,
            )
        target = offset(BASE, north, east)
        observed = now - timedelta(minutes=minutes_ago)
        eligible = [i for i in Incident.objects.all() if matching.is_within(i, target, observed)]
        before = Incident.objects.count()

        report = web_report(at=(target.lat, target.lng), observed_at=observed)

        report.refresh_from_db()
        assert report.status == ReportStatus.ATTACHED
        if eligible:
            nearest = min(distance_meters(i.point, target) for i in eligible)
            assert report.incident in eligible
            assert distance_meters(report.incident.point, target) == pytest.approx(nearest)
            assert Incident.objects.count() == before
        else:
            assert Incident.objects.count() == before + 1
            assert report.incident is not None and report.incident.reports.count() == 1
        Report.objects.all().delete()
        Incident.objects.all().delete()


@pytest.mark.django_db
def test_the_rule_uses_the_configured_distance_and_window(settings: object) -> None:
    first = web_report(at=(BASE.lat, BASE.lng))
    near = offset(BASE, 450, 0)
    far = offset(BASE, 550, 0)
    assert web_report(at=(near.lat, near.lng)).incident == first.incident
    assert web_report(at=(far.lat, far.lng)).incident != first.incident
    later = timezone.now() + timedelta(minutes=61)
    late = web_report(at=(BASE.lat, BASE.lng), observed_at=later - timedelta(minutes=0))
    # observed_at is clamped by the form, not by the action: an hour and a minute after
    # the incident was last seen is outside the window.
    assert late.incident != first.incident


@pytest.mark.django_db
def test_reports_never_join_closed_incidents() -> None:
    first = web_report(at=(BASE.lat, BASE.lng))
    assert first.incident is not None
    Incident.objects.filter(pk=first.incident.pk).update(
        status=IncidentStatus.CLOSED, closed_at=timezone.now()
    )
    assert web_report(at=(BASE.lat, BASE.lng)).incident != first.incident


@pytest.mark.django_db
def test_the_candidate_query_uses_the_cell_index() -> None:
    point = BASE
    queryset = Incident.objects.filter(
        h3_cell__in=[point.cell()],
        last_seen__gte=timezone.now(),
    )
    plan = queryset.explain()
    if connection.vendor == "sqlite":
        assert "incident_match_idx" in plan
    else:
        # PostgreSQL may prefer a sequential scan on a tiny table; forbid it to see the plan.
        with connection.cursor() as cursor:
            cursor.execute("SET LOCAL enable_seqscan = off")
        assert "incident_match_idx" in queryset.explain()


@pytest.mark.django_db
def test_the_found_incident_is_loaded_as_the_orm_loads_it() -> None:
    report = web_report(at=(BASE.lat, BASE.lng))
    assert report.incident is not None
    found = matching.find_incident(offset(BASE, 50, 0), report.observed_at)
    assert found is not None and found.surge_at is None
    Incident.objects.filter(pk=report.incident.pk).update(
        surge_at=timezone.now(), location_text="Fruitvale BART"
    )
    found = matching.find_incident(offset(BASE, 50, 0), report.observed_at)
    assert found is not None
    stored = Incident.objects.get(pk=report.incident.pk)
    names = ("pk", "uuid", "status", "lat", "lng", "location_text", "first_seen", "last_seen")
    for name in (*names, "updated_at", "surge_at"):
        assert getattr(found, name) == getattr(stored, name), name
    assert found.surge_at is not None and timezone.is_aware(found.surge_at)
    assert timezone.is_aware(found.last_seen)
    # The rest is deferred and loads on demand, as with .only().
    assert "level" in found.get_deferred_fields()
    assert found.level == stored.level


@pytest.mark.django_db
def test_a_report_joining_keeps_what_it_did_not_change() -> None:
    """Joining writes only the time span, the place's words and the update time of the
    incident matching read: a status set since (a verifier's finding) stays."""
    first = web_report(at=(BASE.lat, BASE.lng))
    incident = first.incident
    assert incident is not None
    find = matching.find_incident

    def find_then_change_status(point: Point, observed_at: datetime) -> Incident | None:
        found = find(point, observed_at)
        Incident.objects.filter(pk=incident.pk).update(status=IncidentStatus.VERIFYING)
        return found

    later = first.observed_at + timedelta(minutes=5)
    with mock.patch.object(matching, "find_incident", find_then_change_status):
        second = web_report(at=(BASE.lat, BASE.lng), observed_at=later)
    assert second.incident_id == incident.pk
    incident.refresh_from_db()
    assert incident.status == IncidentStatus.VERIFYING
    assert incident.last_seen == later


@pytest.mark.django_db
def test_equal_candidates_go_to_the_most_recently_updated() -> None:
    now = timezone.now()
    twins = [
        Incident.objects.create(
            lat=BASE.lat,
            lng=BASE.lng,
            h3_cell=BASE.cell(),
            first_seen=now,
            last_seen=now,
            updated_at=now - timedelta(minutes=minutes),
        )
        for minutes in (30, 5, 60)
    ]
    found = matching.find_incident(BASE, now)
    assert found is not None and found.pk == twins[1].pk


@pytest.mark.django_db
def test_the_statement_that_runs_uses_the_cell_index() -> None:
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as ctx:
        matching.find_incident(BASE, timezone.now())
    (query,) = ctx.captured_queries
    with connection.cursor() as cursor:
        if connection.vendor == "sqlite":
            cursor.execute("EXPLAIN QUERY PLAN " + query["sql"])
            plan = " ".join(str(row) for row in cursor.fetchall())
        else:
            cursor.execute("SET LOCAL enable_seqscan = off")
            cursor.execute("EXPLAIN " + query["sql"])
            plan = " ".join(str(row) for row in cursor.fetchall())
    assert "incident_match_idx" in plan
