"""Matching never offers someone who cannot or should not go, and offers the nearest."""

from __future__ import annotations

import math
from datetime import timedelta

import pytest
from django.utils import timezone
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra.django import TestCase

from conftest import FRUITVALE
from core.geo import Point, distance_meters
from dispatch import actions
from dispatch.matching import nearest_responders
from dispatch.models import Responder, Shift
from dispatch.tests.factories import responder

BASE = Point(*FRUITVALE)


def offset(north_m: float, east_m: float) -> tuple[float, float]:
    return (
        BASE.lat + north_m / 111_195.0,
        BASE.lng + east_m / (111_195.0 * math.cos(math.radians(BASE.lat))),
    )


person = st.fixed_dictionaries(
    {
        "north": st.floats(-20_000, 20_000),
        "east": st.floats(-20_000, 20_000),
        "roles": st.lists(
            st.sampled_from(["verifier", "legal_observer", "attorney"]), min_size=1, max_size=2
        ),
        "languages": st.lists(st.sampled_from(["en", "es", "ko"]), min_size=1, max_size=2),
        "available": st.booleans(),
        "active": st.booleans(),
    }
)


class NearestProperty(TestCase):
    @settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(
        people=st.lists(person, max_size=8),
        role=st.sampled_from(["verifier", "legal_observer"]),
        language=st.sampled_from(["en", "es"]),
    )
    def test_only_qualified_available_people_nearest_first(
        self, people: list[dict[str, object]], role: str, language: str
    ) -> None:
        made = [
            responder(
                at=offset(float(p["north"]), float(p["east"])),  # type: ignore[arg-type]
                roles=list(p["roles"]),  # type: ignore[call-overload]
                languages=list(p["languages"]),  # type: ignore[call-overload]
                available=bool(p["available"]),
                active=bool(p["active"]),
            )
            for p in people
        ]
        found = nearest_responders(BASE, role=role, language=language, limit=50)
        for candidate in found:
            r = candidate.responder
            assert r.active and r.available
            assert r.has_role(role) and r.speaks(language)
        distances = [c.distance_m for c in found]
        assert distances == sorted(distances)
        # Everyone qualified within 30 km is found (the brute-force answer).
        expected = {
            r.pk
            for r in made
            if r.active
            and r.available
            and r.has_role(role)
            and r.speaks(language)
            and r.point is not None
            and distance_meters(BASE, r.point) <= 30_000
        }
        assert {c.responder.pk for c in found} == expected
        Responder.objects.all().delete()


@pytest.mark.django_db
def test_a_shift_makes_a_responder_available_while_it_lasts() -> None:
    r = responder(at=offset(100, 0), available=False)
    now = timezone.now()
    assert nearest_responders(BASE, role="verifier", language="en") == []
    Shift.objects.create(
        responder=r, starts_at=now - timedelta(hours=1), ends_at=now + timedelta(hours=1)
    )
    assert [c.responder for c in nearest_responders(BASE, role="verifier", language="en")] == [r]
    later = now + timedelta(hours=2)
    assert nearest_responders(BASE, role="verifier", language="en", now=later) == []


@pytest.mark.django_db
def test_turning_off_forgets_the_shared_location(service_area: object) -> None:
    r = responder(at=offset(100, 0))
    assert r.shared_lat is not None
    actions.set_availability(responder=r, available=False)
    r.refresh_from_db()
    assert r.shared_lat is None and r.shared_at is None
    assert not r.available


@pytest.mark.django_db
def test_the_nearest_come_first_and_the_limit_holds() -> None:
    far = responder(at=offset(5_000, 0))
    near = responder(at=offset(300, 0))
    middle = responder(at=offset(1_500, 0))
    found = nearest_responders(BASE, role="verifier", language="en", limit=2)
    assert [c.responder for c in found] == [near, middle]
    assert far not in [c.responder for c in found]


@pytest.mark.django_db
def test_matching_reads_cells_not_every_responder(django_assert_max_num_queries: object) -> None:
    for i in range(30):
        responder(at=offset(25_000 + i * 10, 0))
    responder(at=offset(200, 0))
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as ctx:
        found = nearest_responders(BASE, role="verifier", language="en", limit=1)
    assert len(found) == 1
    assert len(ctx) == 2  # the first ring was enough; then the one chosen is loaded
    assert "h3_cell" in ctx.captured_queries[0]["sql"]
