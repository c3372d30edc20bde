"""MFA for every staff account (ASVS 6.3.3, R9): allauth's TOTP, passkeys (WebAuthn) and
recovery codes, behind our own login view.

A staff login has two steps. ``accounts.views.LoginView`` checks the password (with its
throttle and its one answer for every failure) and calls Django's ``login()``, which
gives the session a new key; the session is then *password-only*. ``MFA_AT`` is set in
the session once the person proves a second factor: at the MFA step
(``accounts.views.MFAStepView``), or by enrolling their first factor (an enrolment
proves the new authenticator works). ``MFARequiredMiddleware`` sends a password-only
session to the MFA step, or to enrolment when the person has no authenticator yet, on
every path except the few the two steps need and the public ones.

A TOTP code works once. allauth remembers used codes in the cache for their window,
which a per-process cache (no Redis) does not share between web processes; so the last
accepted time step of each person is also kept in the database (``TOTPStep``), and a
code of that step or an earlier one is refused (``accept_totp_step``).

Enrolment pages are allauth's, for the signed-in person only: they take no user id, and
a password-only session may use them only while the person has no authenticator, or a
stolen password would be enough to add the thief's own authenticator.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import urlencode

from allauth.core import context as allauth_context
from allauth.core.exceptions import ReauthenticationRequired
from allauth.mfa import app_settings as mfa_settings
from allauth.mfa import signals as mfa_signals
from allauth.mfa.models import Authenticator
from allauth.mfa.totp.internal.auth import format_hotp_value, hotp_value
from allauth.mfa.utils import decrypt
from django.contrib.auth import REDIRECT_FIELD_NAME, SESSION_KEY
from django.db import IntegrityError, transaction
from django.db.models.signals import post_save
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.urls import Resolver404, resolve, reverse
from django.utils import timezone
from django.utils.http import url_has_allowed_host_and_scheme

from accounts import audit
from accounts.models import TOTPStep, User
from core.models import AuditAction

logger = logging.getLogger(__name__)

MFA_AT = "rr_mfa_at"

# What a password-only session may open: the MFA step and logout, and, while the person
# has no authenticator, allauth's enrolment pages. Not the recovery codes: enrolling
# completes the session before allauth shows them, and codes left over from a factor
# removed in the database must not be readable with the password alone.
STEP_URL_NAMES = frozenset({"accounts:mfa", "accounts:logout", "accounts:login"})
ENROL_URL_NAMES = frozenset({"mfa_index", "mfa_activate_totp", "mfa_add_webauthn"})
# Pages that need no staff session at all: the public report form, static files, the
# webhooks, the sign-up page and the responders' signed links; their views check what
# they need themselves. Whole path segments only (a trailing slash, or the exact
# path), so a staff page named like one ("/reports/") is not opened with them.
OPEN_PREFIXES = ("/report/", "/static/", "/hooks/", "/join/", "/r/")
OPEN_PATHS = frozenset({"/healthz"})
# Set on a request that itself created a factor for its own user (``_on_saved``): only
# that completes a password-only session, not the owner enrolling elsewhere meanwhile.
ADDED_FACTOR = "_rr_added_factor"
# The recorded hotline prompts, which the telephone provider fetches, and the
# volunteers' signed hearing sign-up page (it checks its own token).
OPEN_URL_NAMES = frozenset({"calls:prompt-audio", "cases:volunteer"})


def is_complete(request: HttpRequest) -> bool:
    return bool(MFA_AT in request.session)


def complete(request: HttpRequest) -> None:
    """The session proved a second factor: staff pages open, and it counts as a recent
    re-authentication (password and MFA) for ``accounts.reauth``."""
    from accounts import reauth

    now = int(timezone.now().timestamp())
    request.session[MFA_AT] = now
    reauth.stamp(request, now)


def is_enrolled(user: User) -> bool:
    """Whether the person has a factor to log in with (recovery codes alone are not)."""
    return bool(
        Authenticator.objects.filter(user_id=user.pk)
        .exclude(type=Authenticator.Type.RECOVERY_CODES)
        .exists()
    )


def step_url(user: User, next_url: str = "") -> str:
    """Where a password-only session goes: the MFA step, or enrolment the first time."""
    url = reverse("accounts:mfa") if is_enrolled(user) else reverse("mfa_activate_totp")
    if next_url and is_enrolled(user):
        url += "?" + urlencode({REDIRECT_FIELD_NAME: next_url})
    return url


def safe_next(request: HttpRequest, value: str) -> str:
    if value and url_has_allowed_host_and_scheme(
        value, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return value
    return ""


# TOTP single use -------------------------------------------------------------------


def matching_totp_step(authenticator: Authenticator, code: str) -> int | None:
    """The time step (counter) within allauth's tolerance whose code ``code`` is."""
    return matching_step(decrypt(authenticator.data["secret"]), code)


def totp_time() -> float:
    """The clock of TOTP codes (tests replace it, and allauth's, to fix a time step)."""
    return time.time()


def matching_step(secret: str, code: str) -> int | None:
    now = int(totp_time()) // mfa_settings.TOTP_PERIOD
    tolerance = mfa_settings.TOTP_TOLERANCE
    typed = "".join(code.split())
    for counter in range(now - tolerance, now + tolerance + 1):
        if format_hotp_value(hotp_value(secret, counter)) == typed:
            return counter
    return None


