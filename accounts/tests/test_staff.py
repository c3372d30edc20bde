"""Coordinators' staff page: who has which second factor, and resetting a lost one."""

from __future__ import annotations

import time
import uuid
from typing import Any

import pytest
from allauth.mfa.models import Authenticator
from django.contrib.sessions.models import Session
from django.test import Client
from django.urls import reverse

from accounts import reauth
from accounts.models import Role, TOTPStep, User
from accounts.testing import enrol_totp
from conftest import make_user
from core.models import AuditAction, AuditEvent

PASSWORD = "a-long-test-password"  # conftest.make_user's


def signed_in(user: User, *, recently_confirmed: bool = True) -> Client:
    client = Client()
    client.force_login(user)
    session = client.session
    # force_login stands for a completed MFA login; a fresh reauthentication is
    # recorded separately.
    session[reauth.REAUTH_AT] = int(time.time()) if recently_confirmed else 0
    session.save()
    return client


def reset_url(user: User) -> str:
    return reverse("accounts:reset-factors", args=[user.uuid])


def reset(client: Client, user: User, *, confirmed: bool = True) -> Any:
    return client.post(reset_url(user), {"confirmed": "on"} if confirmed else {})


@pytest.fixture
def lost_phone(db: None) -> User:
    """A dispatcher with an authenticator app, recovery codes, a passkey and a session."""
    dana = make_user(Role.DISPATCHER, "dana")
    enrol_totp(dana)
    Authenticator.objects.create(
        user=dana, type=Authenticator.Type.WEBAUTHN, data={"name": "Key", "credential": {}}
    )
    TOTPStep.objects.create(user=dana, step=1)
    signed_in(dana)
    return dana


def sessions_of(user: User) -> int:
    return sum(
        1 for row in Session.objects.all() if row.get_decoded().get("_auth_user_id") == str(user.pk)
    )


@pytest.mark.django_db
def test_a_coordinator_resets_a_lost_second_factor(coordinator: User, lost_phone: User) -> None:
    client = signed_in(coordinator)
    page = client.get(reset_url(lost_phone))
    assert page.status_code == 200 and b"Reset the two-step login" in page.content
    assert sessions_of(lost_phone) == 1

    done = reset(client, lost_phone)
    assert done.status_code == 302 and done["Location"] == reverse("accounts:staff")
    assert not Authenticator.objects.filter(user=lost_phone).exists()
    assert not TOTPStep.objects.filter(user=lost_phone).exists()
    assert User.objects.get(pk=lost_phone.pk).check_password(PASSWORD)  # unchanged
    assert sessions_of(lost_phone) == 0  # signed out everywhere
    event = AuditEvent.objects.get(action=AuditAction.MFA_RESET)
    assert event.actor == coordinator and event.target_id == str(lost_phone.uuid)
    assert event.detail == {"removed": 3}  # the app, the recovery codes, the passkey
    listing = client.get(reverse("accounts:staff"))
    assert b"was reset (second factors removed: 3)" in listing.content

    # Their next sign-in, with their own password, goes to enrolment, not the MFA step.
    fresh = Client()
    login = fresh.post(reverse("accounts:login"), {"username": "dana", "password": PASSWORD})
    assert login.status_code == 302 and login["Location"] == reverse("mfa_activate_totp")


@pytest.mark.django_db
def test_only_coordinators_see_the_staff_page_or_reset(
    dispatcher: User, verifier: User, lost_phone: User
) -> None:
    for person in (dispatcher, verifier):
        client = signed_in(person)
        assert client.get(reverse("accounts:staff")).status_code == 403
        assert reset(client, lost_phone).status_code == 403
        assert b"Staff" not in client.get(reverse("home"), follow=True).content.split(b"<main")[0]
    assert Authenticator.objects.filter(user=lost_phone).count() == 3
    assert Client().get(reverse("accounts:staff")).status_code == 302  # to the login page


@pytest.mark.django_db
def test_a_reset_needs_the_coordinator_to_confirm_it_is_them(
    coordinator: User, lost_phone: User
) -> None:
    client = signed_in(coordinator, recently_confirmed=False)
    asked = client.get(reset_url(lost_phone))
    assert asked.status_code == 302
    assert asked["Location"].startswith(reverse("accounts:reauth") + "?next=")
    posted = reset(client, lost_phone)
    assert posted.status_code == 302 and posted["Location"].startswith(reverse("accounts:reauth"))
    assert Authenticator.objects.filter(user=lost_phone).count() == 3
    assert not AuditEvent.objects.filter(action=AuditAction.MFA_RESET).exists()


@pytest.mark.django_db
def test_without_the_confirmation_nothing_changes(coordinator: User, lost_phone: User) -> None:
    refused = reset(signed_in(coordinator), lost_phone, confirmed=False)
    assert refused.status_code == 422
    assert b'role="alert"' in refused.content
    assert b"Confirm who you are talking to" in refused.content
    assert Authenticator.objects.filter(user=lost_phone).count() == 3
    assert sessions_of(lost_phone) == 1
    assert not AuditEvent.objects.filter(action=AuditAction.MFA_RESET).exists()


@pytest.mark.django_db
def test_a_coordinator_cannot_reset_themselves_or_a_superuser(coordinator: User) -> None:
    enrol_totp(coordinator)
    client = signed_in(coordinator)
    root = User.objects.create_superuser(
        "root", password="another-long-password", role="coordinator"
    )
    enrol_totp(root)
    for person, why in ((coordinator, b"your own Two-step login page"), (root, b"superuser")):
        # Said at once, with no form to fill in; and a post is refused all the same.
        shown = client.get(reset_url(person))
        main = shown.content.split(b"<main")[1]
        assert shown.status_code == 200 and why in main and b"<form" not in main
        refused = reset(client, person)
        assert refused.status_code == 422 and why in refused.content
    assert Authenticator.objects.filter(user__in=[coordinator, root]).count() == 4
    listing = client.get(reverse("accounts:staff")).content
    assert reset_url(root).encode() not in listing
    assert reset_url(coordinator).encode() not in listing
    assert client.get(reverse("accounts:reset-factors", args=[uuid.uuid4()])).status_code == 404


@pytest.mark.django_db
def test_the_refusal_is_checked_again_on_the_locked_row(
    coordinator: User, lost_phone: User
) -> None:
    """Made a superuser after the page was shown: the reset reads the row again."""
    from accounts import staff

    User.objects.filter(pk=lost_phone.pk).update(is_superuser=True)
    with pytest.raises(staff.ResetRefused):
        staff.reset_second_factors(actor=coordinator, user=lost_phone)  # a stale copy
    assert Authenticator.objects.filter(user=lost_phone).count() == 3


@pytest.mark.django_db
def test_the_staff_page_lists_factors_in_a_fixed_number_of_queries(
    coordinator: User, lost_phone: User, django_assert_max_num_queries: Any
) -> None:
    client = signed_in(coordinator)
    first = client.get(reverse("accounts:staff"))
    assert first.status_code == 200
    text = first.content.decode()
    assert "authenticator app, passkey, recovery codes" in text
    assert "Reset two-step login" in text
    assert first["Cache-Control"].count("no-store") == 1
    for i in range(60):
        make_user(Role.VERIFIER, f"volunteer-{i:02d}")
    with django_assert_max_num_queries(12):
        many = client.get(reverse("accounts:staff"))
    assert "Page 1 of 2" in many.content.decode()
    assert client.get(reverse("accounts:staff") + "?page=2").status_code == 200
