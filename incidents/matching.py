"""Which open incident a located report belongs to.

Candidates come from the indexed H3 cell column (the cells that can hold a point within
the distance) and the time window; only those few rows are checked exactly. No query
reads every incident.
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import connection
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from core.db import one_of
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


# What matching reads, in the model's field order (``Model.from_db`` takes values in
# that order when some fields are deferred), and what adding a report to the incident
# found and checking it for a surge read next (a deferred field is a query of its own).
_WANTED = {
    "id",
    "uuid",
    "status",
    "lat",
    "lng",
    "location_text",
    "first_seen",
    "last_seen",
    "updated_at",
    "surge_at",
}
COLUMNS = tuple(f.attname for f in Incident._meta.concrete_fields if f.attname in _WANTED)
_CONVERT = {"uuid": lambda v: uuid.UUID(str(v))}
_DATETIMES = {"first_seen", "last_seen", "updated_at", "surge_at"}


def find_incident(point: Point, observed_at: datetime) -> Incident | None:
    """The nearest open incident the rule admits (latest activity breaks ties, then the
    most recently updated, as the ORM's default order had it)."""
    window = match_window()
    cells = cells_within(point, match_distance_m())
    quote = connection.ops.quote_name
    # One statement on a plain cursor: this runs for every located report, and building
    # the ORM's query (or adapting a raw query's parameters) took several times longer
    # than the indexed read itself (bench B3). Only names from the model's metadata and
    # a count of placeholders are formatted in.
    in_cells, params = one_of("h3_cell", cells)
    sql = (
        f"SELECT {', '.join(quote(c) for c in COLUMNS)} FROM "  # noqa: S608  # nosec B608
        + quote(Incident._meta.db_table)
        + f" WHERE {in_cells}"
        " AND last_seen >= %s AND first_seen <= %s AND status <> %s"
        " ORDER BY updated_at DESC"
    )
    adapt = connection.ops.adapt_datetimefield_value
    params += [
        adapt(observed_at - window),
        adapt(observed_at + window),
        IncidentStatus.CLOSED.value,
    ]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        rows = cursor.fetchall()
    admitted = [
        incident
        for incident in (_incident_from_row(row) for row in rows)
        if is_within(incident, point, observed_at)
    ]
    if not admitted:
        return None
    # min() keeps the first of equals: the most recently updated.
    return min(
        admitted,
        key=lambda c: (distance_meters(c.point, point), -c.last_seen.timestamp()),
    )


def _incident_from_row(row: tuple[Any, ...]) -> Incident:
    """An incident as the ORM would load it with only COLUMNS (the rest deferred)."""
    values = [
        raw
        if raw is None
        else _aware(raw)
        if name in _DATETIMES
        else _CONVERT[name](raw)
        if name in _CONVERT
        else raw
        for name, raw in zip(COLUMNS, row, strict=True)
    ]
    return Incident.from_db(connection.alias, list(COLUMNS), values)


def _aware(value: Any) -> datetime:
    """A timestamp column as the ORM returns it: PostgreSQL gives aware datetimes;
    SQLite gives naive ones in the connection's time zone (or text, without its
    converters)."""
    if isinstance(value, str):
        value = parse_datetime(value)
    if timezone.is_naive(value):
        value = timezone.make_aware(value, connection.timezone)
    return value  # type: ignore[no-any-return]
