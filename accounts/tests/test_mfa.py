"""MFA through the real forms (R9-R12): enrolment at the first login, the MFA step,
single-use TOTP codes and recovery codes, throttling without lockout, enrolment for
oneself only, re-authentication, and the audit trail."""

from __future__ import annotations

import datetime as dt
from typing import Any
from urllib.parse import urlencode

import pytest
from allauth.mfa.models import Authenticator
from django.core.cache import cache
from django.test import Client, RequestFactory
from django.urls import reverse
from django.utils import timezone

from accounts import mfa, reauth
from accounts.models import Role, User
from accounts.testing import code_at, current_step, enrol_totp, recovery_codes_of
from accounts.tests.conftest import Clock
from conftest import committed, make_user
from core.models import AuditAction, AuditEvent

LOGIN = "/accounts/login/"
STEP = "/accounts/login/mfa/"
ENROL = "/accounts/mfa/totp/activate/"
CONSOLE = "/console/"
PASSWORD = "a-long-test-password"
HERE = "198.51.100.7"
ELSEWHERE = "203.0.113.9"


def password(client: Client, username: str, address: str = HERE, next_url: str = "") -> Any:
    data = {"username": username, "password": PASSWORD}
    if next_url:
        data["next"] = next_url
    return client.post(LOGIN, data, REMOTE_ADDR=address)


def second_step(client: Client, code: str, address: str = HERE) -> Any:
    return client.post(STEP, {"code": code}, REMOTE_ADDR=address)


def enrolled(username: str = "dana", role: Role = Role.DISPATCHER) -> tuple[User, str]:
    user = make_user(role, username)
    return user, enrol_totp(user)


def completed(client: Client) -> bool:
    return mfa.MFA_AT in client.session


def actions_of(user: User | None = None) -> list[str]:
    events = AuditEvent.objects.order_by("pk")
    if user is not None:
        events = events.filter(target_id=str(user.uuid))
    return [event.action for event in events]


# Enrolment at the first login --------------------------------------------------------


@pytest.mark.django_db
def test_the_first_login_enrols_an_authenticator_app_then_opens_the_console() -> None:
    dana = make_user(Role.DISPATCHER, "dana")
    client = Client()
    response = password(client, "dana")
    assert response.status_code == 302
    assert response["Location"] == ENROL
    assert not completed(client)
    # Until enrolled, staff pages lead back to enrolment.
    assert client.get(CONSOLE)["Location"] == ENROL

    page = client.get(ENROL)
    assert page.status_code == 200
    body = page.content.decode()
    assert 'autocomplete="one-time-code"' in body
    assert 'inputmode="numeric"' in body
    assert 'src="data:image/svg+xml;base64,' in body
    assert "<script>" not in body  # nothing inline: CSP allows none
    secret = client.session["mfa.totp.secret"]
    assert secret in body  # to type in when the camera cannot scan

    wrong = client.post(
        ENROL, {"code": "000000" if code_at(secret, current_step()) != "000000" else "111111"}
    )
    assert wrong.status_code == 200
    assert not Authenticator.objects.filter(user=dana).exists()

    with committed():
        done = client.post(ENROL, {"code": code_at(secret, current_step())})
    assert done.status_code == 302
    assert done["Location"] == reverse("mfa_view_recovery_codes")
    assert completed(client)
    assert client.get(CONSOLE).status_code == 200

    totp = Authenticator.objects.get(user=dana, type=Authenticator.Type.TOTP)
    assert secret not in str(totp.data)  # encrypted with the field keys
    assert str(totp.data["secret"]).startswith("rr1.")
    # The login is audited like one through the MFA step (allauth's own events come
    # after the commit, here after the request).
    assert sorted(actions_of(dana)) == sorted(
        [AuditAction.LOGIN, AuditAction.MFA_ENROLLED, AuditAction.RECOVERY_CODES_GENERATED]
    )


