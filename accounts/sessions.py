"""Staff session lifetime: an idle timeout, an absolute one, and ending a disabled
person's sessions (ASVS 7.3.1, 7.3.2, 7.4.2).

A login stamps the session with its start and its last activity, and sets the
session's own expiry to whichever comes first: ``RR_SESSION_IDLE_SECONDS`` after the
last activity or ``SESSION_COOKIE_AGE`` after the login. The database and the browser
therefore drop the session at that moment even if nothing else runs;
``SessionTimeoutMiddleware`` checks the same two limits on every request, and moves the
idle deadline forward on requests a person made.

Background requests are not activity, or an open console would never time out:

- the paths in ``POLL_URL_NAMES`` (the console's event stream, the console's phone
  section, the test phone's panels), whatever their method and headers;
- an HTMX GET (``HX-Request: true``) whose triggering element is one of
  ``POLL_TRIGGER_IDS`` (HTMX sends the element's id as ``HX-Trigger``, not the trigger,
  so ``hx-trigger="every 2s"`` cannot be seen from the request);
- any request that says ``X-RR-Poll: 1``: a new poller adds it with ``hx-headers``.

A client can only shorten its own session by claiming to poll, so trusting these marks
is safe. Activity is recorded at most once every ``ACTIVITY_RESOLUTION`` seconds (a
session write per page would queue behind intake on SQLite), so a session may end up to
that much before a full idle period since the very last click.
"""

from __future__ import annotations

import datetime as dt
import functools
import logging
from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.contrib import auth
from django.contrib.auth import SESSION_KEY
from django.contrib.auth.signals import user_logged_in
from django.contrib.sessions.backends.base import SessionBase
from django.contrib.sessions.models import Session
from django.db.models.signals import post_save
from django.dispatch import receiver
from django.http import HttpRequest, HttpResponse
from django.urls import NoReverseMatch, reverse
from django.utils import timezone

from accounts.models import User

logger = logging.getLogger(__name__)

AUTH_AT = "rr_auth_at"
ACTIVE_AT = "rr_active_at"
ACTIVITY_RESOLUTION = 60

POLL_URL_NAMES = (
    "incidents:events",
    "calls:console-section",
    "test-phone:conversation",
    "test-phone:phones",
    "test-phone:call-poll",
)
POLL_TRIGGER_IDS = frozenset({"alert-progress", "import-progress"})
POLL_HEADER = "X-RR-Poll"


def _now() -> int:
    return int(timezone.now().timestamp())


def idle_seconds() -> int:
    return int(settings.RR_SESSION_IDLE_SECONDS)


def max_age_seconds() -> int:
    return int(settings.SESSION_COOKIE_AGE)


def _touch(session: SessionBase, now: int) -> None:
    session[ACTIVE_AT] = now
    deadline = min(int(session[AUTH_AT]) + max_age_seconds(), now + idle_seconds())
    session.set_expiry(dt.datetime.fromtimestamp(deadline, tz=dt.UTC))


@receiver(user_logged_in, dispatch_uid="accounts.sessions.stamp_login")
def stamp_login(sender: Any, request: HttpRequest, user: User, **kwargs: Any) -> None:
    """Django has already given the session a new key (``login`` cycles it)."""
    now = _now()
    request.session[AUTH_AT] = now
    _touch(request.session, now)


def has_ended(session: SessionBase, now: int | None = None) -> bool:
    """Whether a logged-in session is past either limit. A session without the marks
    (made before they existed) has ended too: its age cannot be known."""
    moment = _now() if now is None else now
    try:
        auth_at = int(session[AUTH_AT])
        active_at = int(session[ACTIVE_AT])
    except (KeyError, TypeError, ValueError):
        return True
    return moment - active_at >= idle_seconds() or moment - auth_at >= max_age_seconds()


@functools.cache
def _poll_paths() -> frozenset[str]:
    paths = set()
    for name in POLL_URL_NAMES:
        try:
            paths.add(reverse(name))
        except NoReverseMatch:
            # A poller that is not mounted in this deployment.
            continue
    return frozenset(paths)


def is_background(request: HttpRequest) -> bool:
    """Whether the page asked for this by itself (a poll or a stream), not the person."""
    if request.path in _poll_paths():
        return True
    if request.headers.get(POLL_HEADER) == "1":
        return True
    return (
        request.method == "GET"
        and request.headers.get("HX-Request") == "true"
        and request.headers.get("HX-Trigger", "") in POLL_TRIGGER_IDS
    )


def _login_redirect(response: HttpResponse) -> bool:
    location = str(response.get("Location", ""))
    return response.status_code == 302 and location.startswith(str(reverse(settings.LOGIN_URL)))


class SessionTimeoutMiddleware:
    """Ends a staff session past its idle or absolute limit and records activity.

    Sits right after AuthenticationMiddleware, so nothing below sees the ended user.
    An HTMX request that would be sent to the login page gets ``HX-Refresh`` instead:
    the whole page reloads onto the login form rather than a fragment swapping it in.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        session = request.session
        if SESSION_KEY in session:
            now = _now()
            if has_ended(session, now):
                auth.logout(request)
            elif not is_background(request) and (
                now - int(session[ACTIVE_AT]) >= ACTIVITY_RESOLUTION
            ):
                _touch(session, now)
        response = self.get_response(request)
        if request.headers.get("HX-Request") == "true" and _login_redirect(response):
            refresh = HttpResponse(status=204)
            refresh["HX-Refresh"] = "true"
            return refresh
        return response


def end_sessions(user: User) -> int:
    """Delete every session of ``user``; the number deleted.

    Sessions live in Django's session table with the user id inside the encoded data,
    so the unexpired rows are decoded one by one (a network has tens of staff, and
    every row expires within ``SESSION_COOKIE_AGE``)."""
    user_id = str(user.pk)
    now = timezone.now()
    doomed = [
        row.pk
        for row in Session.objects.filter(expire_date__gt=now).iterator()
        if row.get_decoded().get(SESSION_KEY) == user_id
    ]
    if doomed:
        Session.objects.filter(pk__in=doomed).delete()
    return len(doomed)


@receiver(post_save, sender=User, dispatch_uid="accounts.sessions.end_disabled")
def end_sessions_of_disabled(sender: Any, instance: User, **kwargs: Any) -> None:
    """Disabling someone (``is_active = False``, saved) logs them out everywhere at once.

    ``QuerySet.update()`` sends no signal: call ``end_sessions`` after one."""
    if not instance.is_active:
        ended = end_sessions(instance)
        if ended:
            logger.info("Ended %d session(s) of a disabled account.", ended)
