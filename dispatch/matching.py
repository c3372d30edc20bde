"""Finding the nearest available responders who have the role and speak the language.

Search rings widen (3, 10, 30 km) until enough are found; each ring reads only the
responders whose indexed cell lies within it (fine cells up to 3 km, coarse beyond), and
every candidate's distance is then checked exactly. Nothing scans all responders.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.db import connection
from django.db.models import Exists, F, OuterRef, Q, QuerySet
from django.utils import timezone

from core.db import by_pk, one_of
from core.geo import Point, cells_within, distances_from
from dispatch.models import LANGUAGE_BITS, ROLE_BITS, Responder, Shift
from messaging.models import OptOut

RINGS_M = (3_000, 10_000, 30_000)
FINE_RESOLUTION = 8
COARSE_RESOLUTION = 5
FINE_LIMIT_M = 3_000


@dataclass(frozen=True)
class Candidate:
    responder: Responder
    distance_m: float


def available_responders(now: datetime | None = None) -> QuerySet[Responder]:
    """Active responders who are available now (by their own say-so, or on a shift they
    have not turned off) and whose number has not opted out of our messages."""
    moment = now or timezone.now()
    on_shift = Shift.objects.filter(
        responder=OuterRef("pk"), starts_at__lte=moment, ends_at__gt=moment
    )
    opted_out = OptOut.objects.filter(phone_hash=OuterRef("phone_hash"))
    return (
        Responder.objects.filter(active=True)
        .filter(
            Q(available=True)
            | (Exists(on_shift) & (Q(off_until__isnull=True) | Q(off_until__lte=moment)))
        )
        .exclude(Exists(opted_out))
    )


def qualified(
    responders: QuerySet[Responder], *, role: str, language: str | None
) -> QuerySet[Responder]:
    responders = responders.annotate(role_hit=F("roles").bitand(ROLE_BITS[role])).filter(
        role_hit__gt=0
    )
    if language:
        responders = responders.annotate(
            language_hit=F("languages").bitand(LANGUAGE_BITS.get(language, 0))
        ).filter(language_hit__gt=0)
    return responders


def _ring_sql(
    *,
    cell_column: str,
    cells: list[int],
    role_bits: int,
    language_bits: int | None,
    excluded: list[int],
    moment: datetime,
) -> tuple[str, list[Any]]:
    """The ring search as one statement and its parameters: the same rule as
    ``qualified(available_responders())`` restricted to the ring's cells. Written by
    hand because this runs for every offer and building the ORM's query cost more than
    the indexed read (bench B4); ``dispatch/tests/test_matching.py`` holds both to the
    same answers. Only names from the models' metadata and counts of placeholders are
    formatted in; every value is a parameter."""
    quote = connection.ops.quote_name
    in_cells, params = one_of(f"r.{quote(cell_column)}", cells)
    clauses = [in_cells, "r.active = %s", "(r.roles & %s) > 0"]
    params += [True, role_bits]
    if language_bits is not None:
        clauses.append("(r.languages & %s) > 0")
        params.append(language_bits)
    if excluded:
        in_excluded, excluded_params = one_of("r.id", excluded)
        clauses.append(f"NOT ({in_excluded})")
        params += excluded_params
    shifts, opt_outs = quote(Shift._meta.db_table), quote(OptOut._meta.db_table)
    clauses.append(
        "(r.available = %s OR (EXISTS (SELECT 1 FROM " + shifts + " s"  # noqa: S608  # nosec B608
        " WHERE s.responder_id = r.id AND s.starts_at <= %s AND s.ends_at > %s)"
        " AND (r.off_until IS NULL OR r.off_until <= %s)))"
    )
    opted_out = "NOT EXISTS (SELECT 1 FROM " + opt_outs  # noqa: S608  # nosec B608
    clauses.append(opted_out + " o WHERE o.phone_hash = r.phone_hash)")
    at = connection.ops.adapt_datetimefield_value(moment)
    params += [True, at, at, at]
    table = quote(Responder._meta.db_table)
    sql = f"SELECT r.id, r.lat, r.lng FROM {table} r WHERE " + " AND ".join(clauses)  # noqa: S608  # nosec B608
    return sql, params


def _in_ring(
    point: Point,
    radius_m: float,
    *,
    role_bits: int,
    language_bits: int | None,
    excluded: list[int],
    moment: datetime,
) -> list[tuple[int, float | None, float | None]]:
    """The id and place of every qualified, available responder indexed in the ring:
    whole rows are read only for the few nearest (most candidates are not chosen)."""
    if radius_m <= FINE_LIMIT_M:
        column, cells = "h3_cell", cells_within(point, radius_m, FINE_RESOLUTION)
    else:
        column, cells = "h3_coarse", cells_within(point, radius_m, COARSE_RESOLUTION)
    sql, params = _ring_sql(
        cell_column=column,
        cells=cells,
        role_bits=role_bits,
        language_bits=language_bits,
        excluded=excluded,
        moment=moment,
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return [(pk, lat, lng) for pk, lat, lng in cursor.fetchall()]


def nearest_responders(
    point: Point,
    *,
    role: str,
    language: str | None,
    limit: int = 10,
    exclude: Iterable[int] = (),
    now: datetime | None = None,
) -> list[Candidate]:
    """Up to ``limit`` qualified, available responders, nearest first (30 km at most)."""
    moment = now or timezone.now()
    # An unknown language matches no one, as in ``qualified``.
    language_bits = LANGUAGE_BITS.get(language, 0) if language else None
    excluded = sorted(set(exclude))  # once: ``exclude`` may be a one-pass iterator
    nearest: list[tuple[float, int]] = []
    distance_to = distances_from(point)
    for radius in RINGS_M:
        found = _in_ring(
            point,
            radius,
            role_bits=ROLE_BITS[role],
            language_bits=language_bits,
            excluded=excluded,
            moment=moment,
        )
        nearest = sorted(
            (distance, pk)
            for pk, lat, lng in found
            if lat is not None and lng is not None and (distance := distance_to(lat, lng)) <= radius
        )
        if len(nearest) >= limit:
            break
    # Whole rows for the nearest only. One deleted between the two reads is skipped and
    # the next nearest takes its place.
    chosen: list[Candidate] = []
    start = 0
    while len(chosen) < limit and start < len(nearest):
        batch = nearest[start : start + limit - len(chosen)]
        start += len(batch)
        people = by_pk(Responder, [pk for _distance, pk in batch])
        chosen += [Candidate(people[pk], distance) for distance, pk in batch if pk in people]
    return chosen
