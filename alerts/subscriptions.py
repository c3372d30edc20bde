"""Subscribing and unsubscribing: by SMS keyword (JOIN/ALERTA + area, confirmed by
replying YES) or on the public page (confirmed by a code sent by SMS)."""

from __future__ import annotations

import secrets
import unicodedata
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import h3
from django.conf import settings
from django.db import transaction
from django.utils import timezone, translation
from django.utils.translation import gettext as _

from alerts.models import (
    AreaKind,
    Subscriber,
    SubscriberArea,
    SubscriberCell,
    SubscriberStatus,
    ZipCode,
)
from core import hash_rotation, phones
from core.crypto import keyed_hash, keyed_hashes
from core.geo import Point, cells_touching, polygons_of
from core.models import Neighbourhood
from messaging.models import OutboxKind
from messaging.outbox import contact_for, queue_sms

CELL_RESOLUTION = 8
CODE_LIFETIME = timedelta(minutes=15)
MAX_CODE_ATTEMPTS = 5
MAX_RADIUS_M = 10_000


class SubscriptionRefused(ValueError):
    pass


@dataclass(frozen=True)
class AreaSpec:
    kind: AreaKind
    neighbourhood: Neighbourhood | None = None
    zip_code: ZipCode | None = None
    point: Point | None = None
    radius_m: int | None = None

    @property
    def label(self) -> str:
        if self.neighbourhood is not None:
            return self.neighbourhood.name
        if self.zip_code is not None:
            return self.zip_code.code
        return _("%(km).1f km around a point") % {"km": (self.radius_m or 0) / 1000}


def _plain(text: str) -> str:
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(c for c in decomposed if not unicodedata.combining(c)).strip().lower()


def area_from_text(text: str) -> AreaSpec | None:
    """A neighbourhood name (accents and case ignored) or a ZIP code from an SMS."""
    wanted = _plain(text).strip(" .!")
    if not wanted:
        return None
    if wanted.isdigit():
        code = ZipCode.objects.filter(code=wanted[:5]).first()
        return AreaSpec(AreaKind.ZIP, zip_code=code) if code else None
    for hood in Neighbourhood.objects.all():
        if _plain(hood.name) == wanted or hood.slug == wanted.replace(" ", "-"):
            return AreaSpec(AreaKind.NEIGHBOURHOOD, neighbourhood=hood)
    return None


def cells_for(area: AreaSpec) -> set[int]:
    if area.kind == AreaKind.NEIGHBOURHOOD and area.neighbourhood is not None:
        hood = area.neighbourhood
        cells: set[int] = set()
        for polygon in polygons_of(hood.geometry):
            outer, *holes = [[(lat, lng) for lng, lat, *_ in ring] for ring in polygon]
            shape = h3.LatLngPoly(outer, *holes)
            # Every cell that touches the neighbourhood, not only those whose centre is
            # inside: someone living on the edge should rather get an alert than miss it.
            covering = h3.h3shape_to_cells_experimental(shape, CELL_RESOLUTION, contain="overlap")
            cells.update(h3.str_to_int(c) for c in covering)
        cells.add(Point(hood.label_lat, hood.label_lng).cell(CELL_RESOLUTION))
        return cells
    if area.kind == AreaKind.ZIP and area.zip_code is not None:
        centre = Point(area.zip_code.lat, area.zip_code.lng)
        return set(cells_touching(centre, area.zip_code.radius_m, CELL_RESOLUTION))
    if area.point is not None and area.radius_m:
        return set(cells_touching(area.point, area.radius_m, CELL_RESOLUTION))
    raise SubscriptionRefused(_("Choose a neighbourhood, a ZIP code or a point on the map."))


# A pin is kept to about 100 m: enough to send alerts by, not a home address.
PIN_DECIMALS = 3


def _check_area(area: AreaSpec) -> None:
    if area.radius_m is not None and not 100 <= area.radius_m <= MAX_RADIUS_M:
        raise SubscriptionRefused(_("Choose a radius between 100 m and 10 km."))


def _rounded(point: Point | None) -> Point | None:
    if point is None:
        return None
    return Point(round(point.lat, PIN_DECIMALS), round(point.lng, PIN_DECIMALS))


