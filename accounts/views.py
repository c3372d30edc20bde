from __future__ import annotations

from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render


class LoginView(auth_views.LoginView):
    template_name = "accounts/login.html"
    redirect_authenticated_user = True


class LogoutView(auth_views.LogoutView):
    """Logout only by POST (Django's LogoutView refuses GET since 5.0)."""


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
