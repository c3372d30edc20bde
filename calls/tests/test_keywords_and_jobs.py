"""ON / OFF by text for dispatchers, transcription, and the housekeeping jobs."""

from __future__ import annotations

from datetime import timedelta
from typing import Any
from unittest import mock

import pytest
from django.test import Client
from django.utils import timezone

from accounts.models import Role
from calls import flow, transcription
from calls.models import Call, CallOutcome, CallState
from calls.routing import lines_on_shift
from calls.tests.factories import line_for
from calls.tests.voice import Caller
from conftest import make_user, post_twilio, sms_params
from dispatch.models import Responder
from intake.models import Report


def text(client: Client, sid: str, body: str, sender: str) -> str:
    response = post_twilio(client, "/hooks/twilio/sms", sms_params(sid, body, sender=sender))
    assert response.status_code == 200
    return str(response.content.decode())


@pytest.mark.django_db
class TestShiftByText:
    def test_a_dispatcher_texts_on_and_off(self, client: Client) -> None:
        line = line_for(make_user(Role.DISPATCHER), "+15105550201")
        assert "you are on shift" in text(client, "SM1", "ON", "+15105550201")
        assert lines_on_shift().filter(pk=line.pk).exists()
        assert "you are off shift" in text(client, "SM2", "off", "+15105550201")
        assert not lines_on_shift().filter(pk=line.pk).exists()
        assert not Report.objects.exists()

    def test_a_spanish_speaking_dispatcher_is_answered_in_spanish(self, client: Client) -> None:
        line_for(make_user(Role.DISPATCHER), "+15105550201")
        assert "turno" in text(client, "SM1", "DISPONIBLE", "+15105550201")

    def test_a_responder_still_gets_their_own_on(self, client: Client) -> None:
        from core import phones

        Responder.objects.create(
            name="Rosa", phone="+15105550301", phone_hash=phones.phone_hash("+15105550301")
        )
        assert "available for offers" in text(client, "SM1", "ON", "+15105550301")
        assert Responder.objects.get().available

    def test_a_stranger_texting_on_is_a_report(self, client: Client) -> None:
        text(client, "SM1", "ON", "+15105550999")
        assert Report.objects.count() == 1

    def test_a_deactivated_dispatcher_cannot_go_on_shift(self, client: Client) -> None:
        user = make_user(Role.DISPATCHER)
        line_for(user, "+15105550201")
        user.is_active = False
        user.save()
        text(client, "SM1", "ON", "+15105550201")
        assert not lines_on_shift().exists()


def engine(audio: bytes, content_type: str, language: str) -> str:
    assert audio.startswith(b"RIFF")
    return f"({language}) ICE van at 12th and Fruitvale"


def failing_engine(audio: bytes, content_type: str, language: str) -> str:
    raise RuntimeError("engine down")


@pytest.mark.django_db
class TestTranscription:
    def voicemail(self, client: Client) -> Call:
        caller = Caller(client)
        caller.record(caller.press(caller.dial(), "2"))
        return Call.objects.get()

    def test_without_an_engine_the_voicemail_report_stands_alone(self, client: Client) -> None:
        call = self.voicemail(client)
        assert call.transcript == ""
        assert call.report is not None
        assert call.report.text == ""
        assert not transcription.transcribe_call(call_id=call.pk)

    def test_an_engine_fills_the_report_text_once(self, client: Client, settings: Any) -> None:
        settings.RR_TRANSCRIPTION_ENGINE = "calls.tests.test_keywords_and_jobs.engine"
        call = self.voicemail(client)  # the task runs at commit
        call.refresh_from_db()
        assert call.transcript == "(es) ICE van at 12th and Fruitvale"
        report = Report.objects.get()
        assert report.text == call.transcript
        assert not transcription.transcribe_call(call_id=call.pk)

    def test_it_waits_for_the_recording_to_be_ready(self, client: Client, settings: Any) -> None:
        settings.RR_TRANSCRIPTION_ENGINE = "calls.tests.test_keywords_and_jobs.engine"
        caller = Caller(client)
        message = caller.press(caller.dial(), "1")
        record = message.find("Record")
        caller.post(
            record.get("action", ""),
            RecordingSid="RE1",
            RecordingUrl="https://api.twilio.com/2010-04-01/Accounts/ACtest/Recordings/RE1",
            RecordingDuration="9",
        )
        call = Call.objects.get()
        assert call.recording_sid == "RE1"
        assert call.transcript == ""  # the action comes before the audio is processed
        caller.post(
            record.get("recordingStatusCallback", ""),
            RecordingSid="RE1",
            RecordingUrl="https://api.twilio.com/2010-04-01/Accounts/ACtest/Recordings/RE1",
            RecordingDuration="9",
            RecordingStatus="completed",
        )
        call.refresh_from_db()
        assert call.transcript.endswith("ICE van at 12th and Fruitvale")

    def test_a_failing_engine_leaves_the_report_as_it_was(
        self, client: Client, settings: Any
    ) -> None:
        settings.RR_TRANSCRIPTION_ENGINE = "calls.tests.test_keywords_and_jobs.failing_engine"
        call = self.voicemail(client)
        call.refresh_from_db()
        assert call.transcript == ""
        assert call.transcription_attempts == 1
        assert Report.objects.get().text == ""
        # Tried again later, a bounded number of times.
        assert transcription.retry_transcriptions() == 0
        assert transcription.retry_transcriptions() == 0
        assert transcription.retry_transcriptions() == 0
        call.refresh_from_db()
        assert call.transcription_attempts == transcription.MAX_ATTEMPTS


@pytest.mark.django_db
def test_a_call_whose_end_never_arrived_is_closed_after_hours(client: Client) -> None:
    caller = Caller(client)
    caller.record(caller.press(caller.dial(), "1"))
    Caller(client, sid="CA2").dial()
    assert flow.close_stale_calls() == 0
    later = timezone.now() + timedelta(hours=5)
    with mock.patch("django.utils.timezone.now", return_value=later):
        assert flow.close_stale_calls() == 2
    voicemail, abandoned = Call.objects.order_by("pk")
    assert voicemail.state == abandoned.state == CallState.ENDED
    assert voicemail.outcome == CallOutcome.VOICEMAIL
    assert abandoned.outcome == CallOutcome.ABANDONED
    assert voicemail.needs_callback and abandoned.needs_callback