def _add_area(subscriber: Subscriber, area: AreaSpec) -> None:
    _check_area(area)
    pin = _rounded(area.point)
    SubscriberArea.objects.create(
        subscriber=subscriber,
        kind=area.kind,
        neighbourhood=area.neighbourhood,
        zip_code=area.zip_code,
        lat=pin.lat if pin else None,
        lng=pin.lng if pin else None,
        radius_m=area.radius_m,
    )
    if pin is not None:
        area = AreaSpec(area.kind, point=pin, radius_m=area.radius_m)
    SubscriberCell.objects.bulk_create(
        [SubscriberCell(subscriber=subscriber, h3_cell=cell) for cell in cells_for(area)],
        ignore_conflicts=True,
    )


@transaction.atomic
def subscribe(*, phone: str, language: str, areas: list[AreaSpec]) -> Subscriber:
    """JOIN by SMS: create or extend a subscription from the phone itself; a new one
    stays pending until the phone answers YES."""
    if not areas:
        raise SubscriptionRefused(_("Choose at least one area."))
    if language not in settings.RR_LANGUAGES:
        language = str(settings.RR_LANGUAGES[0])
    e164 = phones.normalize(phone)
    contact = contact_for(e164)
    subscriber, _created = Subscriber.objects.select_for_update().get_or_create(
        phone_hash=contact.phone_hash,
        defaults={"contact": contact, "language": language},
    )
    subscriber.language = language
    if subscriber.status == SubscriberStatus.STOPPED:
        subscriber.status = SubscriberStatus.PENDING
    if subscriber.status == SubscriberStatus.PENDING:
        subscriber.pending_via = "sms"
    subscriber.save()
    for area in areas:
        _add_area(subscriber, area)
    return subscriber


def _area_to_json(area: AreaSpec) -> dict[str, object]:
    pin = _rounded(area.point)
    return {
        "kind": area.kind.value,
        "neighbourhood": area.neighbourhood.pk if area.neighbourhood else None,
        "zip_code": area.zip_code.pk if area.zip_code else None,
        "lat": pin.lat if pin else None,
        "lng": pin.lng if pin else None,
        "radius_m": area.radius_m,
    }


def _area_from_json(data: dict[str, Any]) -> AreaSpec:
    point = Point(data["lat"], data["lng"]) if data.get("lat") is not None else None
    return AreaSpec(
        AreaKind(data["kind"]),
        neighbourhood=(
            Neighbourhood.objects.filter(pk=data["neighbourhood"]).first()
            if data.get("neighbourhood")
            else None
        ),
        zip_code=ZipCode.objects.filter(pk=data["zip_code"]).first()
        if data.get("zip_code")
        else None,
        point=point,
        radius_m=data.get("radius_m"),
    )


@transaction.atomic
def request_on_the_web(*, phone: str, language: str, areas: list[AreaSpec]) -> Subscriber:
    """The web form's first step. Whoever typed the number may not hold the phone, so
    nothing changes yet: the language and areas wait in ``pending_change`` until the
    code sent to the phone comes back. A number we do not know gets a pending
    subscriber with no areas."""
    if not areas:
        raise SubscriptionRefused(_("Choose at least one area."))
    for area in areas:
        _check_area(area)
    if language not in settings.RR_LANGUAGES:
        language = str(settings.RR_LANGUAGES[0])
    contact = contact_for(phones.normalize(phone))
    subscriber, _created = Subscriber.objects.select_for_update().get_or_create(
        phone_hash=contact.phone_hash,
        defaults={"contact": contact, "language": language, "pending_via": "web"},
    )
    subscriber.pending_change = {
        "language": language,
        "areas": [_area_to_json(area) for area in areas],
    }
    subscriber.save(update_fields=["pending_change"])
    return subscriber


def _code_hash(subscriber: Subscriber, code: str) -> str:
    return keyed_hash(f"{subscriber.uuid}:{code}", purpose="subscription-code")


def _code_hashes(subscriber: Subscriber, code: str) -> list[str]:
    return keyed_hashes(f"{subscriber.uuid}:{code}", purpose="subscription-code")