def accept_totp_step(user: User, step: int) -> bool:
    """Record ``step`` as used by ``user``; False if it, or a later one, already was.

    One conditional UPDATE, so two requests with the same code cannot both pass."""
    with transaction.atomic():
        if TOTPStep.objects.filter(user=user, step__lt=step).update(step=step):
            return True
        if TOTPStep.objects.filter(user=user).exists():
            return False
        try:
            with transaction.atomic():
                TOTPStep.objects.create(user=user, step=step)
        except IntegrityError:
            return False
        return True


# Enforcement -----------------------------------------------------------------------


def _url_name(request: HttpRequest) -> str:
    try:
        match = resolve(request.path_info)
    except Resolver404:
        return ""
    return str(match.view_name)


class MFARequiredMiddleware:
    """Sends a signed-in session that has not completed MFA to the MFA step or to
    enrolment, on every path but ``STEP_URL_NAMES``, the enrolment pages (while the
    person has no authenticator) and the open prefixes. An HTMX request gets
    ``HX-Redirect`` so the whole page moves, not a fragment.

    Also turns allauth's ``ReauthenticationRequired`` (raised by its management views)
    into our re-authentication page, before allauth's middleware would send it to
    allauth's own, which is not mounted."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        pending = SESSION_KEY in request.session and not is_complete(request)
        if pending:
            refusal = self._refusal(request)
            if refusal is not None:
                return refusal
        response = self.get_response(request)
        if pending and getattr(request, ADDED_FACTOR, False):
            user: Any = request.user
            if user.is_authenticated and is_enrolled(user):
                # Enrolling proved the new factor: the first login's session is
                # complete, under a new key, and that is a login like the MFA step's.
                request.session.cycle_key()
                complete(request)
                audit.account_event(actor=user, action=AuditAction.LOGIN, user=user)
        return response

    def _refusal(self, request: HttpRequest) -> HttpResponse | None:
        path = request.path_info
        if path.startswith(OPEN_PREFIXES) or path in OPEN_PATHS:
            return None
        name = _url_name(request)
        if name in STEP_URL_NAMES or name in OPEN_URL_NAMES:
            return None
        user: Any = request.user
        enrolled = is_enrolled(user)
        # Re-authentication too: allauth's enrolment pages ask for a recent password,
        # which someone with no factor yet confirms there (the password alone).
        if name in ENROL_URL_NAMES | {"accounts:reauth"} and not enrolled:
            return None
        next_url = request.get_full_path() if request.method == "GET" else ""
        target = step_url(user, next_url)
        if request.headers.get("HX-Request") == "true":
            response = HttpResponse(status=204)
            response["HX-Redirect"] = target
            return response
        return HttpResponseRedirect(target)

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        if not isinstance(exception, ReauthenticationRequired):
            return None
        if not request.user.is_authenticated:
            login = reverse("accounts:login")
            return HttpResponseRedirect(f"{login}?{urlencode({'next': request.path})}")
        next_url = request.get_full_path()
        return HttpResponseRedirect(
            f"{reverse('accounts:reauth')}?{urlencode({REDIRECT_FIELD_NAME: next_url})}"
        )


# Audit of allauth's events ---------------------------------------------------------
# allauth sends "added", "removed" and "reset" after its transaction commits.


def _on_added(sender: Any, request: HttpRequest, user: User, authenticator: Any, **kw: Any) -> None:
    if authenticator.type == Authenticator.Type.RECOVERY_CODES:
        audit.account_event(actor=user, action=AuditAction.RECOVERY_CODES_GENERATED, user=user)
        return
    audit.account_event(
        actor=user, action=AuditAction.MFA_ENROLLED, user=user, kind=str(authenticator.type)
    )


def _on_removed(
    sender: Any, request: HttpRequest, user: User, authenticator: Any, **kw: Any
) -> None:
    audit.account_event(
        actor=user, action=AuditAction.MFA_REMOVED, user=user, kind=str(authenticator.type)
    )


def _on_reset(sender: Any, request: HttpRequest, user: User, authenticator: Any, **kw: Any) -> None:
    if authenticator.type == Authenticator.Type.RECOVERY_CODES:
        audit.account_event(actor=user, action=AuditAction.RECOVERY_CODES_GENERATED, user=user)


def _on_used(sender: Any, request: HttpRequest, user: User, authenticator: Any, **kw: Any) -> None:
    if authenticator.type == Authenticator.Type.RECOVERY_CODES:
        # allauth marked the code used on a fresh copy of the row.
        current = Authenticator.objects.get(pk=authenticator.pk)
        unused = len(current.wrap().get_unused_codes())
        audit.account_event(
            actor=user, action=AuditAction.RECOVERY_CODE_USED, user=user, remaining=unused
        )


def _on_saved(sender: Any, instance: Authenticator, created: bool, **kw: Any) -> None:
    """Marks the request that created a factor of its own user (allauth's
    ``authenticator_added`` waits for the commit, and a test's transaction never
    commits). ``allauth.core.context.request`` is the current request, if any."""
    request = allauth_context.request
    if created and request is not None and instance.type != Authenticator.Type.RECOVERY_CODES:
        user = getattr(request, "user", None)
        if user is not None and user.is_authenticated and user.pk == instance.user_id:
            setattr(request, ADDED_FACTOR, True)


def connect_signals() -> None:
    post_save.connect(_on_saved, sender=Authenticator, dispatch_uid="accounts.mfa.saved")
    mfa_signals.authenticator_added.connect(_on_added, dispatch_uid="accounts.mfa.added")
    mfa_signals.authenticator_removed.connect(_on_removed, dispatch_uid="accounts.mfa.removed")
    mfa_signals.authenticator_reset.connect(_on_reset, dispatch_uid="accounts.mfa.reset")
    mfa_signals.authenticator_used.connect(_on_used, dispatch_uid="accounts.mfa.used")
