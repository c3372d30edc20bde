from __future__ import annotations

from collections.abc import Callable
from typing import Any, cast

from allauth.mfa.models import Authenticator
from allauth.mfa.webauthn.forms import AuthenticateWebAuthnForm
from allauth.mfa.webauthn.internal.auth import begin_authentication
from django.conf import settings
from django.contrib import messages
from django.contrib.auth import REDIRECT_FIELD_NAME, authenticate, update_session_auth_hash
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_required, permission_required
from django.contrib.auth.forms import AuthenticationForm
from django.contrib.auth.views import redirect_to_login
from django.db import transaction
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404, redirect, render, resolve_url
from django.utils.translation import gettext as _
from django.views.decorators.cache import cache_control, never_cache
from django.views.decorators.debug import sensitive_post_parameters
from django.views.decorators.http import require_GET, require_http_methods

from accounts import audit, mfa, reauth, sessions, staff, throttle
from accounts.forms import CodeForm, NewPasswordForm, PasswordForm, ResetFactorsForm
from accounts.models import User
from core.models import AuditAction


class LoginView(auth_views.LoginView):
    """The login form. An unknown username and a wrong password get the same answer
    (Django's one "invalid login" message, status 200); a client that failed too often
    gets 429 without its password being checked (``accounts.throttle``)."""

    template_name = "accounts/login.html"
    redirect_authenticated_user = True

    def _username(self) -> str:
        return str(self.request.POST.get("username", ""))

    def post(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        if throttle.is_refused(request, self._username()):
            form = self.get_form_class()(request, initial={"username": self._username()})
            context = self.get_context_data(
                form=form,
                refusal=_("Too many failed attempts. Wait a few minutes before trying again."),
            )
            return self.render_to_response(context, status=429)
        return super().post(request, *args, **kwargs)

    def form_invalid(self, form: AuthenticationForm) -> HttpResponse:
        if self._username() and self.request.POST.get("password"):
            throttle.record_failure(self.request, self._username())
            audit.failed_login(self._username())
        return super().form_invalid(form)

    def form_valid(self, form: AuthenticationForm) -> HttpResponse:
        """The password is right: Django's ``login()`` (a new session key, the session
        stamps), then the MFA step, or enrolment the first time (``accounts.mfa``)."""
        throttle.record_success(self.request, self._username())
        super().form_valid(form)
        reauth.stamp_password(self.request)
        user: Any = form.get_user()
        return HttpResponseRedirect(mfa.step_url(user, self.get_redirect_url()))


class LogoutView(auth_views.LogoutView):
    """Logout only by POST with a CSRF token (Django's LogoutView refuses GET since
    5.0, with 405)."""

    def post(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        user = request.user
        response = super().post(request, *args, **kwargs)
        if user.is_authenticated:
            audit.account_event(actor=user, action=AuditAction.LOGOUT, user=user)
        return response


def _throttle_name(kind: str, user: User) -> str:
    # Throttled like the password: per client and account, and per client; never per
    # account alone, so the owner still gets in from elsewhere (R10).
    return f"{kind}\x00{user.get_username()}"


def _too_many(request: HttpRequest, template: str, context: dict[str, Any]) -> HttpResponse:
    context["refusal"] = _("Too many failed attempts. Wait a few minutes before trying again.")
    return render(request, template, context, status=429)


def _refused(
    request: HttpRequest,
    template: str,
    context: Callable[[], dict[str, Any]],
    *,
    name: str,
    code_posted: bool,
) -> HttpResponse | None:
    """The 429 page when this client has failed too often, or, for a code, when the
    account has had too many wrong codes from anywhere; None to go on. ``context``
    builds the page's unchecked forms, only when it is shown."""
    if throttle.is_refused(request, name):
        return _too_many(request, template, context())
    if code_posted and throttle.codes_refused(request.user):
        page = context()
        page["refusal"] = _(
            "Too many wrong codes for this account. Wait a few minutes, or use a passkey. "
            "If you did not try these codes, someone has your password: change it and "
            "tell a coordinator."
        )
        return render(request, template, page, status=429)
    return None


class _SecondFactor:
    """The code and passkey forms of one page (the MFA step or re-authentication)."""

    def __init__(self, request: HttpRequest, user: User, *, bound: bool = True) -> None:
        self.request = request
        self.user = user
        self.has_passkey = Authenticator.objects.filter(
            user=user, type=Authenticator.Type.WEBAUTHN
        ).exists()
        # Rendering a bound form validates it, which would spend a code: a page that
        # did not check the code shows unbound forms.
        data = request.POST if request.method == "POST" and bound else None
        # A passkey's assertion comes alone (the MFA step's own form) or, on the
        # re-authentication page, in the password's form with the code left empty.
        passkey_posted = data is not None and bool(data.get("credential")) and not data.get("code")
        self.code_form = CodeForm(user=user, data=None if passkey_posted else data)
        self.passkey_form = AuthenticateWebAuthnForm(
            user=user, data=data if passkey_posted else None
        )
        self.posted = self.passkey_form if passkey_posted else self.code_form
        # A code, which can be guessed, is also counted per account (accounts.throttle).
        self.code_posted = data is not None and not passkey_posted

    def context(self) -> dict[str, Any]:
        context: dict[str, Any] = {"form": self.code_form, "has_passkey": self.has_passkey}
        if self.has_passkey:
            context["passkey_form"] = self.passkey_form
            context["js_data"] = {"request_options": begin_authentication(self.user)}
        return context


@sensitive_post_parameters("code")
@never_cache
def mfa_step(request: HttpRequest) -> HttpResponse:
    """The second step of a login: a code from the authenticator app, a recovery code
    or a passkey. Reached only by a password-only session of an enrolled person."""
    if not request.user.is_authenticated:
        return redirect_to_login(request.get_full_path())
    user: Any = request.user
    next_url = mfa.safe_next(request, str(request.GET.get(REDIRECT_FIELD_NAME, "")))
    if mfa.is_complete(request):
        return HttpResponseRedirect(next_url or resolve_url(settings.LOGIN_REDIRECT_URL))
    if not mfa.is_enrolled(user):
        return HttpResponseRedirect(mfa.step_url(user))
    template = "accounts/mfa_step.html"
    factor = _SecondFactor(request, user)
    if request.method == "POST":
        name = _throttle_name("mfa", user)
        refused = _refused(
            request,
            template,
            lambda: _SecondFactor(request, user, bound=False).context(),
            name=name,
            code_posted=factor.code_posted,
        )
        if refused is not None:
            return refused
        if factor.posted.is_valid():
            factor.posted.save()
            throttle.record_success(request, name)
            if factor.code_posted:
                throttle.record_code_success(user)
            # A new key for the now fully signed-in session.
            request.session.cycle_key()
            mfa.complete(request)
            audit.account_event(actor=user, action=AuditAction.LOGIN, user=user)
            return HttpResponseRedirect(next_url or resolve_url(settings.LOGIN_REDIRECT_URL))
        throttle.record_failure(request, name)
        if factor.code_posted:
            throttle.record_code_failure(user)
        audit.account_event(actor=user, action=AuditAction.MFA_FAILED, user=user)
    return render(request, template, factor.context())


@sensitive_post_parameters("password", "code")
@never_cache
@login_required
def reauthenticate(request: HttpRequest) -> HttpResponse:
    """Confirm the password and a second factor again (``accounts.reauth``). Someone
    enrolling their first factor has none yet: for them the password alone."""
    user: Any = request.user
    next_url = mfa.safe_next(
        request,
        str(request.POST.get(REDIRECT_FIELD_NAME) or request.GET.get(REDIRECT_FIELD_NAME, "")),
    )
    enrolled = mfa.is_enrolled(user)
    template = "accounts/reauth.html"
    data = request.POST if request.method == "POST" else None
    password_form = PasswordForm(data=data)
    factor = _SecondFactor(request, user) if enrolled else None

    def page(*, checked: bool) -> dict[str, Any]:
        """The page's context, built after any check: a passkey's options are a new
        challenge, which must not replace the one being answered. Factor forms that
        were not checked are shown unbound (rendering a bound one spends its code)."""
        shown = factor if checked else _SecondFactor(request, user, bound=False)
        return {
            "password_form": password_form,
            "next": next_url,
            "enrolled": enrolled,
            **(shown.context() if enrolled and shown else {}),
        }

    if request.method == "POST":
        name = _throttle_name("reauth", user)
        refused = _refused(
            request,
            template,
            lambda: page(checked=False),
            name=name,
            code_posted=bool(factor and factor.code_posted),
        )
        if refused is not None:
            return refused
        password_ok = password_form.is_valid() and (
            authenticate(
                request,
                username=user.get_username(),
                password=password_form.cleaned_data["password"],
            )
            is not None
        )
        # The code only after the password: a wrong password spends no code.
        factor_ok = password_ok and (factor.posted.is_valid() if factor else True)
        if password_ok and factor_ok:
            if factor:
                factor.posted.save()
                if factor.code_posted:
                    throttle.record_code_success(user)
            throttle.record_success(request, name)
            if enrolled:
                reauth.stamp(request)
            reauth.stamp_password(request)
            audit.account_event(actor=user, action=AuditAction.REAUTHENTICATED, user=user)
            return HttpResponseRedirect(next_url or resolve_url(settings.LOGIN_REDIRECT_URL))
        throttle.record_failure(request, name)
        if password_ok and factor and factor.code_posted:
            throttle.record_code_failure(user)  # the password was right: the code was not
        context = page(checked=password_ok)
        context["error"] = _("The password or the code is not right. Try again.")
        return render(request, template, context)
    return render(request, template, page(checked=True))


@sensitive_post_parameters("new_password1", "new_password2")
@never_cache
@login_required
@require_http_methods(["GET", "POST"])
@reauth.require_recent_reauth(seconds=300)
def change_password(request: HttpRequest) -> HttpResponse:
    """One's own new password. The password and second factor were just confirmed
    (re-authentication), so only the new one is asked for, twice, against the password
    validators. Every other session of the account ends: whoever else had the old
    password, and was signed in with it, is out."""
    user = cast(User, request.user)
    form = NewPasswordForm(user, request.POST if request.method == "POST" else None)
    if request.method == "POST" and form.is_valid():
        with transaction.atomic():
            form.save()
            ended = sessions.end_sessions(user)
            audit.account_event(
                actor=user, action=AuditAction.PASSWORD_CHANGED, user=user, sessions_ended=ended
            )
        # This session was among those ended: it goes on under a new key.
        update_session_auth_hash(request, user)
        messages.success(
            request, _("Your password was changed, and you were signed out everywhere else.")
        )
        return redirect("home")
    return render(request, "accounts/password.html", {"form": form})


def home(request: HttpRequest) -> HttpResponse:
    """Where "/" and a fresh login lead: the console for those who dispatch, a start
    page for other staff, the report form for the public."""
    if not request.user.is_authenticated:
        return redirect("intake:report")
    if request.user.has_perm("incidents.view_console"):
        return redirect("incidents:console")
    return staff_home(request)


@login_required
def staff_home(request: HttpRequest) -> HttpResponse:
    return render(request, "accounts/home.html")


@login_required
@permission_required("accounts.manage_staff", raise_exception=True)
@require_GET
@cache_control(private=True, no_store=True)
def staff_list(request: HttpRequest) -> HttpResponse:
    """Coordinators: every staff account, its role and which second factors it has."""
    page, rows = staff.staff_page(cast(User, request.user), request.GET.get("page"))
    return render(request, "accounts/staff.html", {"page": page, "rows": rows})


@login_required
@permission_required("accounts.manage_staff", raise_exception=True)
@require_http_methods(["GET", "POST"])
@cache_control(private=True, no_store=True)
@reauth.require_recent_reauth(seconds=300)
def reset_factors(request: HttpRequest, user_uuid: str) -> HttpResponse:
    """Coordinators: remove the second factors of someone who lost their authenticator
    and their recovery codes (``accounts.staff``)."""
    actor = cast(User, request.user)
    person = get_object_or_404(User, uuid=user_uuid)
    form = ResetFactorsForm(request.POST if request.method == "POST" else None)
    refusal = staff.refusal(actor, person) or ""
    if request.method == "POST" and not refusal and form.is_valid():
        try:
            removed = staff.reset_second_factors(actor=actor, user=person)
        except staff.ResetRefused as exc:
            refusal = str(exc)
        else:
            messages.success(
                request,
                _(
                    "The two-step login of %(name)s was reset (second factors removed: "
                    "%(count)d) and they were signed out everywhere. Ask them to sign in "
                    "now, while you are still talking, and set up a new factor."
                )
                % {"name": person.display_name, "count": removed},
            )
            return redirect("accounts:staff")
    status = 422 if request.method == "POST" else 200
    context = {"person": person, "form": form, "refusal": refusal}
    return render(request, "accounts/reset_factors.html", context, status=status)
