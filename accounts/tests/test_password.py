"""Changing one's own password: after password and MFA again, validated, audited, and
every other session of the account ends."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone

from accounts.models import User
from accounts.testing import code_at, current_step
from accounts.tests.conftest import Clock
from accounts.tests.test_mfa import PASSWORD, completed, enrolled, password, second_step
from core.models import AuditAction, AuditEvent

PAGE = "/accounts/password/"
NEW = "a-different-long-passphrase-42"


@pytest.fixture
def dana() -> tuple[User, str]:
    return enrolled()


def signed_in(totp_clock: Clock, dana: tuple[User, str], address: str = "198.51.100.7") -> Client:
    _user, secret = dana
    client = Client()
    password(client, "dana", address=address)
    second_step(client, code_at(secret, current_step(totp_clock.now)), address=address)
    totp_clock.now += 30  # each login spends its time step's code
    assert completed(client)
    return client


@pytest.mark.django_db
def test_a_new_password_ends_every_other_session_and_keeps_this_one(
    totp_clock: Clock, dana: tuple[User, str]
) -> None:
    elsewhere = signed_in(totp_clock, dana, address="203.0.113.9")
    here = signed_in(totp_clock, dana)
    user = dana[0]
    page = here.get(PAGE)
    assert page.status_code == 200
    assert b'autocomplete="new-password"' in page.content

    done = here.post(PAGE, {"new_password1": NEW, "new_password2": NEW})
    assert done.status_code == 302
    user.refresh_from_db()
    assert user.check_password(NEW) and not user.check_password(PASSWORD)
    assert here.get("/console/").status_code == 200  # this session goes on
    assert completed(here)
    out = elsewhere.get("/console/")
    assert out.status_code == 302 and out["Location"].startswith("/accounts/login/")
    event = AuditEvent.objects.get(action=AuditAction.PASSWORD_CHANGED)
    assert event.target_id == str(user.uuid)
    assert event.detail == {"sessions_ended": 2}
    assert PASSWORD not in str(event.detail) and NEW not in str(event.detail)


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("first", "second", "error"),
    [
        (NEW, NEW + "x", b"didn"),  # "The two password fields didn't match."
        ("short", "short", b"too short"),
        ("password123456", "password123456", b"too common"),
    ],
)
def test_a_refused_new_password_changes_nothing(
    totp_clock: Clock, dana: tuple[User, str], first: str, second: str, error: bytes
) -> None:
    here = signed_in(totp_clock, dana)
    refused = here.post(PAGE, {"new_password1": first, "new_password2": second})
    assert refused.status_code == 200
    assert error in refused.content
    assert b'role="alert"' in refused.content
    dana[0].refresh_from_db()
    assert dana[0].check_password(PASSWORD)
    assert not AuditEvent.objects.filter(action=AuditAction.PASSWORD_CHANGED).exists()


@pytest.mark.django_db
def test_an_old_login_is_asked_for_password_and_mfa_first(
    totp_clock: Clock, dana: tuple[User, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    here = signed_in(totp_clock, dana)
    later = timezone.now() + timedelta(seconds=301)
    monkeypatch.setattr("accounts.reauth.timezone.now", lambda: later)
    answer = here.post(PAGE, {"new_password1": NEW, "new_password2": NEW})
    assert answer.status_code == 302
    assert answer["Location"].startswith("/accounts/reauthenticate/?next=")
    dana[0].refresh_from_db()
    assert dana[0].check_password(PASSWORD)
