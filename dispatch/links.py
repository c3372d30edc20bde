"""Signed, expiring links for responders: no password, nothing to remember.

A link names one offer (the field report page) or one responder (availability and
location), carries the time it was made, and is refused once older than its lifetime or
if any character was changed.
"""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING

from django.conf import settings
from django.core import signing
from django.urls import reverse

if TYPE_CHECKING:
    from dispatch.models import Offer, Responder

OFFER_SALT = "dispatch.offer-link"
RESPONDER_SALT = "dispatch.responder-link"


class LinkExpired(Exception):
    pass


class LinkInvalid(Exception):
    pass


def _sign(value: uuid.UUID, salt: str) -> str:
    return signing.TimestampSigner(salt=salt).sign(value.hex)


def _unsign(token: str, salt: str, hours: int) -> uuid.UUID:
    signer = signing.TimestampSigner(salt=salt)
    try:
        value = signer.unsign(token, max_age=hours * 3600)
    except signing.SignatureExpired as exc:
        raise LinkExpired from exc
    except signing.BadSignature as exc:
        raise LinkInvalid from exc
    try:
        return uuid.UUID(hex=value)
    except ValueError as exc:
        raise LinkInvalid from exc


def offer_path(offer: Offer) -> str:
    return reverse("field:offer", args=[_sign(offer.uuid, OFFER_SALT)])


def offer_link(offer: Offer) -> str:
    """The absolute link sent by SMS."""
    return settings.RR_PUBLIC_URL + offer_path(offer)


def responder_path(responder: Responder) -> str:
    return reverse("field:me", args=[_sign(responder.uuid, RESPONDER_SALT)])


def responder_link(responder: Responder) -> str:
    return settings.RR_PUBLIC_URL + responder_path(responder)


def offer_from(token: str) -> uuid.UUID:
    return _unsign(token, OFFER_SALT, settings.RR_FIELD_LINK_HOURS)


def responder_from(token: str) -> uuid.UUID:
    return _unsign(token, RESPONDER_SALT, settings.RR_RESPONDER_LINK_HOURS)


def upload_limit(path: str) -> int | None:
    """The body size a field page may receive: large only behind a valid, unexpired
    offer link, so nobody else can push big uploads at the server."""
    from django.conf import settings

    from dispatch.views import MAX_FILES_PER_REQUEST

    if not path.startswith("/r/") or path.startswith("/r/me/"):
        return None
    token = path[len("/r/") :].rstrip("/")
    try:
        offer_from(token)
    except (LinkExpired, LinkInvalid):
        return None
    return int(settings.RR_MAX_UPLOAD_BYTES) * MAX_FILES_PER_REQUEST + 1024 * 1024
