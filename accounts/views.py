from __future__ import annotations

from typing import Any

from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_required
from django.contrib.auth.forms import AuthenticationForm
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _

from accounts import throttle


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
        return super().form_invalid(form)

    def form_valid(self, form: AuthenticationForm) -> HttpResponse:
        throttle.record_success(self.request, self._username())
        return super().form_valid(form)


class LogoutView(auth_views.LogoutView):
    """Logout only by POST with a CSRF token (Django's LogoutView refuses GET since
    5.0, with 405)."""


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
