"""The demo's second step: demo users have the documented demo key, and
`manage.py demo_totp` prints its code only with DEBUG and only for demo users."""

from __future__ import annotations

from io import StringIO
from typing import Any

import pytest
from django.core.management import CommandError, call_command
from django.test import Client

from accounts.models import Role
from accounts.testing import enrol_totp
from conftest import make_user
from core.management.commands.load_demo_data import DEMO_PASSWORD


@pytest.mark.django_db
def test_a_demo_user_logs_in_with_the_printed_code(
    settings: Any, totp_clock: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("accounts.management.commands.demo_totp.time", totp_clock)
    call_command("load_demo_data", "--force", verbosity=0, stdout=StringIO())
    settings.DEBUG = True
    out = StringIO()
    call_command("demo_totp", "dispatcher", stdout=out, stderr=StringIO())
    code = out.getvalue().strip()
    assert len(code) == 6 and code.isdigit()

    client = Client()
    client.post("/accounts/login/", {"username": "dispatcher", "password": DEMO_PASSWORD})
    response = client.post("/accounts/login/mfa/", {"code": code})
    assert response.status_code == 302
    assert client.get("/console/").status_code == 200


@pytest.mark.django_db
def test_demo_totp_refuses_without_debug_or_for_other_users(settings: Any) -> None:
    call_command("load_demo_data", "--force", verbosity=0, stdout=StringIO())
    settings.DEBUG = False
    with pytest.raises(CommandError, match="DEBUG"):
        call_command("demo_totp", "dispatcher")
    settings.DEBUG = True
    enrol_totp(make_user(Role.DISPATCHER, "real-person"))
    with pytest.raises(CommandError, match="not a demo user"):
        call_command("demo_totp", "real-person")


@pytest.mark.django_db
def test_demo_data_gives_no_demo_key_to_an_existing_person() -> None:
    """A real account named like a demo user keeps its own password and factors: the
    demo key is public, so it would be a way past MFA."""
    from allauth.mfa.models import Authenticator

    real = make_user(Role.DISPATCHER, "dispatcher")  # its own password, a passkey only
    Authenticator.objects.create(
        user=real, type=Authenticator.Type.WEBAUTHN, data={"name": "Key", "credential": {}}
    )
    call_command("load_demo_data", "--force", verbosity=0, stdout=StringIO())
    assert not Authenticator.objects.filter(user=real, type=Authenticator.Type.TOTP).exists()
    assert list(Authenticator.objects.filter(user=real).values_list("type", flat=True)) == [
        Authenticator.Type.WEBAUTHN
    ]
