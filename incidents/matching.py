"""Which open incident a located report belongs to.

Candidates come from the indexed H3 cell column (the cells that can hold a point within
the distance) and the time window; only those few rows are checked exactly. No query
reads every incident.
"""

from __future__ import annotations

import math
import uuid
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import connection
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from core.db import one_of
from core.geo import Point, cells_within, distance_meters, distances_from
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
_LAT, _LNG, _STATUS, _FIRST_SEEN, _LAST_SEEN = (
    COLUMNS.index(name) for name in ("lat", "lng", "status", "first_seen", "last_seen")
)


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
    # The rule on each row's bare values, and a model only for the one chosen: most
    # candidates are turned down, and building each cost more than the read (bench B3).
    # The same arithmetic as ``is_within`` (``distances_from`` equals distance_meters to
    # the last bit), so the two never disagree at the edge.
    distance_to = distances_from(point)
    limit = match_distance_m()
    best: tuple[Any, ...] | None = None
    best_key = (math.inf, math.inf)
    for row in rows:
        distance = distance_to(row[_LAT], row[_LNG])
        if distance > limit or row[_STATUS] == IncidentStatus.CLOSED:
            continue
        first_seen, last_seen = _aware(row[_FIRST_SEEN]), _aware(row[_LAST_SEEN])
        if not first_seen - window <= observed_at <= last_seen + window:
            continue
        key = (distance, -last_seen.timestamp())
        # Strictly less: the first of equals stays, the most recently updated.
        if key < best_key:
            best, best_key = row, key
    return None if best is None else _incident_from_row(best)


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