@transaction.atomic
def send_code(*, subscriber: Subscriber) -> None:
    """The web sign-up's confirmation: six digits by SMS, valid 15 minutes."""
    code = f"{secrets.randbelow(10**6):06d}"
    subscriber.code_hash = _code_hash(subscriber, code)
    subscriber.code_expires_at = timezone.now() + CODE_LIFETIME
    subscriber.code_attempts = 0
    subscriber.save(update_fields=["code_hash", "code_expires_at", "code_attempts"])
    language = (subscriber.pending_change or {}).get("language") or subscriber.language
    with translation.override(language):
        queue_sms(
            to=subscriber.contact.phone,
            body=_(
                "%(network)s: your code is %(code)s. It confirms your alert subscription. "
                "Reply STOP to end."
            )
            % {"network": settings.RR_NETWORK_NAME, "code": code},
            language=language,
            kind=OutboxKind.SUBSCRIPTION,
            valid_until=subscriber.code_expires_at,
        )


def confirm_code(*, phone: str, code: str) -> Subscriber:
    """The web sign-up's second step. Wrong guesses are counted (and committed, even
    though the caller is refused): five and the code is dead."""
    try:
        e164 = phones.normalize(phone)
    except phones.InvalidPhoneNumber as exc:
        raise SubscriptionRefused(_("That does not look like a phone number.")) from exc
    phone_hash = phones.phone_hash(e164)
    refused = SubscriptionRefused(_("That code is not right or has expired. Ask for a new one."))
    with transaction.atomic():
        hash_rotation.bring_forward(e164)  # a no-op unless RR_HASH_KEY is rotating
        subscriber = Subscriber.objects.select_for_update().filter(phone_hash=phone_hash).first()
        if subscriber is None or not subscriber.code_hash or subscriber.code_expires_at is None:
            raise refused
        if (
            subscriber.code_expires_at < timezone.now()
            or subscriber.code_attempts >= MAX_CODE_ATTEMPTS
        ):
            raise refused
        subscriber.code_attempts += 1
        # A code sent just before RR_HASH_KEY rotated was hashed under the previous key.
        matches = any(
            secrets.compare_digest(candidate, subscriber.code_hash)
            for candidate in _code_hashes(subscriber, code.strip())
        )
        if matches:
            subscriber.code_hash = ""
            subscriber.code_expires_at = None
            change = subscriber.pending_change or {}
            if change:
                subscriber.language = change.get("language") or subscriber.language
                subscriber.pending_change = {}
                for area in change.get("areas", []):
                    _add_area(subscriber, _area_from_json(area))
            _activate(subscriber)
        else:
            subscriber.save(update_fields=["code_attempts"])
    if not matches:
        raise refused
    return subscriber


def _activate(subscriber: Subscriber) -> None:
    subscriber.status = SubscriberStatus.ACTIVE
    subscriber.pending_via = ""
    subscriber.confirmed_at = timezone.now()
    subscriber.stopped_at = None
    subscriber.save()


def confirm_or_restart(*, phone_hash: str) -> Subscriber | None:
    """YES/START from the phone: confirms a sign-up made by JOIN, restarts a stopped
    subscription (CTIA). A sign-up made on the web waits for its code. Returns the
    subscriber when it is now active."""
    subscriber = Subscriber.objects.filter(phone_hash=phone_hash).first()
    if subscriber is None:
        return None
    if subscriber.status == SubscriberStatus.PENDING and subscriber.pending_via != "sms":
        return None
    if subscriber.status != SubscriberStatus.ACTIVE:
        _activate(subscriber)
    return subscriber


def pending(*, phone_hash: str) -> Subscriber | None:
    """A sign-up by JOIN waiting for the phone's YES (or SI)."""
    return Subscriber.objects.filter(
        phone_hash=phone_hash, status=SubscriberStatus.PENDING, pending_via="sms"
    ).first()


def stop_on_opt_out(sender: object, *, phone_hash: str, **kwargs: object) -> None:
    stop(phone_hash=phone_hash)


def stop(*, phone_hash: str) -> Subscriber | None:
    subscriber = Subscriber.objects.filter(phone_hash=phone_hash).first()
    if subscriber is not None and subscriber.status != SubscriberStatus.STOPPED:
        subscriber.status = SubscriberStatus.STOPPED
        subscriber.stopped_at = timezone.now()
        subscriber.save(update_fields=["status", "stopped_at"])
    return subscriber


def area_labels(subscriber: Subscriber) -> str:
    labels = []
    for area in subscriber.areas.select_related("neighbourhood", "zip_code"):
        spec = AreaSpec(
            AreaKind(area.kind),
            neighbourhood=area.neighbourhood,
            zip_code=area.zip_code,
            radius_m=area.radius_m,
        )
        labels.append(spec.label)
    return ", ".join(labels)
