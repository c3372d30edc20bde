"""The open paths of ``MFARequiredMiddleware`` are whole path segments: a staff page
whose path merely begins like an open one (``/reports/`` and ``/report/``) stays closed
to a password-only session."""

from __future__ import annotations

import pytest
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.test import Client
from django.urls import path

from accounts.models import Role
from accounts.testing import enrol_totp
from conftest import make_user
from rapidresponse.urls import urlpatterns as project_urlpatterns


@login_required
def staff_page(request: HttpRequest) -> HttpResponse:
    return HttpResponse("staff only")


urlpatterns = [
    *project_urlpatterns,
    path("reports/", staff_page, name="reports"),
    path("healthzz", staff_page, name="healthzz"),
    path("hooksy/", staff_page, name="hooksy"),
]


@pytest.mark.django_db
def test_a_staff_page_named_like_an_open_path_needs_mfa(settings: object) -> None:
    settings.ROOT_URLCONF = __name__  # type: ignore[attr-defined]
    enrol_totp(make_user(Role.DISPATCHER, "dana"))
    client = Client()
    client.post("/accounts/login/", {"username": "dana", "password": "a-long-test-password"})
    for page in ("/reports/", "/healthzz", "/hooksy/"):
        response = client.get(page)
        assert response.status_code == 302, page
        assert response["Location"].startswith("/accounts/login/mfa/"), page
    assert client.get("/healthz").status_code == 200
    # Dot segments after an open prefix resolve to no staff view (Django does not
    # collapse them), so they find nothing rather than a staff page.
    for page in ("/hooks/../console/", "/static/../console/", "/report/../reports/"):
        response = client.get(page)
        assert response.status_code in (302, 404), page
        assert b"staff only" not in response.content, page
        assert "Location" not in response or response["Location"].startswith(
            "/accounts/login/mfa/"
        ), page
