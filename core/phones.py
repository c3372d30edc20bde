"""Phone numbers: one canonical form (E.164) before anything is hashed or encrypted."""

from __future__ import annotations

import phonenumbers
from django.conf import settings

from core.crypto import keyed_hash

HASH_PURPOSE = "phone"
MAX_RAW_LENGTH = 64


class InvalidPhoneNumber(ValueError):
    """The text is not a phone number we could reach."""


def normalize(raw: str, *, region: str | None = None) -> str:
    """Return ``raw`` as E.164 (``+15105550123``) or raise InvalidPhoneNumber."""
    text = (raw or "").strip()
    if not text or len(text) > MAX_RAW_LENGTH:
        raise InvalidPhoneNumber("Enter a phone number.")
    try:
        parsed = phonenumbers.parse(text, region or settings.RR_PHONE_REGION)
    except phonenumbers.NumberParseException as exc:
        raise InvalidPhoneNumber("That does not look like a phone number.") from exc
    if not phonenumbers.is_valid_number(parsed):
        raise InvalidPhoneNumber("That does not look like a phone number.")
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)


def is_local(e164: str) -> bool:
    """Whether the number belongs to the network's own country (RR_PHONE_REGION): the
    only numbers a public page may ask us to text, so it cannot be used to run up
    international charges."""
    parsed = phonenumbers.parse(e164)
    return bool(
        parsed.country_code == phonenumbers.country_code_for_region(settings.RR_PHONE_REGION)
    )


def normalize_sender(raw: str) -> str:
    """Canonical form of an inbound sender address.

    Providers deliver E.164 numbers, but also short codes and alphanumeric sender IDs;
    those are kept as trimmed upper-case text so they still hash consistently.
    """
    collapsed = "".join((raw or "").split()).upper()[:MAX_RAW_LENGTH]
    # The collapsed form is tried too, so that the result is its own canonical form: a
    # number written with enough spaces to pass the length limit once they are gone
    # would otherwise hash differently from the same number written plainly.
    for candidate in (raw, collapsed):
        try:
            return normalize(candidate)
        except InvalidPhoneNumber:
            continue
    return collapsed


def phone_hash(e164: str) -> str:
    return keyed_hash(e164, purpose=HASH_PURPOSE)


def mask(e164: str) -> str:
    """Show only the last two digits (for staff who need to tell numbers apart)."""
    digits = [c for c in e164 if c.isdigit()]
    if len(digits) < 4:
        return "•••"
    return "•••• " + "".join(digits[-2:])
