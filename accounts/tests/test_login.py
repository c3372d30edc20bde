"""Login answers (R10, R11): the same page for an unknown user and a wrong password,
throttling per client and typed username and per client, and never a lockout of an
account from everywhere."""

from __future__ import annotations

import re
from typing import Any

import pytest
from django.core.cache import cache
from django.test import Client

from accounts.models import Role, User
from conftest import make_user

LOGIN = "/accounts/login/"
PASSWORD = "a-long-test-password"
HERE = "198.51.100.7"
ELSEWHERE = "203.0.113.9"


def attempt(client: Client, username: str, password: str, address: str = HERE) -> Any:
    return client.post(LOGIN, {"username": username, "password": password}, REMOTE_ADDR=address)


def normalised(body: bytes) -> str:
    """The page without what differs on every response: the masked CSRF token and
    any CSP nonce."""
    text = body.decode()
    text = re.sub(r'name="csrfmiddlewaretoken" value="[^"]+"', "csrf", text)
    return re.sub(r'nonce="[^"]+"', "nonce", text)


@pytest.mark.django_db
def test_unknown_user_bad_password_and_disabled_account_get_the_same_answer() -> None:
    client = Client()
    unknown = attempt(client, "alex", "wrong-password-123")
    user = make_user(Role.DISPATCHER, "alex")
    bad_password = attempt(client, "alex", "wrong-password-123")
    user.is_active = False
    user.save()
    disabled = attempt(client, "alex", PASSWORD)

    assert unknown.status_code == bad_password.status_code == disabled.status_code == 200
    assert normalised(unknown.content) == normalised(bad_password.content)
    assert normalised(unknown.content) == normalised(disabled.content)
    assert b"Please enter a correct username and password" in unknown.content


@pytest.mark.django_db
def test_the_right_password_logs_in() -> None:
    make_user(Role.DISPATCHER, "alex")
    response = attempt(Client(), "alex", PASSWORD)
    assert response.status_code == 302


@pytest.mark.django_db
def test_failures_from_one_client_do_not_lock_the_account_elsewhere(settings: Any) -> None:
    make_user(Role.DISPATCHER, "alex")
    attacker, owner = Client(), Client()
    for _ in range(settings.RR_LOGIN_FAILURES_PER_ACCOUNT):
        assert attempt(attacker, "alex", "guess-guess-guess").status_code == 200

    refused = attempt(attacker, "alex", PASSWORD)
    assert refused.status_code == 429
    assert b"Too many failed attempts" in refused.content
    assert "_auth_user_id" not in attacker.session

    # The owner, from another client, with the right password.
    assert attempt(owner, "alex", PASSWORD, address=ELSEWHERE).status_code == 302
    # The attacker's client may still try other usernames (until the client limit).
    assert attempt(attacker, "someone-else", "guess-guess-guess").status_code == 200


@pytest.mark.django_db
def test_the_refusal_is_the_same_for_an_unknown_and_a_known_username(settings: Any) -> None:
    make_user(Role.DISPATCHER, "alex")
    client = Client()
    for username in ("alex", "nobody"):
        for _ in range(settings.RR_LOGIN_FAILURES_PER_ACCOUNT):
            attempt(client, username, "guess-guess-guess")
    known = attempt(client, "alex", "guess-guess-guess")
    unknown = attempt(client, "nobody", "guess-guess-guess")
    assert known.status_code == unknown.status_code == 429
    assert normalised(known.content).replace("alex", "X") == normalised(unknown.content).replace(
        "nobody", "X"
    )


@pytest.mark.django_db
def test_a_client_spraying_many_usernames_is_refused_for_all(settings: Any) -> None:
    settings.RR_LOGIN_FAILURES_PER_CLIENT = 8
    make_user(Role.DISPATCHER, "alex")
    sprayer = Client()
    for number in range(8):
        assert attempt(sprayer, f"user{number}", "guess-guess-guess").status_code == 200
    assert attempt(sprayer, "alex", PASSWORD).status_code == 429
    assert attempt(Client(), "alex", PASSWORD, address=ELSEWHERE).status_code == 302


