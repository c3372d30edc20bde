"""R19 for MFA secrets: `rotate_keys` re-encrypts TOTP secrets and recovery-code seeds,
and the codes still work afterwards."""

from __future__ import annotations

import io
from collections.abc import Iterator
from typing import Any

import pytest
from allauth.mfa.models import Authenticator
from django.core.management import call_command
from django.core.management.base import CommandError
from django.test import Client

from accounts.models import Role
from accounts.testing import code_now, enrol_totp, recovery_codes_of
from conftest import make_user
from core import crypto

K1 = crypto.generate_key()
K2 = crypto.generate_key()


@pytest.fixture
def keys(settings: Any) -> Iterator[Any]:
    original = settings.RR_FIELD_KEYS
    settings.RR_FIELD_KEYS = f"k1:{K1}"
    crypto.reset_key_cache()
    yield settings
    settings.RR_FIELD_KEYS = original
    crypto.reset_key_cache()


def use_keys(settings: Any, value: str) -> None:
    settings.RR_FIELD_KEYS = value
    crypto.reset_key_cache()


def secret_tokens() -> list[str]:
    found = []
    for row in Authenticator.objects.order_by("pk"):
        found += [str(row.data[name]) for name in ("secret", "seed") if name in row.data]
    return found


def rotate(*args: str) -> str:
    out = io.StringIO()
    call_command("rotate_keys", *args, stdout=out, stderr=io.StringIO())
    return out.getvalue()


@pytest.mark.django_db
def test_rotation_re_encrypts_mfa_secrets_and_codes_still_work(keys: Any) -> None:
    dana = make_user(Role.DISPATCHER, "dana")
    secret = enrol_totp(dana)
    codes = recovery_codes_of(dana)
    assert {crypto.token_key_id(t) for t in secret_tokens()} == {"k1"}

    use_keys(keys, f"k2:{K2},k1:{K1}")
    assert "MFA secrets: 2 under older keys" in rotate("--dry-run")
    assert {crypto.token_key_id(t) for t in secret_tokens()} == {"k1"}
    assert "MFA secrets: 2 re-encrypted" in rotate()
    assert "MFA secrets: 0 re-encrypted" in rotate()

    use_keys(keys, f"k2:{K2}")
    assert {crypto.token_key_id(t) for t in secret_tokens()} == {"k2"}
    assert recovery_codes_of(dana) == codes
    client = Client()
    client.post("/accounts/login/", {"username": "dana", "password": "a-long-test-password"})
    assert client.post("/accounts/login/mfa/", {"code": code_now(secret)}).status_code == 302


@pytest.mark.django_db
def test_an_undecryptable_mfa_secret_stops_the_run_or_is_listed(keys: Any) -> None:
    enrol_totp(make_user(Role.DISPATCHER, "dana"))
    use_keys(keys, f"k2:{K2}")  # k1 lost
    with pytest.raises(CommandError, match="MFA secret"):
        rotate()
    err = io.StringIO()
    call_command("rotate_keys", "--skip-undecryptable", stdout=io.StringIO(), stderr=err)
    assert "could not decrypt: allauth MFA secret pk=" in err.getvalue()
