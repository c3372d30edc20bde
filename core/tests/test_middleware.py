from __future__ import annotations

from typing import Any

import pytest
from django.test import Client


def test_health() -> None:
    response = Client().get("/healthz")
    assert response.status_code == 200 and response.content == b"ok\n"


@pytest.mark.django_db
def test_staff_pages_are_never_stored(dispatcher_client: Client) -> None:
    assert dispatcher_client.get("/console/")["Cache-Control"] == "no-store"


@pytest.mark.django_db
def test_the_public_form_is_private_and_the_thanks_page_cacheable(client: Client) -> None:
    assert "no-store" in client.get("/report/")["Cache-Control"]
    assert "public" in client.get("/report/thanks/")["Cache-Control"]


@pytest.mark.django_db
def test_security_headers_are_set(client: Client) -> None:
    response = client.get("/report/")
    csp = response["Content-Security-Policy"]
    assert "default-src 'self'" in csp and "frame-ancestors 'none'" in csp
    assert "http" not in csp  # no third-party origin
    assert response["X-Frame-Options"] == "DENY"
    assert response["Referrer-Policy"] == "same-origin"
    assert response["X-Content-Type-Options"] == "nosniff"


@pytest.mark.parametrize("length", ["abc", "-"])
def test_a_broken_content_length_is_400(length: str) -> None:
    response = Client().generic("POST", "/report/", b"", CONTENT_LENGTH=length)
    assert response.status_code == 400


def test_an_oversized_webhook_is_refused_by_size_alone() -> None:
    response = Client().generic(
        "POST", "/hooks/twilio/sms", b"", CONTENT_LENGTH=str(10 * 1024 * 1024)
    )
    assert response.status_code == 413


@pytest.mark.django_db
def test_staff_see_pages_in_their_own_language(client: Client, dispatcher: Any) -> None:
    dispatcher.language = "es"
    dispatcher.save()
    client.force_login(dispatcher)
    response = client.get("/console/")
    assert response["Content-Language"] == "es"
    assert b"Incidentes abiertos" in response.content
