"""Refuse a Redis that anyone on the network could use.

Redis holds the rate-limit counters, login-throttle counts and cross-process locks. One
that listens beyond this machine without a password lets any host on that network read
or reset them (and, through CONFIG, much more), so production settings refuse such a
URL. Loopback addresses and unix sockets are reachable only from this machine.
"""

from __future__ import annotations

import ipaddress
from urllib.parse import parse_qs, urlsplit

from django.core.exceptions import ImproperlyConfigured

LOOPBACK_NAMES = {"localhost", "localhost.localdomain"}


def is_loopback(host: str) -> bool:
    if host.lower() in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False  # a name: it may resolve to anything


def require_password(url: str) -> None:
    """Raise ImproperlyConfigured for a non-loopback Redis URL without a password."""
    parts = urlsplit(url)
    if parts.scheme not in {"redis", "rediss", "unix"}:
        raise ImproperlyConfigured("REDIS_URL must start with redis://, rediss:// or unix://.")
    if parts.scheme == "unix":
        return
    password = parts.password or parse_qs(parts.query).get("password", [""])[0]
    if not password and not is_loopback(parts.hostname or ""):
        raise ImproperlyConfigured(
            "REDIS_URL points to another host without a password. Set `requirepass` (or "
            "an ACL user) on that Redis and put it in the URL: "
            "redis://:<password>@host:6379/0 (rediss:// for TLS)."
        )