@pytest.mark.django_db
def test_the_code_that_confirmed_enrolment_cannot_log_in_again(totp_clock: Clock) -> None:
    make_user(Role.DISPATCHER, "dana")
    client = Client()
    password(client, "dana")
    client.get(ENROL)
    secret = client.session["mfa.totp.secret"]
    code = code_at(secret, current_step(totp_clock.now))
    assert client.post(ENROL, {"code": code}).status_code == 302

    other = Client()
    password(other, "dana", address=ELSEWHERE)
    assert second_step(other, code, address=ELSEWHERE).status_code == 200
    assert not completed(other)


# The MFA step ----------------------------------------------------------------------


@pytest.mark.django_db
def test_password_then_totp_logs_in_with_new_session_keys(totp_clock: Clock) -> None:
    dana, secret = enrolled()
    client = Client()
    response = password(client, "dana", next_url="/dispatch/")
    assert response["Location"] == f"{STEP}?{urlencode({'next': '/dispatch/'})}"
    password_key = client.session.session_key

    done = client.post(
        f"{STEP}?next=/dispatch/", {"code": code_at(secret, current_step(totp_clock.now))}
    )
    assert done.status_code == 302
    assert done["Location"] == "/dispatch/"
    assert completed(client)
    assert client.session.session_key != password_key
    assert client.get(CONSOLE).status_code == 200
    assert AuditAction.LOGIN in actions_of(dana)


@pytest.mark.django_db
def test_a_wrong_code_keeps_the_session_password_only(totp_clock: Clock) -> None:
    dana, secret = enrolled()
    client = Client()
    password(client, "dana")
    right = code_at(secret, current_step(totp_clock.now))
    wrong = "123456" if right != "123456" else "654321"
    response = second_step(client, wrong)
    assert response.status_code == 200
    assert b'autocomplete="one-time-code"' in response.content
    assert not completed(client)
    assert client.get(CONSOLE)["Location"].startswith(STEP)
    assert actions_of(dana)[-1] == AuditAction.MFA_FAILED


@pytest.mark.django_db
def test_a_totp_code_works_once_even_inside_its_window(totp_clock: Clock) -> None:
    _dana, secret = enrolled()
    code = code_at(secret, current_step(totp_clock.now))
    first = Client()
    password(first, "dana")
    assert second_step(first, code).status_code == 302

    # Same code, same 30 seconds, another client: refused.
    second = Client()
    password(second, "dana", address=ELSEWHERE)
    assert second_step(second, code, address=ELSEWHERE).status_code == 200
    assert not completed(second)

    # Refused from the database too, not only allauth's cache (per process without Redis).
    cache.clear()
    assert second_step(second, code, address=ELSEWHERE).status_code == 200
    assert not completed(second)

    # The next step's code works.
    totp_clock.now += 30
    assert (
        second_step(second, code_at(secret, current_step(totp_clock.now)), ELSEWHERE).status_code
        == 302
    )
    assert completed(second)