@pytest.mark.django_db
def test_the_username_is_counted_whatever_its_case_or_spaces(settings: Any) -> None:
    make_user(Role.DISPATCHER, "alex")
    client = Client()
    for variant in ("alex", "ALEX", " Alex", "alex ", "aLeX"):
        attempt(client, variant, "guess-guess-guess")
    assert attempt(client, "alex", PASSWORD).status_code == 429


@pytest.mark.django_db
def test_the_refusal_is_short(settings: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    import core.ratelimit

    class FakeTime:
        now = 1_700_000_000.0

        def time(self) -> float:
            return self.now

    fake = FakeTime()
    monkeypatch.setattr(core.ratelimit, "time", fake)
    make_user(Role.DISPATCHER, "alex")
    client = Client()
    for _ in range(settings.RR_LOGIN_FAILURES_PER_ACCOUNT):
        attempt(client, "alex", "guess-guess-guess")
    assert attempt(client, "alex", PASSWORD).status_code == 429
    fake.now += settings.RR_LOGIN_THROTTLE_SECONDS
    assert attempt(client, "alex", PASSWORD).status_code == 302


@pytest.mark.django_db
def test_a_successful_login_forgets_that_clients_failures_for_the_account(
    settings: Any,
) -> None:
    make_user(Role.DISPATCHER, "alex")
    client = Client()
    for _ in range(settings.RR_LOGIN_FAILURES_PER_ACCOUNT - 1):
        attempt(client, "alex", "typo-typo-typo")
    assert attempt(client, "alex", PASSWORD).status_code == 302
    client.logout()
    for _ in range(settings.RR_LOGIN_FAILURES_PER_ACCOUNT - 1):
        attempt(client, "alex", "typo-typo-typo")
    assert attempt(client, "alex", PASSWORD).status_code == 302


def stored_cache_entries() -> str:
    """Every key and value in the cache, as text (in-memory or Redis)."""
    from django.core.cache import caches
    from django.core.cache.backends.locmem import LocMemCache
    from django.core.cache.backends.redis import RedisCache

    backend = caches["default"]
    internals: Any = backend  # the backends' private stores, for this inspection only
    if isinstance(backend, LocMemCache):
        return repr(list(internals._cache.items()))
    if isinstance(backend, RedisCache):
        client = internals._cache.get_client()
        return repr([(key, client.get(key)) for key in client.keys("*")])
    pytest.skip("this cache cannot be listed")


@pytest.mark.django_db
def test_the_counters_hold_neither_address_nor_username(settings: Any) -> None:
    make_user(Role.DISPATCHER, "alex")
    for _ in range(3):
        attempt(Client(), "alex", "guess-guess-guess")
    stored = stored_cache_entries()
    assert "login-fail" in stored
    assert HERE not in stored
    assert "alex" not in stored


@pytest.mark.django_db
def test_with_the_cache_down_failures_are_counted_in_the_process(
    settings: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from core.ratelimit import local_counters

    local_counters.clear()
    make_user(Role.DISPATCHER, "alex")
    client = Client()

    def down(*args: Any, **kwargs: Any) -> Any:
        raise ConnectionError("cache down")

    for method in ("get_many", "add", "incr", "delete"):
        monkeypatch.setattr(cache, method, down)
    assert attempt(client, "alex", "guess-guess-guess").status_code == 200
    assert attempt(client, "alex", PASSWORD).status_code == 302
    for _ in range(settings.RR_LOGIN_FAILURES_PER_ACCOUNT):
        assert attempt(Client(), "alex", "guess-guess-guess").status_code == 200
    assert attempt(Client(), "alex", PASSWORD).status_code == 429
    local_counters.clear()


@pytest.mark.django_db
def test_an_empty_form_counts_no_failure(settings: Any) -> None:
    make_user(Role.DISPATCHER, "alex")
    client = Client()
    for _ in range(settings.RR_LOGIN_FAILURES_PER_ACCOUNT + 2):
        assert attempt(client, "alex", "").status_code == 200
    assert attempt(client, "alex", PASSWORD).status_code == 302
    assert User.objects.get(username="alex").last_login is not None
