"""Which open incident a located report belongs to.

Candidates come from the indexed H3 cell column (the cells that can hold a point within
the distance) and the time window; only those few rows are checked exactly. No query
reads every incident.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from django.conf import settings

from core.geo import Point, cells_within, distance_meters
from incidents.models import Incident, IncidentStatus


def match_distance_m() -> float:
    return float(settings.RR_MATCH_DISTANCE_METERS)


def match_window() -> timedelta:
    return timedelta(minutes=settings.RR_MATCH_WINDOW_MINUTES)


def is_within(incident: Incident, point: Point, observed_at: datetime) -> bool:
    """The rule itself: open, close enough in space, and in the incident's time window."""
    window = match_window()
    return (
        incident.status != IncidentStatus.CLOSED
        and distance_meters(incident.point, point) <= match_distance_m()
        and incident.first_seen - window <= observed_at <= incident.last_seen + window
    )


def find_incident(point: Point, observed_at: datetime) -> Incident | None:
    """The nearest open incident the rule admits (latest activity breaks ties)."""
    window = match_window()
    candidates = (
        Incident.objects.filter(
            h3_cell__in=cells_within(point, match_distance_m()),
            last_seen__gte=observed_at - window,
            first_seen__lte=observed_at + window,
        )
        .exclude(status=IncidentStatus.CLOSED)
        .only("id", "uuid", "status", "lat", "lng", "first_seen", "last_seen")
    )
    admitted = [c for c in candidates if is_within(c, point, observed_at)]
    if not admitted:
        return None
    return min(
        admitted,
        key=lambda c: (distance_meters(c.point, point), -c.last_seen.timestamp()),
    )
