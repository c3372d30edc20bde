from __future__ import annotations

import itertools
from typing import Any

from core.geo import Point
from dispatch import actions
from dispatch.models import Responder

_numbers = itertools.count(200)


def responder(
    *,
    at: tuple[float, float] | None = None,
    roles: list[str] | None = None,
    languages: list[str] | None = None,
    available: bool = True,
    active: bool = True,
    name: str | None = None,
    phone: str | None = None,
) -> Responder:
    number = next(_numbers)
    person = actions.save_responder(
        actor=None,
        data=actions.ResponderData(
            name=name or f"Responder {number}",
            phone=phone or f"+1510555{number % 10000:04d}",
            roles=roles or ["verifier"],
            languages=languages or ["en", "es"],
            active=active,
        ),
    )
    if available and active:
        actions.set_availability(responder=person, available=True)
        if at is not None:
            actions.share_location(responder=person, point=Point(*at))
    elif at is not None:
        Responder.objects.filter(pk=person.pk).update(
            lat=at[0], lng=at[1], h3_cell=Point(*at).cell(8), h3_coarse=Point(*at).cell(5)
        )
    person.refresh_from_db()
    return person


def anywhere(**kwargs: Any) -> Responder:
    return responder(**kwargs)
