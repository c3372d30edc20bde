"""Login throttling that cannot lock anyone out from everywhere (ASVS 6.1.1, R10).

Failed logins are counted in the cache, in fixed windows of
``RR_LOGIN_THROTTLE_SECONDS``, under two keys:

- the typed username with the client: ``RR_LOGIN_FAILURES_PER_ACCOUNT`` failures and
  that client may not try that username again until the window ends;
- the client alone: ``RR_LOGIN_FAILURES_PER_CLIENT`` failures and it may not try any
  username (password spraying).

Nothing counts per account alone for passwords, so failures from one place never stop
the right password from another. Wrong second-factor codes are also counted per account
(``RR_MFA_CODE_FAILURES_PER_ACCOUNT`` a window), since only someone who has the
account's password reaches the code: a stranger cannot use that count to lock anyone
out, and a password holder with many addresses cannot keep guessing codes. Passkeys,
which cannot be guessed, are never refused by it, so their owner still gets in.
A refused attempt checks no password and counts nothing. Keys are keyed hashes
(``core.client`` for the address, which is never stored; the username and the account
are hashed too) that include the window, and entries expire with it. The counts are the
same whether the username exists, so throttling tells nothing about accounts either.
When the cache is down logins are not throttled: refusing every login in an emergency
would be worse.
"""

from __future__ import annotations

import logging

from django.conf import settings
from django.core.cache import cache
from django.http import HttpRequest

from core.client import client_key
from core.crypto import keyed_hash
from core.ratelimit import Window, count_one, local_counters

logger = logging.getLogger(__name__)


def _window() -> Window:
    return Window("login", int(settings.RR_LOGIN_THROTTLE_SECONDS))


def _normalised(username: str) -> str:
    return username.strip().casefold()[:256]


def _keys(request: HttpRequest, username: str) -> tuple[str, str]:
    window = _window().current()
    client = client_key(request, window=window)
    pair = keyed_hash(f"{client}|{_normalised(username)}", purpose="login-pair")
    return f"login-fail:pair:{pair}", f"login-fail:client:{client}"


def is_refused(request: HttpRequest, username: str) -> bool:
    """Whether this client has failed too often, for this username or for any."""
    pair_key, client_key_ = _keys(request, username)
    try:
        counts = cache.get_many([pair_key, client_key_])
    except Exception:
        logger.warning("Login throttle store unavailable; using this process's counts.")
        counts = local_counters.get_many([pair_key, client_key_])
    refused = int(counts.get(pair_key, 0)) >= int(settings.RR_LOGIN_FAILURES_PER_ACCOUNT) or int(
        counts.get(client_key_, 0)
    ) >= int(settings.RR_LOGIN_FAILURES_PER_CLIENT)
    if refused:
        logger.info("Login refused: too many failed attempts from one client.")
    return refused


def record_failure(request: HttpRequest, username: str) -> None:
    timeout = _window().seconds
    for key in _keys(request, username):
        try:
            count_one(cache, key, timeout)
        except Exception:
            logger.warning("Login throttle store unavailable; counting in this process.")
            count_one(local_counters, key, timeout)


def record_success(request: HttpRequest, username: str) -> None:
    """Forget this client's failures for this username. The client's own count stays,
    or logging in to one's own account between guesses would reset it."""
    pair_key, _ = _keys(request, username)
    local_counters.delete(pair_key)
    try:
        cache.delete(pair_key)
    except Exception:
        logger.warning("Login throttle store unavailable; failures were not cleared.")


def _code_key(user: object) -> str:
    account = keyed_hash(str(getattr(user, "pk", "")), purpose="mfa-codes")
    return f"mfa-codes:{account}:{_window().current()}"


def codes_refused(user: object) -> bool:
    """Whether the account has had too many wrong codes this window, from anywhere."""
    key = _code_key(user)
    try:
        count = cache.get(key, 0)
    except Exception:
        logger.warning("Login throttle store unavailable; using this process's counts.")
        count = local_counters.get(key, 0)
    refused = int(count or 0) >= int(settings.RR_MFA_CODE_FAILURES_PER_ACCOUNT)
    if refused:
        logger.info("Second-factor code refused: too many wrong codes for one account.")
    return refused


def record_code_failure(user: object) -> None:
    key = _code_key(user)
    try:
        count_one(cache, key, _window().seconds)
    except Exception:
        logger.warning("Login throttle store unavailable; counting in this process.")
        count_one(local_counters, key, _window().seconds)


def record_code_success(user: object) -> None:
    """A right code ends the count: only the code's holder can do that."""
    key = _code_key(user)
    local_counters.delete(key)
    try:
        cache.delete(key)
    except Exception:
        logger.warning("Login throttle store unavailable; failures were not cleared.")
