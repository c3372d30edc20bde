"""TOTP for tests: enrol a person and compute the codes their app would show.

Used by the MFA tests and the browser page objects; never by the application."""

from __future__ import annotations

import time

from allauth.mfa import app_settings as mfa_settings
from allauth.mfa.models import Authenticator
from allauth.mfa.recovery_codes.internal.auth import RecoveryCodes
from allauth.mfa.totp.internal.auth import TOTP, format_hotp_value, generate_totp_secret, hotp_value
from allauth.mfa.utils import decrypt

from accounts.models import TOTPStep, User


def current_step(now: float | None = None) -> int:
    return int(time.time() if now is None else now) // int(mfa_settings.TOTP_PERIOD)


def code_at(secret: str, step: int) -> str:
    return str(format_hotp_value(hotp_value(secret, step)))


def enrol_totp(user: User) -> str:
    """Give ``user`` an authenticator app and recovery codes; the app's secret."""
    secret = str(generate_totp_secret())
    TOTP.activate(user, secret)
    RecoveryCodes.activate(user)
    return secret


def secret_of(user: User) -> str:
    totp = Authenticator.objects.get(user=user, type=Authenticator.Type.TOTP)
    return str(decrypt(totp.data["secret"]))


def code_now(secret: str) -> str:
    """The current code, not in the last seconds of its step (or it may expire before
    the form arrives)."""
    period = int(mfa_settings.TOTP_PERIOD)
    while time.time() % period > period - 3:
        time.sleep(0.25)
    return code_at(secret, current_step())


def fresh_code(user: User) -> str:
    """A code of a time step this person has not used yet, waiting for the next step if
    the current one is spent (each code works once)."""
    secret = secret_of(user)
    used = TOTPStep.objects.filter(user=user).values_list("step", flat=True).first()
    period = mfa_settings.TOTP_PERIOD
    # Not in the last seconds of a step either, or it may pass before the form is sent.
    while (used is not None and current_step() <= used) or time.time() % period > period - 3:
        time.sleep(0.25)
    return code_at(secret, current_step())


def recovery_codes_of(user: User) -> list[str]:
    codes = Authenticator.objects.get(user=user, type=Authenticator.Type.RECOVERY_CODES)
    return list(codes.wrap().get_unused_codes())
