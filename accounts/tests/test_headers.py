"""Response headers on staff and public pages (R22), and Django's deployment check
with production settings."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings
from django.test import Client

from accounts.models import Role
from conftest import make_user

ROOT = Path(__file__).resolve().parents[2]

PUBLIC_PAGES = ["/report/", "/join/", "/accounts/login/", "/report/thanks/"]
STAFF_PAGES = ["/console/", "/alerts/", "/dispatch/responders/", "/calls/roster/", "/test-phone/"]


def csp_sources(header: str) -> dict[str, list[str]]:
    directives: dict[str, list[str]] = {}
    for part in header.split(";"):
        words = part.split()
        if words:
            directives[words[0]] = words[1:]
    return directives


def check_common_headers(response: Any) -> None:
    assert response.status_code == 200
    assert response["X-Frame-Options"] == "DENY"
    assert response["Referrer-Policy"] == "same-origin"
    assert response["X-Content-Type-Options"] == "nosniff"
    header = response["Content-Security-Policy"]
    assert "unsafe-inline" not in header
    assert "unsafe-eval" not in header
    directives = csp_sources(header)
    assert directives["default-src"] == ["'self'"]
    assert directives["frame-ancestors"] == ["'none'"]
    assert directives["object-src"] == ["'none'"]
    scripts = directives["script-src"]
    assert scripts[0] == "'self'"
    assert all(source.startswith("'nonce-") for source in scripts[1:])
    # No third-party origin anywhere (no tile server is configured in tests).
    for sources in directives.values():
        for source in sources:
            assert source in {"'self'", "'none'", "data:", "blob:"} or source.startswith(
                "'nonce-"
            ), source


@pytest.mark.django_db
@pytest.mark.parametrize("path", PUBLIC_PAGES)
def test_public_pages_carry_the_security_headers(path: str, service_area: Any) -> None:
    response = Client().get(path, secure=True)
    check_common_headers(response)


@pytest.mark.django_db
@pytest.mark.parametrize("path", STAFF_PAGES)
def test_staff_pages_carry_the_security_headers_and_no_store(path: str, service_area: Any) -> None:
    client = Client()
    client.force_login(make_user(Role.COORDINATOR))
    response = client.get(path, secure=True)
    check_common_headers(response)
    assert response["Cache-Control"] == "no-store"


def test_an_inline_script_gets_a_nonce_that_the_policy_names() -> None:
    """No page has an inline script today; one that needs it uses ``request.csp_nonce``
    (``{{ request.csp_nonce }}`` in a template) and the policy then names that nonce."""
    from csp.middleware import CSPMiddleware
    from django.http import HttpRequest, HttpResponse
    from django.test import RequestFactory

    def view(request: HttpRequest) -> HttpResponse:
        return HttpResponse(f'<script nonce="{request.csp_nonce}">go()</script>')  # type: ignore[attr-defined]

    response: Any = CSPMiddleware(view)(RequestFactory().get("/console/"))
    scripts = csp_sources(response["Content-Security-Policy"])["script-src"]
    assert scripts[0] == "'self'" and len(scripts) == 2
    nonce = scripts[1].removeprefix("'nonce-").removesuffix("'")
    assert len(nonce) >= 16
    assert f'<script nonce="{nonce}">' in response.content.decode()


@pytest.mark.django_db
def test_https_responses_carry_hsts_when_debug_is_off() -> None:
    assert not settings.DEBUG
    response = Client().get("/report/", secure=True)
    assert response["Strict-Transport-Security"] == ("max-age=31536000; includeSubDomains; preload")


def production_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    from core.crypto import generate_key

    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("RR_", "DJANGO_", "TWILIO_")) and key not in {"DEBUG"}
    }
    env.update(
        DJANGO_SETTINGS_MODULE="rapidresponse.settings",
        DEBUG="0",
        SECRET_KEY=os.urandom(48).hex(),
        RR_FIELD_KEYS=f"prod1:{generate_key()}",
        RR_HASH_KEY=generate_key(),
        RR_ALTCHA_HMAC_KEY=generate_key(),
        ALLOWED_HOSTS="hotline.example.org",
        RR_PUBLIC_URL="https://hotline.example.org",
        RR_VAR_DIR=str(tmp_path),
        RR_SMS_PROVIDER="twilio",
        TWILIO_ACCOUNT_SID="AC" + "0" * 32,
        TWILIO_AUTH_TOKEN="f" * 32,
    )
    env.update(extra)
    return env


def test_the_deployment_check_passes_with_production_settings(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=ROOT,
        env=production_env(tmp_path),
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_deployment_check_fails_on_a_development_setting(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=ROOT,
        env=production_env(tmp_path, RR_SSL_REDIRECT="0"),
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert result.returncode != 0
    assert "security.W008" in result.stderr + result.stdout
