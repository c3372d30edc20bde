"""The one place that reads a client's network address, and only to hash it.

The address is never stored, logged or returned: callers get a keyed hash that
changes with every rate-limit window, so it cannot be linked across windows.
"""

from __future__ import annotations

from django.conf import settings
from django.http import HttpRequest

from core.crypto import keyed_hash


def client_address(request: HttpRequest) -> str:
    proxies = settings.RR_TRUSTED_PROXY_COUNT
    if proxies > 0:
        forwarded = [
            part.strip()
            for part in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",")
            if part.strip()
        ]
        if len(forwarded) >= proxies:
            return str(forwarded[-proxies])
    return str(request.META.get("REMOTE_ADDR") or "")


def client_key(request: HttpRequest, *, window: str) -> str:
    """A keyed hash of the client address, scoped to one rate-limit window."""
    return keyed_hash(f"{client_address(request)}|{window}", purpose="client")
