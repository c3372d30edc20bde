"""The test phone: the whole SMS loop without a phone or a Twilio account."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client

from accounts.models import Role
from conftest import committed, make_user
from intake.models import Report
from messaging.models import InboundMessage


@pytest.mark.django_db
def test_staff_text_the_hotline_and_read_the_reply(client: Client) -> None:
    client.force_login(make_user(Role.VERIFIER))
    page = client.get("/test-phone/")
    assert page.status_code == 200
    with committed():
        response = client.post(
            "/test-phone/", {"number": "(510) 555-0166", "body": "ICE at the taqueria on 35th"}
        )
    assert response.status_code == 302
    conversation = client.get("/test-phone/conversation/")
    assert b"ICE at the taqueria on 35th" in conversation.content
    assert b"received your report" in conversation.content
    assert Report.objects.get().reporter_contact == "+15105550166"
    assert InboundMessage.objects.get().provider == "console"


@pytest.mark.django_db
def test_keywords_work_on_the_test_phone(client: Client) -> None:
    client.force_login(make_user(Role.DISPATCHER))
    client.post("/test-phone/", {"number": "+15105550166", "body": "AYUDA"})
    conversation = client.get("/test-phone/conversation/").content.decode()
    assert "PARAR" in conversation
    assert not Report.objects.exists()


@pytest.mark.django_db
def test_an_invalid_number_is_refused(client: Client) -> None:
    client.force_login(make_user(Role.DISPATCHER))
    response = client.post("/test-phone/", {"number": "12", "body": "hello"})
    assert response.status_code == 422
    assert not InboundMessage.objects.exists()


@pytest.mark.django_db
def test_a_new_number_starts_a_new_conversation(client: Client) -> None:
    client.force_login(make_user(Role.DISPATCHER))
    client.post("/test-phone/", {"number": "+15105550166", "body": "first"})
    client.post("/test-phone/new-number/")
    assert b"first" not in client.get("/test-phone/conversation/").content


@pytest.mark.django_db
def test_messages_from_twilio_never_show_on_the_test_phone(client: Client) -> None:
    from conftest import post_twilio, sms_params

    post_twilio(
        client, "/hooks/twilio/sms", sms_params("SM1", "private report", sender="+15105550166")
    )
    client.force_login(make_user(Role.DISPATCHER))
    client.post("/test-phone/", {"number": "+15105550166", "body": "hello"})
    conversation = client.get("/test-phone/conversation/").content
    assert b"hello" in conversation
    assert b"private report" not in conversation


@pytest.mark.django_db
def test_anonymous_visitors_cannot_use_it(client: Client) -> None:
    assert client.get("/test-phone/").status_code == 302
    assert client.post("/test-phone/", {"number": "+15105550166", "body": "x"}).status_code == 302
    assert not InboundMessage.objects.exists()


@pytest.mark.django_db
def test_the_test_phone_is_absent_with_the_twilio_provider(client: Client, settings: Any) -> None:
    settings.RR_SMS_PROVIDER = "twilio"
    client.force_login(make_user(Role.COORDINATOR))
    assert client.get("/test-phone/").status_code == 404
    assert client.post("/test-phone/", {"number": "+15105550166", "body": "x"}).status_code == 404
    assert not InboundMessage.objects.exists()
