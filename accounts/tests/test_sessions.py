"""Session lifecycle (R12, ASVS 7.2.4, 7.3.1, 7.3.2, 7.4.2): a new key at login, idle
and absolute timeouts checked with a frozen clock, polls that do not keep a session
alive, disabled accounts logged out everywhere, logout by POST with CSRF only."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from typing import Any

import pytest
from django.conf import settings
from django.contrib.sessions.models import Session
from django.test import Client
from django.utils import timezone

from accounts import sessions
from accounts.models import Role, User
from conftest import make_user
from core import periodic

CONSOLE = "/console/"
LOGIN = "/accounts/login/"
PASSWORD = "a-long-test-password"


class Clock:
    """``timezone.now`` frozen, moved by hand; the session table's expiry and the
    middleware both read it."""

    def __init__(self) -> None:
        self.now = dt.datetime(2025, 3, 1, 9, 0, tzinfo=dt.UTC)

    def advance(self, **delta: float) -> None:
        self.now += dt.timedelta(**delta)


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Iterator[Clock]:
    frozen = Clock()
    monkeypatch.setattr(timezone, "now", lambda: frozen.now)
    yield frozen


def logged_in(user: User) -> Client:
    client = Client()
    client.force_login(user)
    return client


def is_logged_in(client: Client) -> bool:
    response = client.get(CONSOLE)
    if response.status_code == 200:
        return True
    assert response.status_code == 302
    assert response["Location"].startswith(LOGIN)
    return False


def sessions_of(user: User) -> int:
    return sum(
        1 for row in Session.objects.all() if row.get_decoded().get("_auth_user_id") == str(user.pk)
    )


@pytest.mark.django_db
def test_login_gives_the_session_a_new_key() -> None:
    make_user(Role.DISPATCHER, "dana")
    client = Client()
    before = client.session
    before["note"] = "anonymous visit"
    before.save()
    old_key = before.session_key
    assert client.cookies[settings.SESSION_COOKIE_NAME].value == old_key

    response = client.post(LOGIN, {"username": "dana", "password": PASSWORD})

    assert response.status_code == 302
    new_key = client.cookies[settings.SESSION_COOKIE_NAME].value
    assert new_key and new_key != old_key
    assert not Session.objects.filter(session_key=old_key).exists()


@pytest.mark.django_db
def test_an_idle_session_ends_after_thirty_minutes(clock: Clock) -> None:
    client = logged_in(make_user(Role.DISPATCHER))
    assert is_logged_in(client)
    clock.advance(minutes=29)
    assert is_logged_in(client)  # activity: the idle period starts again
    clock.advance(minutes=29)
    assert is_logged_in(client)
    clock.advance(minutes=30, seconds=1)
    assert not is_logged_in(client)
    assert not Session.objects.filter(expire_date__gt=clock.now).exists()
    sessions_job = next(job for job in periodic.jobs() if job.name == "accounts.clear-sessions")
    sessions_job.run()
    assert Session.objects.count() == 0


@pytest.mark.django_db
def test_the_session_row_and_cookie_expire_at_the_idle_deadline(clock: Clock) -> None:
    client = logged_in(make_user(Role.DISPATCHER))
    row = Session.objects.get()
    assert row.expire_date == clock.now + dt.timedelta(seconds=settings.RR_SESSION_IDLE_SECONDS)
    clock.advance(minutes=10)
    response = client.get(CONSOLE)
    assert response.cookies[settings.SESSION_COOKIE_NAME]["max-age"] == 30 * 60
    row.refresh_from_db()
    assert row.expire_date == clock.now + dt.timedelta(minutes=30)


@pytest.mark.django_db
def test_the_idle_timeout_is_configurable(clock: Clock, settings: Any) -> None:
    settings.RR_SESSION_IDLE_SECONDS = 120
    client = logged_in(make_user(Role.DISPATCHER))
    clock.advance(seconds=119)
    assert is_logged_in(client)
    clock.advance(seconds=121)
    assert not is_logged_in(client)


@pytest.mark.django_db
def test_a_session_ends_twelve_hours_after_login_however_active(clock: Clock) -> None:
    client = logged_in(make_user(Role.DISPATCHER))
    elapsed = dt.timedelta()
    while elapsed < dt.timedelta(hours=12) - dt.timedelta(minutes=20):
        clock.advance(minutes=20)
        elapsed += dt.timedelta(minutes=20)
        assert is_logged_in(client), elapsed
    clock.advance(minutes=20)  # twelve hours since the login
    assert not is_logged_in(client)


@pytest.mark.django_db
def test_the_absolute_limit_is_configurable(clock: Clock, settings: Any) -> None:
    settings.SESSION_COOKIE_AGE = 45 * 60
    client = logged_in(make_user(Role.DISPATCHER))
    clock.advance(minutes=25)
    assert is_logged_in(client)
    clock.advance(minutes=20)
    assert not is_logged_in(client)


HTMX_POLL = {"HX-Request": "true", "HX-Trigger": "alert-progress"}
NO_ALERT = "/alerts/00000000-0000-4000-8000-000000000000/"


@pytest.mark.django_db
def test_polls_do_not_keep_a_session_alive(clock: Clock) -> None:
    # The event stream closes this test's database connection (it streams without
    # one), so it is covered by test_which_requests_are_background.
    client = logged_in(make_user(Role.DISPATCHER))
    for _ in range(9):
        clock.advance(minutes=3)
        assert client.get("/calls/console-section/").status_code == 200
        # An HTMX poll (the alert page's progress); a missing alert is still a 404.
        assert client.get(NO_ALERT, headers=HTMX_POLL).status_code == 404
        assert client.get("/test-phone/conversation/").status_code == 200
        assert client.get("/console/", HTTP_X_RR_POLL="1").status_code == 200
    clock.advance(minutes=3)  # thirty minutes since the login, the last activity
    assert not is_logged_in(client)


@pytest.mark.django_db
def test_an_htmx_request_the_person_made_is_activity(clock: Clock) -> None:
    client = logged_in(make_user(Role.DISPATCHER))
    clock.advance(minutes=20)
    # An HTMX GET from another element (the audience count as the radius changes).
    client.get(CONSOLE, HTTP_HX_REQUEST="true", HTTP_HX_TRIGGER="radius")
    clock.advance(minutes=20)
    assert is_logged_in(client)


@pytest.mark.django_db
def test_an_ended_session_answers_htmx_with_a_full_reload(clock: Clock) -> None:
    client = logged_in(make_user(Role.DISPATCHER))
    clock.advance(minutes=31)
    response = client.get("/test-phone/conversation/", HTTP_HX_REQUEST="true")
    assert response.status_code == 204
    assert response["HX-Refresh"] == "true"


def test_which_requests_are_background() -> None:
    from django.test import RequestFactory

    factory = RequestFactory()
    assert sessions.is_background(factory.get("/console/events/"))
    assert sessions.is_background(factory.get("/calls/console-section/"))
    assert sessions.is_background(factory.get("/test-phone/conversation/"))
    assert sessions.is_background(
        factory.get(
            "/dispatch/imports/x/", headers={"HX-Request": "true", "HX-Trigger": "import-progress"}
        )
    )
    assert sessions.is_background(factory.post("/anything/", headers={"X-RR-Poll": "1"}))
    assert not sessions.is_background(factory.get("/console/"))
    assert not sessions.is_background(
        factory.post("/alerts/x/", headers={"HX-Request": "true", "HX-Trigger": "alert-progress"})
    )
    assert not sessions.is_background(
        factory.get("/alerts/x/", headers={"HX-Request": "true", "HX-Trigger": "radius"})
    )


@pytest.mark.django_db
def test_a_session_without_the_marks_has_ended() -> None:
    from django.contrib.sessions.backends.db import SessionStore

    user = make_user(Role.DISPATCHER)
    store = SessionStore()
    store["_auth_user_id"] = str(user.pk)
    store["_auth_user_backend"] = "django.contrib.auth.backends.ModelBackend"
    store["_auth_user_hash"] = user.get_session_auth_hash()
    store.save()
    client = Client()
    client.cookies[settings.SESSION_COOKIE_NAME] = str(store.session_key)
    assert not is_logged_in(client)


@pytest.mark.django_db
def test_disabling_a_user_ends_all_their_sessions_at_once() -> None:
    dana = make_user(Role.DISPATCHER, "dana")
    coordinator = make_user(Role.COORDINATOR, "cory")
    laptop, phone, other = logged_in(dana), logged_in(dana), logged_in(coordinator)
    assert sessions_of(dana) == 2

    dana.is_active = False
    dana.save()

    assert sessions_of(dana) == 0
    assert sessions_of(coordinator) == 1
    assert not is_logged_in(laptop)
    assert not is_logged_in(phone)
    assert is_logged_in(other)


@pytest.mark.django_db
def test_end_sessions_after_a_bulk_update() -> None:
    dana = make_user(Role.DISPATCHER, "dana")
    client = logged_in(dana)
    User.objects.filter(pk=dana.pk).update(is_active=False)
    assert sessions.end_sessions(dana) == 1
    assert not is_logged_in(client)


@pytest.mark.django_db
def test_saving_an_active_user_keeps_their_sessions() -> None:
    dana = make_user(Role.DISPATCHER, "dana")
    client = logged_in(dana)
    dana.first_name = "Dana"
    dana.save()
    assert is_logged_in(client)


@pytest.mark.django_db
def test_logout_refuses_get_and_needs_csrf() -> None:
    dana = make_user(Role.DISPATCHER, "dana")
    client = Client(enforce_csrf_checks=True)
    client.force_login(dana)

    assert client.get("/accounts/logout/").status_code == 405
    assert is_logged_in(client)
    # A cross-site form cannot carry the token.
    assert client.post("/accounts/logout/").status_code == 403
    assert is_logged_in(client)

    page = client.get(CONSOLE)
    token = page.context["csrf_token"]
    response = client.post("/accounts/logout/", {"csrfmiddlewaretoken": str(token)})
    assert response.status_code == 302
    assert not is_logged_in(client)
