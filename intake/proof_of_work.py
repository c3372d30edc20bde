"""Proof-of-work on the public form: ALTCHA challenges (the v2 protocol of widget v3).

The server issues a challenge signed with HMAC under ``RR_ALTCHA_HMAC_KEY``, with an
expiry inside the signed parameters; the widget finds the counter that yields the signed
key prefix. Verification needs no state (the signature covers every parameter, so a
spliced or altered challenge fails it); replay protection is the ``SpentChallenge`` row
the report's transaction writes (``intake.actions.submit_web_report``).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import altcha
from django.conf import settings
from django.utils import timezone

from core import crypto
from intake.models import SpentChallenge

ALGORITHM = "PBKDF2/SHA-256"
# A widget payload is a few hundred bytes; anything far larger is not one of ours.
MAX_PAYLOAD_CHARS = 4096
# Spent rows outlive their challenge by this much, so a web server whose clock runs
# behind the one that prunes still finds the row while it takes the challenge as live.
PRUNE_GRACE = timedelta(minutes=10)


class InvalidChallenge(Exception):
    """The proof-of-work payload is missing, malformed, forged, altered or expired."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class ChallengeAlreadyUsed(Exception):
    """The payload solved a challenge that already filed a report."""


@dataclass(frozen=True)
class SolvedChallenge:
    digest: str
    expires_at: datetime


def _subkey(purpose: bytes) -> bytes:
    # One setting, two uses: signing the parameters and signing the derived key.
    return hmac.new(crypto.altcha_key(), b"rr-altcha|" + purpose, hashlib.sha256).digest()


def new_challenge() -> dict[str, object]:
    """A fresh challenge for the widget, as JSON-ready data."""
    top = max(2, settings.RR_ALTCHA_MAX_COUNTER)
    counter = top // 2 + secrets.randbelow(top - top // 2 + 1)
    challenge = altcha.create_challenge(
        ALGORITHM,
        settings.RR_ALTCHA_COST,
        counter=counter,
        expires_at=int(time.time()) + settings.RR_ALTCHA_EXPIRY_SECONDS,
        hmac_secret=_subkey(b"challenge"),
        hmac_key_secret=_subkey(b"derived-key"),
    )
    data: dict[str, object] = challenge.to_dict()
    return data


def verify(payload: str) -> SolvedChallenge:
    """Check a widget payload; raises ``InvalidChallenge`` unless it solves a challenge
    we signed that has not expired. Does not check whether it was used before."""
    if not payload:
        raise InvalidChallenge("missing")
    if len(payload) > MAX_PAYLOAD_CHARS:
        raise InvalidChallenge("malformed")
    try:
        parsed = altcha.Payload.from_base64(payload)
    except (ValueError, KeyError, TypeError, AttributeError, RecursionError) as exc:
        raise InvalidChallenge("malformed") from exc
    params = parsed.challenge.parameters
    # Every challenge of ours expires; one without an expiry (or with anything but a
    # number) is not ours, whatever its signature says.
    if not isinstance(params.expires_at, int) or isinstance(params.expires_at, bool):
        raise InvalidChallenge("malformed")
    if params.algorithm != ALGORITHM or not isinstance(params.nonce, str):
        raise InvalidChallenge("malformed")
    if not isinstance(params.salt, str):
        raise InvalidChallenge("malformed")
    result = altcha.verify_solution(
        parsed,
        _subkey(b"challenge"),
        hmac_key_secret=_subkey(b"derived-key"),
    )
    if result.expired:
        raise InvalidChallenge("expired")
    if result.invalid_signature:
        raise InvalidChallenge("signature")
    if not result.verified:
        raise InvalidChallenge("solution")
    digest = hashlib.sha256(f"{params.nonce.lower()}|{params.salt.lower()}".encode()).hexdigest()
    return SolvedChallenge(digest, datetime.fromtimestamp(params.expires_at, tz=UTC))


def was_spent(solved: SolvedChallenge) -> bool:
    return SpentChallenge.objects.filter(digest=solved.digest).exists()


def spend(solved: SolvedChallenge) -> None:
    """Record the challenge as used, in the caller's transaction; a second use raises
    ``IntegrityError`` on the unique digest."""
    SpentChallenge.objects.create(digest=solved.digest, expires_at=solved.expires_at)


def prune_spent(*, now: datetime | None = None) -> int:
    """Forget spent challenges once they have expired (plus ``PRUNE_GRACE``): the
    expiry check refuses them from then on, so the row has nothing left to guard."""
    cutoff = (now or timezone.now()) - PRUNE_GRACE
    deleted, _ = SpentChallenge.objects.filter(expires_at__lt=cutoff).delete()
    return deleted
