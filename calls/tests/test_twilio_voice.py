"""The real twilio client rings dispatchers, stops their phones and fetches voicemails,
against the local stand-in of the Twilio API."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client

from accounts.models import Role
from calls.models import Call, LegState
from calls.tests.factories import dispatcher_on_shift
from calls.tests.voice import Caller, DispatcherPhone, path_of, query_of
from conftest import make_user
from core.models import AuditAction, AuditEvent


@pytest.fixture
def twilio_voice(twilio_api: Any, settings: Any) -> Any:
    settings.RR_HOTLINE_NUMBER = "+15105550000"
    return twilio_api


@pytest.mark.django_db
def test_every_dispatcher_on_shift_rings_and_the_others_stop_when_one_takes_it(
    client: Client, twilio_voice: Any
) -> None:
    ana = dispatcher_on_shift("ana", "+15105550201")
    dispatcher_on_shift("ben", "+15105550202")
    caller = Caller(client)
    caller.press(caller.dial(), "1")
    placed = twilio_voice.calls
    assert sorted(p.to for p in placed) == ["+15105550201", "+15105550202"]
    call = Call.objects.get()
    legs = list(call.legs.order_by("pk"))
    for leg, request in zip(legs, sorted(placed, key=lambda p: p.to), strict=True):
        assert leg.provider_sid == request.sid
        assert leg.state == LegState.RINGING
        assert request.sender == "+15105550000"
        assert request.timeout == 25
        assert path_of(request.url).startswith("/hooks/twilio/voice/leg-answer?")
        assert query_of(request.url) == {"call": str(call.uuid), "leg": str(leg.uuid)}
        assert path_of(request.status_callback).startswith("/hooks/twilio/voice/leg-status?")

    first = DispatcherPhone(client, legs[0])
    assert legs[0].line == ana
    first.pick_up()
    first.press("1")
    by_sid = {p.sid: p for p in twilio_voice.calls}
    assert by_sid[legs[1].provider_sid].updates == ["canceled"]  # still ringing: cancelled
    assert by_sid[legs[0].provider_sid].updates == []


@pytest.mark.django_db
def test_a_refused_ring_marks_the_phone_missed_and_the_caller_leaves_a_message(
    client: Client, twilio_voice: Any
) -> None:
    dispatcher_on_shift("ana", "+15105550201")
    twilio_voice.fail_next(status=400, code=21211)
    caller = Caller(client)
    queued = caller.press(caller.dial(), "1")
    (leg,) = Call.objects.get().legs.all()
    assert leg.state == LegState.MISSED
    assert caller.hold(queued).verbs() == ["Say", "Leave"]


@pytest.mark.django_db
def test_a_dispatcher_plays_the_voicemail_through_the_app_and_it_is_audited(
    client: Client, twilio_voice: Any
) -> None:
    caller = Caller(client)
    message = caller.press(caller.dial(), "1")
    caller.record(message, sid="RE42")
    twilio_voice.add_recording("RE42", b"ID3-audio-bytes")
    call = Call.objects.get()
    staff = Client()
    staff.force_login(make_user(Role.DISPATCHER))
    response = staff.get(f"/calls/{call.uuid}/recording/")
    assert response.status_code == 200
    assert response.content == b"ID3-audio-bytes"
    assert response["Content-Type"] == "audio/mpeg"
    assert "no-store" in response["Cache-Control"]
    assert AuditEvent.objects.filter(
        action=AuditAction.VOICEMAIL_PLAYED, target_id=str(call.uuid)
    ).exists()


@pytest.mark.django_db
def test_a_recording_the_provider_cannot_serve_is_a_clear_503(
    client: Client, twilio_voice: Any
) -> None:
    caller = Caller(client)
    caller.record(caller.press(caller.dial(), "1"), sid="RE404")
    call = Call.objects.get()
    staff = Client()
    staff.force_login(make_user(Role.DISPATCHER))
    response = staff.get(f"/calls/{call.uuid}/recording/")
    assert response.status_code == 503
    assert not AuditEvent.objects.filter(action=AuditAction.VOICEMAIL_PLAYED).exists()


@pytest.mark.django_db
def test_each_calls_own_queue_is_deleted_when_the_call_ends(
    client: Client, twilio_voice: Any
) -> None:
    dispatcher_on_shift("ana", "+15105550201")
    caller = Caller(client)
    queued = caller.press(caller.dial(), "1")
    caller.post(queued.find("Enqueue").get("waitUrl", ""), QueueSid="QU123")
    caller.leave_queue(queued, "hangup")
    assert ("queue", "QU123") in twilio_voice.deleted
