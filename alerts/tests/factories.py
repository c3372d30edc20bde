"""Subscribers for tests, created through the same functions sign-up uses."""

from __future__ import annotations

import itertools

from alerts import subscriptions
from alerts.models import AreaKind, Subscriber
from core.geo import Point

_numbers = itertools.count(1000)


def subscriber(
    *,
    at: tuple[float, float],
    radius_m: int = 500,
    language: str = "en",
    active: bool = True,
    phone: str | None = None,
) -> Subscriber:
    number = phone or f"+1510556{next(_numbers) % 10000:04d}"
    person = subscriptions.subscribe(
        phone=number,
        language=language,
        areas=[subscriptions.AreaSpec(AreaKind.RADIUS, point=Point(*at), radius_m=radius_m)],
    )
    if active:
        subscriptions.confirm_or_restart(phone_hash=person.phone_hash)
        person.refresh_from_db()
    return person
