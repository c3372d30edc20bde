"""Finding the nearest available responders who have the role and speak the language.

Search rings widen (3, 10, 30 km) until enough are found; each ring reads only the
responders whose indexed cell lies within it (fine cells up to 3 km, coarse beyond), and
every candidate's distance is then checked exactly. Nothing scans all responders.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from django.db.models import Exists, F, OuterRef, Q, QuerySet
from django.utils import timezone

from core.geo import Point, cells_within, distance_meters
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


def _within(point: Point, radius_m: float) -> Q:
    if radius_m <= FINE_LIMIT_M:
        return Q(h3_cell__in=cells_within(point, radius_m, FINE_RESOLUTION))
    return Q(h3_coarse__in=cells_within(point, radius_m, COARSE_RESOLUTION))


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
    excluded = set(exclude)
    pool = qualified(available_responders(now), role=role, language=language)
    if excluded:
        pool = pool.exclude(pk__in=excluded)
    # Read positions only, measure, and load the few nearest in full afterwards.
    nearest: list[tuple[float, int]] = []
    for radius in RINGS_M:
        rows = pool.filter(_within(point, radius)).values_list("pk", "lat", "lng")
        nearest = sorted(
            (distance, pk)
            for pk, lat, lng in rows
            if lat is not None
            and lng is not None
            and (distance := distance_meters(point, Point(lat, lng))) <= radius
        )
        if len(nearest) >= limit:
            break
    chosen = nearest[:limit]
    people = Responder.objects.in_bulk([pk for _distance, pk in chosen])
    return [Candidate(people[pk], distance) for distance, pk in chosen if pk in people]
