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
from dispatch.matching import available_responders, nearest_responders, qualified
from dispatch.models import Responder, Shift
from dispatch.tests.factories import responder
from messaging.models import OptOut

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
        # A shift before, around, after now, or starting or ending exactly now.
        "shift": st.sampled_from([None, "past", "now", "future", "starts_now", "ends_now"]),
        # Time off: none, over, still on, or ending exactly now.
        "off": st.sampled_from([None, "past", "future", "ends_now"]),
        "opted_out": st.booleans(),
        "excluded": st.booleans(),
    }
)


def orm_answer(
    made: list[Responder], *, role: str, language: str | None, excluded: set[int], now: object
) -> list[int]:
    """What the ORM's rule (``qualified(available_responders())``) and an exact distance
    give, nearest first: the hand-written ring search must agree with it."""
    pool = qualified(available_responders(now), role=role, language=language)  # type: ignore[arg-type]
    allowed = set(pool.values_list("pk", flat=True))
    scored = sorted(
        (distance_meters(BASE, r.point), r.pk)
        for r in made
        if r.pk in allowed and r.pk not in excluded and r.point is not None
    )
    return [pk for distance, pk in scored if distance <= 30_000]


class NearestProperty(TestCase):
    @settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(
        people=st.lists(person, max_size=8),
        role=st.sampled_from(["verifier", "legal_observer"]),
        # "xx" is no language we know (no bits): it matches no one.
        language=st.sampled_from(["en", "es", "xx", None]),
        limit=st.integers(1, 50),
    )
    def test_only_qualified_available_people_nearest_first(
        self, people: list[dict[str, object]], role: str, language: str | None, limit: int
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
        now = timezone.now()
        excluded = set()
        hour = timedelta(hours=1)
        shifts = {
            "past": (now - 2 * hour, now - hour),
            "now": (now - hour, now + hour),
            "future": (now + hour, now + 2 * hour),
            "starts_now": (now, now + hour),
            "ends_now": (now - hour, now),
        }
        off = {"past": now - hour, "future": now + hour, "ends_now": now}
        for p, r in zip(people, made, strict=True):
            if p["shift"] is not None:
                starts, ends = shifts[str(p["shift"])]
                Shift.objects.create(responder=r, starts_at=starts, ends_at=ends)
            if p["off"] is not None:
                Responder.objects.filter(pk=r.pk).update(off_until=off[str(p["off"])])
            if p["opted_out"]:
                OptOut.objects.create(phone_hash=r.phone_hash)
            if p["excluded"]:
                excluded.add(r.pk)
        fresh = Responder.objects.in_bulk([r.pk for r in made])
        made = [fresh[r.pk] for r in made]  # in the order of ``people``
        found = nearest_responders(
            BASE, role=role, language=language, limit=limit, exclude=iter(excluded), now=now
        )
        # The rings stop once one holds ``limit``: still the nearest ``limit`` overall.
        assert [c.responder.pk for c in found] == orm_answer(
            made, role=role, language=language, excluded=excluded, now=now
        )[:limit]
        opted_out = set(OptOut.objects.values_list("phone_hash", flat=True))
        for candidate in found:
            r = candidate.responder
            assert r.active and (r.available or r.shifts.exists())
            assert r.has_role(role) and (language is None or r.speaks(language))
            assert r.pk not in excluded and r.phone_hash not in opted_out
        distances = [c.distance_m for c in found]
        assert distances == sorted(distances)
        # Everyone qualified within 30 km is found (the brute-force answer, for the
        # plain case: available by their own say-so, no shift, no opt-out).
        expected = {
            r.pk
            for r, p in zip(made, people, strict=True)
            if r.active
            and r.available
            and r.has_role(role)
            and (language is None or r.speaks(language))
            and r.point is not None
            and distance_meters(BASE, r.point) <= 30_000
            and not p["opted_out"]
            and not p["excluded"]
        }
        if limit >= len(made):
            assert expected <= {c.responder.pk for c in found}
        OptOut.objects.all().delete()
        Responder.objects.all().delete()


@pytest.mark.django_db
@pytest.mark.parametrize("language", ["en", "es", "xx", None])
def test_every_shift_and_time_off_case_agrees_with_the_orm_rule(language: str | None) -> None:
    """Each combination once, at its own distance: shifts before, around, after and at
    the boundaries of now, time off over, running or ending now, and available or not."""
    now = timezone.now()
    hour = timedelta(hours=1)
    shifts = [
        None,
        (now - 2 * hour, now - hour),
        (now - hour, now + hour),
        (now + hour, now + 2 * hour),
        (now, now + hour),
        (now - hour, now),
    ]
    offs = [None, now - hour, now + hour, now]
    made = []
    for i, (shift, off, available) in enumerate(
        (shift, off, available) for shift in shifts for off in offs for available in (True, False)
    ):
        r = responder(at=offset(100 + i * 50, 0), languages=["en"], available=available)
        if shift is not None:
            Shift.objects.create(responder=r, starts_at=shift[0], ends_at=shift[1])
        if off is not None:
            Responder.objects.filter(pk=r.pk).update(off_until=off)
        made.append(r)
    expected = orm_answer(made, role="verifier", language=language, excluded=set(), now=now)
    found = nearest_responders(BASE, role="verifier", language=language, limit=100, now=now)
    assert [c.responder.pk for c in found] == expected
    if language in ("en", None):
        # Available by their own say-so (24), on the current or just-started shift and
        # not off (2 shifts x the 3 time-off cases that are over or none).
        assert len(expected) == 24 + 2 * 3


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
    # The first ring was enough: its ids and places, then the chosen one's whole row.
    assert len(ctx) == 2
    ring, chosen = (query["sql"] for query in ctx.captured_queries)
    assert "h3_cell" in ring and "h3_coarse" not in ring
    assert "notes" not in ring and "notes" in chosen


@pytest.mark.django_db
def test_one_deleted_between_the_two_reads_is_replaced_by_the_next_nearest(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from dispatch import matching

    gone = responder(at=offset(100, 0))
    near = responder(at=offset(300, 0))
    middle = responder(at=offset(1_500, 0))
    read = matching._in_ring

    def ring_then_delete(*args: object, **kwargs: object) -> object:
        found = read(*args, **kwargs)  # type: ignore[arg-type]
        Responder.objects.filter(pk=gone.pk).delete()  # after its id and place were read
        return found

    monkeypatch.setattr(matching, "_in_ring", ring_then_delete)
    found = nearest_responders(BASE, role="verifier", language="en", limit=2)
    assert [c.responder for c in found] == [near, middle]