@pytest.mark.django_db
def test_with_the_cache_down_a_totp_code_still_signs_in_once(
    totp_clock: Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    # allauth marks used codes in the cache; with Redis down that raised, so nobody
    # could finish the second step. The database's record of used steps holds alone.
    def down(*args: Any, **kwargs: Any) -> Any:
        raise ConnectionError("cache down")

    monkeypatch.setattr(cache, "add", down)
    monkeypatch.setattr(cache, "get", down)
    _dana, secret = enrolled()
    code = code_at(secret, current_step(totp_clock.now))
    first = Client()
    password(first, "dana")
    assert second_step(first, code).status_code == 302
    assert completed(first)

    again = Client()
    password(again, "dana", address=ELSEWHERE)
    assert second_step(again, code, address=ELSEWHERE).status_code == 200
    assert not completed(again)
    assert second_step(again, "000000", address=ELSEWHERE).status_code == 200
    assert not completed(again)


@pytest.mark.django_db
def test_an_older_code_than_the_last_used_one_is_refused(totp_clock: Clock, settings: Any) -> None:
    settings.MFA_TOTP_TOLERANCE = 1
    _dana, secret = enrolled()
    step = current_step(totp_clock.now)
    client = Client()
    password(client, "dana")
    assert second_step(client, code_at(secret, step)).status_code == 302
    again = Client()
    password(again, "dana")
    # Still inside the tolerance window, but older than the code already used.
    assert second_step(again, code_at(secret, step - 1)).status_code == 200
    assert second_step(again, code_at(secret, step + 1)).status_code == 302


@pytest.mark.django_db
def test_a_recovery_code_works_once(totp_clock: Clock) -> None:
    dana, _secret = enrolled()
    code = recovery_codes_of(dana)[0]
    first = Client()
    password(first, "dana")
    assert second_step(first, code).status_code == 302
    assert completed(first)
    assert code not in recovery_codes_of(dana)
    used = AuditEvent.objects.filter(action=AuditAction.RECOVERY_CODE_USED).get()
    assert used.detail == {"remaining": 9}

    second = Client()
    password(second, "dana")
    assert second_step(second, code).status_code == 200
    assert not completed(second)


@pytest.mark.django_db
def test_mfa_failures_never_lock_the_owner_out_from_elsewhere(
    totp_clock: Clock, settings: Any
) -> None:
    """R10: someone with the password guessing codes is stopped on their client; the
    owner, elsewhere, still gets in with password and TOTP."""
    _dana, secret = enrolled()
    attacker = Client()
    password(attacker, "dana")
    right = code_at(secret, current_step(totp_clock.now))
    guess = "000001" if right != "000001" else "000002"
    for _ in range(settings.RR_LOGIN_FAILURES_PER_ACCOUNT):
        assert second_step(attacker, guess).status_code == 200
    refused = second_step(attacker, right)
    assert refused.status_code == 429
    assert not completed(attacker)

    owner = Client()
    assert password(owner, "dana", address=ELSEWHERE).status_code == 302
    assert second_step(owner, right, address=ELSEWHERE).status_code == 302
    assert completed(owner)


def addresses(n: int) -> list[str]:
    return [f"198.51.100.{100 + i}" for i in range(n)]


@pytest.mark.django_db
def test_codes_guessed_from_many_addresses_stop_at_the_accounts_limit(
    totp_clock: Clock, settings: Any
) -> None:
    """Someone with the password and many addresses, each under the per-client limit,
    is stopped by the account's count of wrong codes, and so is the right code until
    the window ends; then it works, and it ends the count."""
    settings.RR_MFA_CODE_FAILURES_PER_ACCOUNT = 6
    _dana, secret = enrolled()
    right = code_at(secret, current_step(totp_clock.now))
    guess = "000001" if right != "000001" else "000002"
    per_address = settings.RR_LOGIN_FAILURES_PER_ACCOUNT - 1
    tries = 0
    for address in addresses(3):
        attacker = Client()
        password(attacker, "dana", address=address)
        for _ in range(per_address):
            answer = second_step(attacker, guess, address=address)
            tries += 1
            expected = 200 if tries <= settings.RR_MFA_CODE_FAILURES_PER_ACCOUNT else 429
            assert answer.status_code == expected, tries
    assert tries > settings.RR_MFA_CODE_FAILURES_PER_ACCOUNT
    assert AuditEvent.objects.filter(action=AuditAction.MFA_FAILED).count() == 6  # checked ones

    owner = Client()
    assert password(owner, "dana", address=ELSEWHERE).status_code == 302
    refused = second_step(owner, right, address=ELSEWHERE)
    assert refused.status_code == 429
    assert b"Too many wrong codes for this account" in refused.content
    assert not completed(owner)

    cache.clear()  # the window ends
    assert second_step(owner, right, address=ELSEWHERE).status_code == 302
    assert completed(owner)
    # The right code ended the count: a new guess is checked, not refused.
    late = Client()
    password(late, "dana", address="192.0.2.50")
    assert second_step(late, guess, address="192.0.2.50").status_code == 200


@pytest.mark.django_db
def test_wrong_codes_at_reauthentication_count_for_the_account(
    totp_clock: Clock, settings: Any
) -> None:
    settings.RR_MFA_CODE_FAILURES_PER_ACCOUNT = 2
    dana, secret = enrolled()
    client = Client()
    password(client, "dana")
    second_step(client, code_at(secret, current_step(totp_clock.now)))
    assert completed(client)
    totp_clock.now += 30
    guess = "000001" if code_at(secret, current_step(totp_clock.now)) != "000001" else "000002"
    url = reverse("accounts:reauth")
    wrong_password = {"password": "not-the-password-1", "code": guess}
    for _ in range(3):  # a wrong password spends no code and counts no code
        assert client.post(url, wrong_password, REMOTE_ADDR=HERE).status_code == 200
    for address in addresses(2):  # so the two codes below are each checked
        answer = client.post(url, {"password": PASSWORD, "code": guess}, REMOTE_ADDR=address)
        assert answer.status_code == 200
    refused = client.post(
        url,
        {"password": PASSWORD, "code": code_at(secret, current_step(totp_clock.now))},
        REMOTE_ADDR=ELSEWHERE,
    )
    assert refused.status_code == 429
    assert b"Too many wrong codes for this account" in refused.content
    assert not AuditEvent.objects.filter(
        action=AuditAction.REAUTHENTICATED, target_id=str(dana.uuid)
    ).exists()


@pytest.mark.django_db
def test_unknown_user_bad_password_and_disabled_account_still_look_alike() -> None:
    """R11 with MFA in place: only the right password of an active account reaches the
    second step; the three failures are the same page (see test_login.py)."""
    user, _secret = enrolled("alex")
    client = Client()
    answers = [
        client.post(LOGIN, {"username": "nobody", "password": PASSWORD}),
        client.post(LOGIN, {"username": "alex", "password": "wrong-password-123"}),
    ]
    user.is_active = False
    user.save()
    answers.append(client.post(LOGIN, {"username": "alex", "password": PASSWORD}))
    assert [answer.status_code for answer in answers] == [200, 200, 200]
    assert all(b"Please enter a correct username and password" in a.content for a in answers)
    assert "_auth_user_id" not in client.session


# Enforcement (R9) ------------------------------------------------------------------


def staff_url_names() -> list[str]:
    from tests.test_permissions import EXPECTED
    from tests.test_permissions import LOGIN as NEEDS_LOGIN

    return sorted(name for name, roles in EXPECTED.items() if roles["anonymous"] == NEEDS_LOGIN)


def crawl(client: Client) -> dict[str, tuple[str, Any]]:
    """Every URL pattern: name -> (path, response to a GET)."""
    from tests.test_permissions import url_for, url_patterns

    return {
        name: (path, client.get(path))
        for name, pattern in url_patterns().items()
        for path in [url_for(name, pattern)]
    }


@pytest.mark.usefixtures("service_area", "totp_clock")
@pytest.mark.parametrize("role", [Role.DISPATCHER, Role.COORDINATOR, Role.VERIFIER])
def test_a_password_only_session_reaches_no_staff_page(role: Role) -> None:
    from tests.test_permissions import EXPECTED
    from tests.test_permissions import LOGIN as NEEDS_LOGIN

    enrolled("dana", role)
    client = Client()
    password(client, "dana")
    wrong = []
    pages = crawl(client)
    for name, (path, response) in pages.items():
        if name in {"accounts:mfa", "accounts:logout", "accounts:login"}:
            continue
        public = EXPECTED[name]["anonymous"] != NEEDS_LOGIN and name != "home"
        if public:
            if response.status_code != EXPECTED[name]["anonymous"] and not str(
                EXPECTED[name]["anonymous"]
            ).startswith("redirect"):
                wrong.append(f"public {name} {path}: {response.status_code}")
            continue
        location = response.get("Location", "")
        if response.status_code != 302 or not location.startswith(STEP):
            wrong.append(f"{name} {path}: {response.status_code} {location}")
        post = client.post(path, {"anything": "1"})
        if post.status_code != 302 or not post["Location"].startswith(STEP):
            wrong.append(f"POST {name} {path}: {post.status_code}")
    assert not wrong, "\n".join(wrong)
    assert set(staff_url_names()) <= set(pages)
    assert not completed(client)


@pytest.mark.usefixtures("service_area")
def test_a_password_only_session_without_a_factor_is_sent_to_enrolment() -> None:
    make_user(Role.DISPATCHER, "dana")
    client = Client()
    password(client, "dana")
    wrong = []
    for name, (path, response) in crawl(client).items():
        if name not in staff_url_names() or name in mfa.ENROL_URL_NAMES | {"accounts:reauth"}:
            continue
        if response.status_code != 302 or response["Location"] != ENROL:
            wrong.append(f"{name} {path}: {response.status_code} {response.get('Location')}")
    assert not wrong, "\n".join(wrong)
    # And the step page itself sends them to enrolment too.
    assert client.get(STEP)["Location"] == ENROL


@pytest.mark.django_db
def test_an_enrolled_password_only_session_cannot_add_another_factor(totp_clock: Clock) -> None:
    """A stolen password alone must not let the thief add their own authenticator."""
    dana, _secret = enrolled()
    client = Client()
    password(client, "dana")
    for path in (
        ENROL,
        reverse("mfa_add_webauthn"),
        reverse("mfa_index"),
        reverse("accounts:reauth"),
    ):
        response = client.get(path)
        assert response.status_code == 302 and response["Location"].startswith(STEP), path
    assert client.post(ENROL, {"code": "123456"})["Location"].startswith(STEP)
    assert Authenticator.objects.filter(user=dana).count() == 2


@pytest.mark.django_db
def test_an_htmx_request_of_a_password_only_session_redirects_the_page(totp_clock: Clock) -> None:
    enrolled()
    client = Client()
    password(client, "dana")
    response = client.get(CONSOLE, HTTP_HX_REQUEST="true")
    assert response.status_code == 204
    assert response["HX-Redirect"].startswith(STEP)


@pytest.mark.django_db
def test_open_pages_stay_open_for_a_password_only_session(service_area: Any) -> None:
    enrolled()
    client = Client()
    password(client, "dana")
    assert client.get("/report/").status_code == 200
    assert client.get("/join/").status_code == 200
    assert client.get("/healthz").status_code == 200
    assert client.post("/hooks/twilio/sms", {}).status_code == 403  # unsigned, not redirected


# Enrolment for oneself only (R12) --------------------------------------------------


def test_no_mfa_url_takes_a_user() -> None:
    from tests.test_permissions import url_patterns

    for name, pattern in url_patterns().items():
        if name.startswith("mfa_") or name in {"accounts:mfa", "accounts:reauth"}:
            converters = getattr(pattern.pattern, "converters", {})
            assert set(converters) <= {"pk"}, name
            if converters:
                assert "webauthn/keys/" in str(pattern.pattern), name


@pytest.mark.django_db
def test_enrolling_or_changing_another_persons_factors_is_impossible(totp_clock: Clock) -> None:
    alex, _ = enrolled("alex")
    theirs = Authenticator.objects.create(
        user=alex, type=Authenticator.Type.WEBAUTHN, data={"name": "Alex's key", "credential": {}}
    )
    dana, dana_secret = enrolled("dana")
    client = Client()
    password(client, "dana")
    second_step(client, code_at(dana_secret, current_step(totp_clock.now)))
    assert completed(client)  # and recently re-authenticated, so only ownership stops it

    for path in (
        reverse("mfa_edit_webauthn", kwargs={"pk": theirs.pk}),
        reverse("mfa_remove_webauthn", kwargs={"pk": theirs.pk}),
    ):
        assert client.get(path).status_code == 404, path
        assert client.post(path, {"name": "mine now"}).status_code == 404, path
    theirs.refresh_from_db()
    assert theirs.data["name"] == "Alex's key"

    # A user id smuggled into the enrolment form is ignored: the factor is the signer's.
    # (Her app is removed behind the pages' back: they keep the last factor.)
    Authenticator.objects.filter(user=dana, type=Authenticator.Type.TOTP).delete()
    client.get(ENROL)
    secret = client.session["mfa.totp.secret"]
    totp_clock.now += 30
    client.post(ENROL, {"code": code_at(secret, current_step(totp_clock.now)), "user": alex.pk})
    assert Authenticator.objects.get(user=dana, type=Authenticator.Type.TOTP)
    assert Authenticator.objects.filter(user=alex, type=Authenticator.Type.TOTP).count() == 1


# Sessions ---------------------------------------------------------------------------


@pytest.mark.django_db
def test_disabling_a_person_ends_their_mfa_sessions(totp_clock: Clock) -> None:
    dana, secret = enrolled()
    client = Client()
    password(client, "dana")
    second_step(client, code_at(secret, current_step(totp_clock.now)))
    assert client.get(CONSOLE).status_code == 200
    dana.is_active = False
    dana.save()
    assert client.get(CONSOLE)["Location"].startswith(LOGIN)
    assert actions_of(dana)[-1] == AuditAction.ACCOUNT_DISABLED
    dana.first_name = "D"
    dana.save()
    assert actions_of(dana).count(AuditAction.ACCOUNT_DISABLED) == 1


@pytest.mark.django_db
def test_logout_is_audited_and_ends_the_session(totp_clock: Clock) -> None:
    dana, secret = enrolled()
    client = Client()
    password(client, "dana")
    second_step(client, code_at(secret, current_step(totp_clock.now)))
    assert client.post("/accounts/logout/").status_code == 302
    assert client.get(CONSOLE)["Location"].startswith(LOGIN)
    assert actions_of(dana)[-1] == AuditAction.LOGOUT


# Audit ------------------------------------------------------------------------------


@pytest.mark.django_db
def test_audit_events_hold_no_username_code_or_secret(totp_clock: Clock) -> None:
    dana, secret = enrolled("dana-the-dispatcher")
    client = Client()
    client.post(LOGIN, {"username": "dana-the-dispatcher", "password": "wrong-password-123"})
    client.post(LOGIN, {"username": "someone-unknown", "password": "wrong-password-123"})
    code = code_at(secret, current_step(totp_clock.now))
    password(client, "dana-the-dispatcher")
    second_step(client, code)

    failed = AuditEvent.objects.filter(action=AuditAction.LOGIN_FAILED)
    assert failed.count() == 2
    assert {event.actor_id for event in failed} == {None}
    stored = repr(list(AuditEvent.objects.values()))
    for clear in ("dana-the-dispatcher", "someone-unknown", code, secret, PASSWORD):
        assert clear not in stored
    assert AuditEvent.objects.filter(action=AuditAction.LOGIN, actor=dana).exists()


# Re-authentication -------------------------------------------------------------------


def fully_logged_in(totp_clock: Clock) -> tuple[Client, User, str]:
    dana, secret = enrolled()
    client = Client()
    password(client, "dana")
    second_step(client, code_at(secret, current_step(totp_clock.now)))
    assert completed(client)
    return client, dana, secret


@pytest.mark.django_db
def test_require_recent_reauth_lets_a_fresh_login_through_then_asks_again(
    totp_clock: Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    client, dana, _secret = fully_logged_in(totp_clock)

    @reauth.require_recent_reauth(seconds=300)
    def export(request: Any) -> Any:
        from django.http import HttpResponse

        return HttpResponse("exported")

    def request_now(offset: float) -> Any:
        request = RequestFactory().get("/cases/1/export/")
        request.user = dana
        request.session = client.session
        later = real_now() + dt.timedelta(seconds=offset)
        monkeypatch.setattr("accounts.reauth.timezone.now", lambda: later)
        return request

    real_now = timezone.now
    assert export(request_now(0)).content == b"exported"
    later = export(request_now(301))
    assert later.status_code == 302
    assert later["Location"] == "/accounts/reauthenticate/?" + urlencode(
        {"next": "/cases/1/export/"}
    )


@pytest.mark.django_db
def test_require_recent_reauth_refuses_a_password_only_session() -> None:
    dana = make_user(Role.DISPATCHER, "dana")
    client = Client()
    password(client, "dana")
    request = RequestFactory().get("/cases/1/export/")
    request.user = dana
    request.session = client.session
    request.session[reauth.REAUTH_AT] = 10**12  # even a stamp does not count without MFA
    assert not reauth.is_recent(request)


@pytest.mark.django_db
def test_the_reauth_page_needs_password_and_code(totp_clock: Clock) -> None:
    client, dana, secret = fully_logged_in(totp_clock)
    session = client.session
    session[reauth.REAUTH_AT] = 0
    session.save()
    page = "/accounts/reauthenticate/?next=/accounts/mfa/totp/deactivate/"
    assert client.get(page).status_code == 200

    totp_clock.now += 30
    code = code_at(secret, current_step(totp_clock.now))
    bad_password = client.post(page, {"password": "wrong-password-123", "code": code})
    assert bad_password.status_code == 200
    assert client.session[reauth.REAUTH_AT] == 0
    no_code = client.post(page, {"password": PASSWORD, "code": "12"})
    assert no_code.status_code == 200
    assert client.session[reauth.REAUTH_AT] == 0

    # The wrong password spent no code: the same code still works now.
    done = client.post(page, {"password": PASSWORD, "code": code})
    assert done.status_code == 302
    assert done["Location"] == "/accounts/mfa/totp/deactivate/"
    assert reauth.REAUTH_AT in client.session and client.session[reauth.REAUTH_AT] > 0
    assert AuditAction.REAUTHENTICATED in actions_of(dana)


@pytest.mark.django_db
def test_removing_a_factor_needs_a_recent_reauth_and_is_audited(totp_clock: Clock) -> None:
    client, dana, secret = fully_logged_in(totp_clock)
    deactivate = reverse("mfa_deactivate_totp")
    session = client.session
    session[reauth.REAUTH_AT] = 0
    session.save()
    asked = client.post(deactivate)
    assert asked.status_code == 302
    assert asked["Location"].startswith("/accounts/reauthenticate/?next=")
    assert Authenticator.objects.filter(user=dana, type=Authenticator.Type.TOTP).exists()

    totp_clock.now += 30
    client.post(
        "/accounts/reauthenticate/",
        {"password": PASSWORD, "code": code_at(secret, current_step(totp_clock.now))},
    )
    passkey(dana)  # so the app is not the last factor
    with committed():
        assert client.post(deactivate).status_code == 302
    assert not Authenticator.objects.filter(user=dana, type=Authenticator.Type.TOTP).exists()
    assert AuditAction.MFA_REMOVED in actions_of(dana)


@pytest.mark.django_db
def test_new_recovery_codes_are_audited(totp_clock: Clock) -> None:
    client, dana, _secret = fully_logged_in(totp_clock)
    old = recovery_codes_of(dana)
    with committed():
        assert client.post(reverse("mfa_generate_recovery_codes")).status_code == 302
    assert recovery_codes_of(dana) != old
    assert actions_of(dana)[-1] == AuditAction.RECOVERY_CODES_GENERATED


def passkey(user: User) -> Authenticator:
    """A passkey row (its credential is never checked by these tests)."""
    return Authenticator.objects.create(
        user=user, type=Authenticator.Type.WEBAUTHN, data={"name": "Key", "credential": {}}
    )


@pytest.mark.django_db
def test_the_last_factor_cannot_be_removed(totp_clock: Clock) -> None:
    """Without a factor, the password alone would enrol a new one at the next login."""
    client, dana, _secret = fully_logged_in(totp_clock)
    refused = client.post(reverse("mfa_deactivate_totp"))
    assert refused.status_code == 200
    assert Authenticator.objects.filter(user=dana, type=Authenticator.Type.TOTP).exists()

    # A passkey as the only factor cannot be removed either.
    Authenticator.objects.filter(user=dana, type=Authenticator.Type.TOTP).delete()
    key = passkey(dana)
    remove = reverse("mfa_remove_webauthn", kwargs={"pk": key.pk})
    kept = client.post(remove)
    assert kept.status_code == 302
    assert kept["Location"] == reverse("mfa_list_webauthn")
    assert Authenticator.objects.filter(pk=key.pk).exists()
    assert mfa.is_enrolled(dana)

    # With a second one, either can go.
    other = passkey(dana)
    with committed():
        assert client.post(remove).status_code == 302
    assert not Authenticator.objects.filter(pk=key.pk).exists()
    assert Authenticator.objects.filter(pk=other.pk).exists()


@pytest.mark.django_db
def test_a_first_enrolment_can_confirm_the_password_again(settings: Any) -> None:
    """allauth's enrolment pages ask for a recent password; someone with no factor yet
    must be able to give it, not bounce between enrolment and re-authentication."""
    make_user(Role.DISPATCHER, "dana")
    client = Client()
    password(client, "dana")
    settings.ACCOUNT_REAUTHENTICATION_TIMEOUT = 0  # the login's password is no longer recent
    asked = client.get(ENROL)
    assert asked.status_code == 302
    assert asked["Location"] == "/accounts/reauthenticate/?" + urlencode({"next": ENROL})
    page = client.get(asked["Location"])
    assert page.status_code == 200
    done = client.post(asked["Location"], {"password": PASSWORD, "next": ENROL})
    assert done.status_code == 302 and done["Location"] == ENROL
    settings.ACCOUNT_REAUTHENTICATION_TIMEOUT = 300
    assert client.get(ENROL).status_code == 200
    assert not completed(client)


@pytest.mark.django_db
def test_an_enrolment_by_another_session_does_not_complete_this_one(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Only a factor enrolled by this very request completes a password-only session:
    not the owner enrolling elsewhere while a thief's request is under way."""
    from allauth.core import context as allauth_context
    from allauth.mfa.base.views import IndexView

    dana = make_user(Role.DISPATCHER, "dana")
    thief = Client()
    password(thief, "dana", address=ELSEWHERE)

    def meanwhile(self: Any, request: Any, *args: Any, **kwargs: Any) -> Any:
        from django.http import HttpResponse

        with allauth_context.request_context(None):  # as another request would
            enrol_totp(dana)
        return HttpResponse("index")

    monkeypatch.setattr(IndexView, "post", meanwhile, raising=False)
    thief.post(reverse("mfa_index"), REMOTE_ADDR=ELSEWHERE)
    assert mfa.is_enrolled(dana)
    assert not completed(thief)
    assert thief.get(CONSOLE)["Location"].startswith(STEP)


@pytest.mark.django_db
def test_reading_recovery_codes_needs_a_recent_reauth(totp_clock: Clock) -> None:
    """Unused recovery codes get past MFA later: an unattended signed-in screen must not
    hand them out (allauth asks for re-authentication; this keeps it so)."""
    client, dana, secret = fully_logged_in(totp_clock)
    codes = recovery_codes_of(dana)
    page = reverse("mfa_view_recovery_codes")
    download = reverse("mfa_download_recovery_codes")
    assert codes[0] in client.get(page).content.decode()  # the login's proof is recent

    session = client.session
    session[reauth.REAUTH_AT] = 0
    session.save()
    for path in (page, download):
        asked = client.get(path)
        assert asked.status_code == 302, path
        assert asked["Location"] == "/accounts/reauthenticate/?" + urlencode({"next": path})
        assert codes[0] not in asked.content.decode()

    totp_clock.now += 30
    client.post(
        "/accounts/reauthenticate/",
        {"password": PASSWORD, "code": code_at(secret, current_step(totp_clock.now))},
    )
    assert codes[0] in client.get(download).content.decode()


@pytest.mark.django_db
def test_leftover_recovery_codes_are_not_readable_with_the_password_alone() -> None:
    """A factor removed in the database (a lost phone) can leave its recovery codes;
    a password-only session must not read them, only enrol a new factor."""
    dana, _secret = enrolled()
    codes = recovery_codes_of(dana)
    Authenticator.objects.filter(user=dana, type=Authenticator.Type.TOTP).delete()
    client = Client()
    assert password(client, "dana")["Location"] == ENROL
    for path in (reverse("mfa_view_recovery_codes"), reverse("mfa_download_recovery_codes")):
        response = client.get(path)
        assert response.status_code == 302 and response["Location"] == ENROL, path
        assert codes[0] not in response.content.decode()
