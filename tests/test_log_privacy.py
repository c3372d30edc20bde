"""Everything the configured log handlers write during intake, read back: no phone
number, message body or client address may appear in it."""

from __future__ import annotations

import io
import logging
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from django.test import Client

from conftest import FRUITVALE, committed, post_twilio, sign, sms_params
from intake.tests.pow import solved_payload

SENDER = "+15105550123"
CALLBACK = "(510) 555-0177"
CLIENT_IP = "203.0.113.9"
SMS_BODY = "La migra detuvo a mi vecino Juan Perez en la calle 35"
WEB_BODY = "Agents took Maria Lopez from the laundromat"
SECRETS = [
    SENDER,
    "5105550123",
    "555-0123",
    "5550177",
    "555-0177",
    CLIENT_IP,
    "Juan Perez",
    "Maria Lopez",
    "detuvo a mi vecino",
    "took Maria",
]


@pytest.fixture
def captured_logs() -> Iterator[io.StringIO]:
    """Point the configured handlers at a buffer and let every level through."""
    buffer = io.StringIO()
    root = logging.getLogger()
    handlers = [h for h in root.handlers if isinstance(h, logging.StreamHandler)]
    assert handlers, "the console handler from settings.LOGGING is expected"
    previous_streams = [h.setStream(buffer) for h in handlers]
    previous_level = root.level
    root.setLevel(logging.DEBUG)
    try:
        yield buffer
    finally:
        root.setLevel(previous_level)
        for handler, stream in zip(handlers, previous_streams, strict=True):
            handler.setStream(stream)


@pytest.mark.django_db
def test_an_intake_run_logs_no_personal_data(
    client: Client, captured_logs: io.StringIO, service_area: Any
) -> None:
    ip: dict[str, Any] = {"REMOTE_ADDR": CLIENT_IP}
    # SMS: a report, a duplicate, a keyword, a forged request, a malformed one.
    post_twilio(client, "/hooks/twilio/sms", sms_params("SM1", SMS_BODY, sender=SENDER), **ip)
    post_twilio(client, "/hooks/twilio/sms", sms_params("SM1", SMS_BODY, sender=SENDER), **ip)
    post_twilio(client, "/hooks/twilio/sms", sms_params("SM2", "STOP", sender=SENDER), **ip)
    forged = sms_params("SM3", SMS_BODY, sender=SENDER)
    client.post(
        "/hooks/twilio/sms",
        forged,
        HTTP_X_TWILIO_SIGNATURE=sign("https://elsewhere.example/x", forged),
        **ip,
    )
    post_twilio(client, "/hooks/twilio/sms", {"Body": SMS_BODY, "From": SENDER}, **ip)
    # Web: a good report with a callback number, a bad one, a rate-limited burst.
    form = {
        "text": WEB_BODY,
        "location_text": "35th & International",
        "lat": str(FRUITVALE[0]),
        "lng": str(FRUITVALE[1]),
        "callback": CALLBACK,
        "submission": str(uuid.uuid4()),
        "altcha": solved_payload(),
    }
    with committed():
        client.post("/report/", form, **ip)
        client.post(
            "/report/", {**form, "callback": "not a number", "altcha": solved_payload()}, **ip
        )
    output = captured_logs.getvalue()
    assert "POST /hooks/twilio/sms 200" in output  # the capture works
    assert "POST /report/ 302" in output
    for secret in SECRETS:
        assert secret not in output, secret


@pytest.mark.django_db
def test_a_hotline_call_logs_no_personal_data(client: Client, captured_logs: io.StringIO) -> None:
    from calls.tests.factories import dispatcher_on_shift
    from calls.tests.voice import Caller, DispatcherPhone

    dispatcher_on_shift("ana", "+15105550201")
    caller = Caller(client, number=SENDER)
    queued = caller.press(caller.dial(), "2")
    caller.dial()  # the provider asking again for the same call
    from calls.models import Call

    caller.post(
        f"/hooks/twilio/voice/language?call={Call.objects.get().uuid}", SpeechResult="Juan Perez"
    )
    phone = DispatcherPhone(client, Call.objects.get().legs.get())
    phone.pick_up()
    phone.press("1")
    caller.leave_queue(queued, "bridged")
    caller.hang_up()
    forged = {"CallSid": "CA9", "From": SENDER}
    client.post("/hooks/twilio/voice", forged, HTTP_X_TWILIO_SIGNATURE="bad")
    output = captured_logs.getvalue()
    assert "POST /hooks/twilio/voice 200" in output  # the capture works
    for secret in [*SECRETS, "+15105550201", "5550201", "555-0201"]:
        assert secret not in output, secret
