"""Re-authentication for sensitive actions (ASVS 6.3.x; R14 for case exports).

``require_recent_reauth(seconds=300)`` wraps a view: unless this session proved the
password *and* a second factor within ``seconds``, the person is sent to the
re-authentication page (``accounts:reauth``, password plus an MFA code or a passkey)
and comes back to the view afterwards (a GET; for a POST they come back to the page
they came from, since a form cannot be replayed safely). Logging in with MFA counts as
a re-authentication at that moment.

Usage::

    from accounts.reauth import require_recent_reauth

    @login_required
    @require_recent_reauth(seconds=300)
    def export_case(request, case_id): ...

allauth's own management pages (removing an authenticator, new recovery codes) use the
same stamp through ``accounts.adapters.AccountAdapter``.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, TypeVar, cast
from urllib.parse import urlencode

from django.conf import settings
from django.contrib.auth import REDIRECT_FIELD_NAME
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.urls import reverse
from django.utils import timezone

REAUTH_AT = "rr_reauth_at"
# When the password alone was last proved: enough only to enrol a first factor.
PASSWORD_AT = "rr_password_at"  # noqa: S105 - a session key name

View = TypeVar("View", bound=Callable[..., HttpResponse])


def stamp(request: HttpRequest, now: int | None = None) -> None:
    """Record that this session just proved the password and a second factor."""
    request.session[REAUTH_AT] = int(timezone.now().timestamp()) if now is None else now


def stamp_password(request: HttpRequest) -> None:
    request.session[PASSWORD_AT] = int(timezone.now().timestamp())


def _within(request: HttpRequest, key: str, seconds: int | None) -> bool:
    limit = int(settings.ACCOUNT_REAUTHENTICATION_TIMEOUT) if seconds is None else seconds
    try:
        at = int(request.session[key])
    except (KeyError, TypeError, ValueError):
        return False
    return 0 <= timezone.now().timestamp() - at < limit


def is_recent(request: HttpRequest | None, seconds: int | None = None) -> bool:
    """Whether this session completed MFA and proved password and MFA within
    ``seconds`` (default ``ACCOUNT_REAUTHENTICATION_TIMEOUT``)."""
    from accounts import mfa

    if request is None or not request.user.is_authenticated or not mfa.is_complete(request):
        return False
    return _within(request, REAUTH_AT, seconds)


def is_password_recent(request: HttpRequest, seconds: int | None = None) -> bool:
    return request.user.is_authenticated and _within(request, PASSWORD_AT, seconds)


def reauth_url(request: HttpRequest) -> str:
    if request.method == "GET":
        back = request.get_full_path()
    else:
        back = str(request.headers.get("Referer", "")) or reverse("home")
    return f"{reverse('accounts:reauth')}?{urlencode({REDIRECT_FIELD_NAME: back})}"


def require_recent_reauth(seconds: int = 300) -> Callable[[View], View]:
    """A view decorator: the view runs only for a session that proved password and MFA
    in the last ``seconds``; others are sent to the re-authentication page. An HTMX
    request is sent there with ``HX-Redirect``."""

    def decorator(view: View) -> View:
        @functools.wraps(view)
        def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
            if is_recent(request, seconds):
                return view(request, *args, **kwargs)
            target = reauth_url(request)
            if request.headers.get("HX-Request") == "true":
                response = HttpResponse(status=204)
                response["HX-Redirect"] = target
                return response
            return HttpResponseRedirect(target)

        return cast(View, wrapper)

    return decorator
