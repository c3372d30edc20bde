"""The console's phone section, a call's page, the roster and the prompts."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from accounts.models import Role
from calls.models import Call, Callback, DispatcherLine, VoicePrompt
from calls.tests.factories import dispatcher_on_shift, line_for
from calls.tests.voice import Caller, DispatcherPhone
from conftest import committed, make_user
from core.models import AuditAction, AuditEvent
from intake.models import Channel, Report


def logged_in(user: Any) -> Client:
    client = Client()
    client.force_login(user)
    return client


def missed_voicemail(client: Client, sid: str = "CA1", number: str = "+15105550123") -> Call:
    caller = Caller(client, sid=sid, number=number)
    answer = caller.press(caller.dial(), "1")
    if "Enqueue" in answer.verbs():
        # A dispatcher is on shift: the caller chooses to leave a message while on hold.
        caller.post(caller.hold(answer).find("Gather").get("action", ""), Digits="1")
        answer = caller.leave_queue(answer, "leave")
    caller.record(answer, sid="RE" + sid)
    caller.hang_up()
    return Call.objects.get(provider_sid=sid)


@pytest.mark.django_db
class TestConsoleSection:
    def test_ringing_and_missed_calls_show_on_the_console(self, client: Client) -> None:
        ana = dispatcher_on_shift("ana", "+15105550201")
        missed = missed_voicemail(client, sid="CA1")
        ringing = Caller(client, sid="CA2", number="+15105550124")
        ringing.press(ringing.dial(), "2")
        page = logged_in(ana.user).get("/console/").content.decode()
        assert "Phone line" in page
        assert "You are on shift:" in page
        assert "1 phone ringing" in page
        ringing_call = Call.objects.get(provider_sid="CA2")
        assert f'href="/calls/{ringing_call.uuid}/"' in page
        assert f"missed-{missed.uuid}" in page
        assert "Called back: reached" in page

    def test_the_section_costs_the_same_queries_for_2_or_20_calls(self, client: Client) -> None:
        ana = dispatcher_on_shift("ana", "+15105550201")
        staff = logged_in(ana.user)
        for i in range(2):
            missed_voicemail(client, sid=f"CA{i}", number=f"+151055501{i:02d}")
        with CaptureQueriesContext(connection) as small:
            assert staff.get("/calls/console-section/").status_code == 200
        for i in range(2, 20):
            missed_voicemail(client, sid=f"CA{i}", number=f"+151055501{i:02d}")
        with CaptureQueriesContext(connection) as large:
            assert staff.get("/calls/console-section/").status_code == 200
        assert len(large) == len(small)

    def test_logging_a_call_back_takes_the_call_off_the_list(self, client: Client) -> None:
        call = missed_voicemail(client)
        dispatcher = make_user(Role.DISPATCHER)
        staff = logged_in(dispatcher)
        response = staff.post(f"/calls/{call.uuid}/callback/", {"outcome": "no_answer"})
        assert response.status_code == 302
        call.refresh_from_db()
        assert call.needs_callback  # no answer: it stays, with the try counted
        assert "tried 1 time" in staff.get("/calls/console-section/").content.decode()
        staff.post(f"/calls/{call.uuid}/callback/", {"outcome": "reached"})
        call.refresh_from_db()
        assert not call.needs_callback
        assert call.called_back_at is not None
        assert Callback.objects.filter(call=call, by=dispatcher).count() == 2
        assert f"missed-{call.uuid}" not in staff.get("/calls/console-section/").content.decode()
        assert AuditEvent.objects.filter(action=AuditAction.CALLBACK_LOGGED).count() == 2

    def test_an_unknown_call_back_outcome_changes_nothing(self, client: Client) -> None:
        call = missed_voicemail(client)
        staff = logged_in(make_user(Role.DISPATCHER))
        staff.post(f"/calls/{call.uuid}/callback/", {"outcome": "maybe"})
        assert not Callback.objects.exists()

    def test_a_call_in_progress_cannot_be_marked_called_back(self, client: Client) -> None:
        caller = Caller(client)
        caller.dial()
        call = Call.objects.get()
        logged_in(make_user(Role.DISPATCHER)).post(
            f"/calls/{call.uuid}/callback/", {"outcome": "reached"}
        )
        assert not Callback.objects.exists()

    def test_going_on_and_off_shift_from_the_console(self, client: Client) -> None:
        dispatcher = make_user(Role.DISPATCHER)
        line = line_for(dispatcher, "+15105550201")
        staff = logged_in(dispatcher)
        with committed():
            staff.post("/calls/my-shift/", {"on_shift": "1"})
        line.refresh_from_db()
        assert line.on_shift
        staff.post("/calls/my-shift/", {"on_shift": "0"})
        line.refresh_from_db()
        assert not line.on_shift

    def test_a_dispatcher_without_a_phone_is_told_so(self) -> None:
        staff = logged_in(make_user(Role.DISPATCHER))
        response = staff.post("/calls/my-shift/", {"on_shift": "1"}, follow=True)
        assert "A coordinator must add your phone" in response.content.decode()
        assert not DispatcherLine.objects.exists()


@pytest.mark.django_db
class TestCallPage:
    def test_the_number_is_shown_only_on_request_and_audited(self, client: Client) -> None:
        call = missed_voicemail(client)
        staff = logged_in(make_user(Role.DISPATCHER))
        page = staff.get(f"/calls/{call.uuid}/").content.decode()
        assert "+15105550123" not in page
        assert "Show the number to call back" in page
        revealed = staff.post(f"/calls/{call.uuid}/number/")
        assert "+15105550123" in revealed.content.decode()
        assert AuditEvent.objects.filter(action=AuditAction.CALLER_NUMBER_VIEWED).count() == 1

    def test_a_hidden_number_cannot_be_revealed(self, client: Client) -> None:
        call = missed_voicemail(client, number="+266696687")
        staff = logged_in(make_user(Role.DISPATCHER))
        assert staff.post(f"/calls/{call.uuid}/number/").status_code == 404

    def test_the_dispatcher_on_the_call_writes_the_report(self, client: Client) -> None:
        ana = dispatcher_on_shift("ana", "+15105550201")
        caller = Caller(client)
        caller.press(caller.dial(), "2")
        call = Call.objects.get()
        phone = DispatcherPhone(client, call.legs.get())
        phone.pick_up()
        phone.press("1")
        staff = logged_in(ana.user)
        section = staff.get("/calls/console-section/").content.decode()
        assert "Write the report for this call" in section
        with committed():
            response = staff.post(
                f"/calls/{call.uuid}/report/",
                {
                    "text": "Dos camionetas en la 35 y International",
                    "location_text": "35th Ave",
                    "submission": "7d6f2c1e-3b7a-4c55-9a51-2f6f1d2b9e10",
                },
            )
            # A double submission is the same report.
            again = staff.post(
                f"/calls/{call.uuid}/report/",
                {
                    "text": "Dos camionetas en la 35 y International",
                    "submission": "7d6f2c1e-3b7a-4c55-9a51-2f6f1d2b9e10",
                },
            )
        assert again.status_code == 302
        report = Report.objects.get()
        assert response.status_code == 302
        assert response["Location"] == f"/console/reports/{report.uuid}/"
        call.refresh_from_db()
        assert call.report == report
        assert report.channel == Channel.VOICE
        assert report.language == "es"
        assert report.reporter_hash == call.caller_hash
        assert report.location_text == "35th Ave"

    def test_an_empty_report_is_refused_with_the_form(self, client: Client) -> None:
        Caller(client).dial()
        call = Call.objects.get()
        staff = logged_in(make_user(Role.DISPATCHER))
        response = staff.post(f"/calls/{call.uuid}/report/", {"text": ""})
        assert response.status_code == 422
        assert not Report.objects.exists()

    def test_verifiers_cannot_see_calls(self, client: Client) -> None:
        call = missed_voicemail(client)
        staff = logged_in(make_user(Role.VERIFIER))
        assert staff.get(f"/calls/{call.uuid}/").status_code == 403
        assert staff.get(f"/calls/{call.uuid}/recording/").status_code == 403
        assert staff.post(f"/calls/{call.uuid}/number/").status_code == 403
        assert staff.get("/calls/console-section/").status_code == 403

    def test_the_test_phone_voicemail_plays_offline(self, client: Client) -> None:
        call = missed_voicemail(client)
        response = logged_in(make_user(Role.DISPATCHER)).get(f"/calls/{call.uuid}/recording/")
        assert response.status_code == 200
        assert response["Content-Type"] == "audio/wav"
        assert response.content.startswith(b"RIFF")


@pytest.mark.django_db
class TestRoster:
    def test_only_coordinators_manage_phones(self) -> None:
        dispatcher = make_user(Role.DISPATCHER)
        assert logged_in(dispatcher).get("/calls/roster/").status_code == 403
        coordinator = make_user(Role.COORDINATOR)
        staff = logged_in(coordinator)
        assert staff.get("/calls/roster/").status_code == 200
        response = staff.post(
            f"/calls/roster/{dispatcher.uuid}/", {"phone": "(510) 555-0201", "active": "on"}
        )
        assert response.status_code == 302
        line = DispatcherLine.objects.get(user=dispatcher)
        assert line.phone == "+15105550201"
        page = staff.get(f"/calls/roster/{dispatcher.uuid}/").content.decode()
        assert "+15105550201" not in page  # the number is never shown back

    def test_a_bad_number_or_one_in_use_is_refused(self) -> None:
        first, second = make_user(Role.DISPATCHER, "first"), make_user(Role.DISPATCHER, "second")
        line_for(first, "+15105550201")
        staff = logged_in(make_user(Role.COORDINATOR))
        bad = staff.post(f"/calls/roster/{second.uuid}/", {"phone": "12", "active": "on"})
        assert bad.status_code == 422
        taken = staff.post(
            f"/calls/roster/{second.uuid}/", {"phone": "+15105550201", "active": "on"}
        )
        assert taken.status_code == 422
        assert "already uses" in taken.content.decode()
        assert not DispatcherLine.objects.filter(user=second).exists()

    def test_a_scheduled_shift_puts_a_dispatcher_on_shift(self) -> None:
        from calls.routing import lines_on_shift

        dispatcher = make_user(Role.DISPATCHER)
        line = line_for(dispatcher, "+15105550201")
        staff = logged_in(make_user(Role.COORDINATOR))
        from django.utils import timezone

        now = timezone.localtime()
        staff.post(
            f"/calls/roster/{dispatcher.uuid}/shifts/",
            {
                "starts_at": (now - timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M"),
                "ends_at": (now + timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M"),
            },
        )
        assert line.shifts.count() == 1
        assert lines_on_shift().filter(pk=line.pk).exists()
        # OFF during the shift holds until it ends.
        logged_in(dispatcher).post("/calls/my-shift/", {"on_shift": "0"})
        assert not lines_on_shift().filter(pk=line.pk).exists()


@pytest.mark.django_db
class TestPrompts:
    def test_a_typed_prompt_replaces_the_built_in_words(self, client: Client) -> None:
        staff = logged_in(make_user(Role.COORDINATOR))
        assert staff.get("/calls/prompts/").status_code == 200
        staff.post("/calls/prompts/en/greeting/", {"text": "Hello, this is the {network} line."})
        menu = Caller(client).dial()
        assert "Hello, this is the Test Rapid Response line." in menu.text()

    def test_a_recorded_prompt_is_played_from_a_public_address(self, client: Client) -> None:
        staff = logged_in(make_user(Role.COORDINATOR))
        audio = SimpleUploadedFile("hello.mp3", b"ID3fake", content_type="audio/mpeg")
        staff.post("/calls/prompts/en/greeting/", {"audio": audio})
        prompt = VoicePrompt.objects.get()
        menu = Caller(client).dial()
        play = menu.root.find("Gather/Play")
        assert play is not None
        assert play.text == f"https://hotline.example.org/calls/prompts/audio/{prompt.uuid}/"
        served = Client().get(f"/calls/prompts/audio/{prompt.uuid}/")
        assert served.status_code == 200
        assert b"".join(served.streaming_content) == b"ID3fake"  # type: ignore[attr-defined]

    def test_a_file_that_is_not_audio_is_refused_whatever_it_claims(self) -> None:
        staff = logged_in(make_user(Role.COORDINATOR))
        upload = SimpleUploadedFile("x.mp3", b"MZ\x90\x00", content_type="audio/mpeg")
        staff.post("/calls/prompts/en/greeting/", {"audio": upload})
        assert not VoicePrompt.objects.exists()

    def test_typed_words_replace_a_recording(self, client: Client) -> None:
        staff = logged_in(make_user(Role.COORDINATOR))
        audio = SimpleUploadedFile(
            "hello.wav", b"RIFF\x00\x00\x00\x00WAVEfmt ", content_type="audio/wav"
        )
        staff.post("/calls/prompts/en/greeting/", {"audio": audio})
        staff.post("/calls/prompts/en/greeting/", {"text": "Typed greeting."})
        prompt = VoicePrompt.objects.get()
        assert not prompt.audio
        assert "Typed greeting." in Caller(client).dial().text()

    def test_an_unknown_language_or_prompt_is_not_found(self) -> None:
        staff = logged_in(make_user(Role.COORDINATOR))
        assert (
            staff.post("/calls/prompts/klingon-long-code/greeting/", {"text": "x"}).status_code
            == 404
        )
        assert staff.post("/calls/prompts/en/farewell/", {"text": "x"}).status_code == 404
        assert not VoicePrompt.objects.exists()

    def test_a_new_language_is_offered_once_every_prompt_is_written(self, client: Client) -> None:
        from calls.models import PromptKey

        staff = logged_in(make_user(Role.COORDINATOR))
        staff.post(
            "/calls/prompts/",
            {
                "code": "pt",
                "name": "Português",
                "digit": "3",
                "voice": "pt-BR",
                "spoken_names": "português, portugues",
                "enabled": "on",
            },
        )
        assert "Português" not in Caller(client, sid="CA1").dial().text()
        for key in PromptKey:
            staff.post(f"/calls/prompts/pt/{key.value}/", {"text": f"pt {key.value} {{digit}}"})
        menu = Caller(client, sid="CA2").dial()
        assert ("pt-BR", "pt menu 3") in menu.says()

    def test_dispatchers_cannot_change_prompts(self) -> None:
        staff = logged_in(make_user(Role.DISPATCHER))
        assert staff.get("/calls/prompts/").status_code == 403
        assert staff.post("/calls/prompts/en/greeting/", {"text": "x"}).status_code == 403
        assert not VoicePrompt.objects.exists()


@pytest.mark.django_db
def test_a_voicemail_report_leads_to_its_call_for_the_number(client: Client) -> None:
    call = missed_voicemail(client)
    assert call.report is not None
    assert call.report.reporter_contact is None  # the number is on the call only
    staff = logged_in(make_user(Role.DISPATCHER))
    page = staff.get(f"/console/reports/{call.report.uuid}/").content.decode()
    assert "From a hotline call" in page
    assert f"/calls/{call.uuid}/" in page
    assert "+15105550123" not in page
    assert "Show the number" not in page
    assert staff.post(f"/console/reports/{call.report.uuid}/contact/").status_code == 404
    assert "+15105550123" in staff.post(f"/calls/{call.uuid}/number/").content.decode()


@pytest.mark.django_db
def test_a_hidden_number_leaves_no_hash_on_the_report(client: Client) -> None:
    call = missed_voicemail(client, number="+266696687")
    assert call.report is not None
    assert call.report.reporter_hash == ""


@pytest.mark.django_db
def test_viewing_a_call_is_audited(client: Client) -> None:
    call = missed_voicemail(client)
    logged_in(make_user(Role.DISPATCHER)).get(f"/calls/{call.uuid}/")
    assert AuditEvent.objects.filter(action=AuditAction.CALL_VIEWED).count() == 1
