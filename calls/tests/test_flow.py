"""The voice hotline, step by step, through signed webhooks: every call reaches a
dispatcher on shift or leaves a message, and none is lost."""

from __future__ import annotations

from datetime import timedelta
from typing import Any
from unittest import mock

import pytest
from django.test import Client
from django.utils import timezone

from calls.models import Call, CallLeg, CallOutcome, CallState, LegState
from calls.tests.factories import dispatcher_on_shift
from calls.tests.voice import ENTRY, Caller, DispatcherPhone, TwiML, path_of, query_of
from conftest import post_twilio, sign
from core import phones
from intake.models import Channel, Report


@pytest.fixture
def caller(client: Client) -> Caller:
    return Caller(client)


def live_legs(call: Call) -> list[CallLeg]:
    return list(call.legs.filter(state__in=["dialing", "ringing", "picked_up"]).order_by("pk"))


@pytest.mark.django_db
class TestMenu:
    def test_the_greeting_offers_each_language_in_its_own_voice(self, caller: Caller) -> None:
        menu = caller.dial()
        assert menu.verbs() == ["Gather", "Redirect"]
        gather = menu.find("Gather")
        assert gather.get("input") == "dtmf speech"
        assert gather.get("numDigits") == "1"
        assert path_of(gather.get("action", "")).startswith(f"{ENTRY}/language?call=")
        says = menu.says()
        assert ("en-US", "For English, press 1.") in says
        assert ("es-US", "Para Español, oprima 2.") in says
        assert "español" in (gather.get("hints") or "")
        call = Call.objects.get()
        assert call.state == CallState.MENU
        assert call.caller == "+15105550123"
        assert call.caller_hash == phones.phone_hash("+15105550123")

    def test_a_repeated_webhook_is_the_same_call(self, caller: Caller) -> None:
        first = caller.dial()
        second = caller.dial()
        assert Call.objects.count() == 1
        assert first.find("Gather").get("action") == second.find("Gather").get("action")

    def test_pressing_2_chooses_spanish(self, caller: Caller) -> None:
        dispatcher_on_shift("ana", "+15105550201")
        answer = caller.press(caller.dial(), "2")
        assert answer.says()[0][0] == "es-US"
        assert "Espere" in answer.text() or "línea" in answer.text()
        assert Call.objects.get().language == "es"

    def test_saying_the_language_chooses_it(self, caller: Caller) -> None:
        dispatcher_on_shift("ana", "+15105550201")
        caller.say(caller.dial(), "Español por favor")
        assert Call.objects.get().language == "es"

    def test_no_answer_asks_again_then_takes_the_first_language(self, caller: Caller) -> None:
        menu = caller.dial()
        again = caller.no_input(menu)
        assert again.verbs() == ["Gather", "Redirect"]
        assert Call.objects.get().state == CallState.MENU
        caller.no_input(again)
        call = Call.objects.get()
        assert call.language == "en"
        assert call.state != CallState.MENU

    def test_an_unknown_key_asks_again(self, caller: Caller) -> None:
        again = caller.press(caller.dial(), "7")
        assert again.verbs() == ["Gather", "Redirect"]


@pytest.mark.django_db
class TestNobodyAnswers:
    def test_with_no_one_on_shift_the_caller_leaves_a_message_that_becomes_a_report(
        self, caller: Caller
    ) -> None:
        message = caller.press(caller.dial(), "2")
        assert message.verbs() == ["Say", "Say", "Record", "Say", "Hangup"]
        record = message.find("Record")
        assert record.get("maxLength") == "120"
        assert record.get("finishOnKey") == "#"
        assert all(language == "es-US" for language, _text in message.says())
        call = Call.objects.get()
        assert call.state == CallState.VOICEMAIL
        assert call.voicemail_reason == "no_one_on_shift"

        thanks, callback = caller.record(message, sid="RE123", seconds="17")
        assert thanks.verbs() == ["Say", "Hangup"]
        assert callback.status_code == 204
        caller.hang_up()

        call.refresh_from_db()
        report = Report.objects.get()
        assert report.channel == Channel.VOICE
        assert report.language == "es"
        assert report.reporter_hash == phones.phone_hash("+15105550123")
        assert report.reporter_contact is None  # the number stays on the call only
        assert call.report == report
        assert call.recording_sid == "RE123"
        assert call.recording_seconds == 17
        assert call.recording_reference.endswith("/Recordings/RE123")
        assert call.outcome == CallOutcome.VOICEMAIL
        assert call.needs_callback

    def test_a_dispatcher_who_does_not_take_it_leads_to_voicemail(
        self, client: Client, caller: Caller
    ) -> None:
        line = dispatcher_on_shift("ana", "+15105550201")
        queued = caller.press(caller.dial(), "1")
        assert queued.verbs() == ["Say", "Enqueue"]
        call = Call.objects.get()
        (leg,) = live_legs(call)
        assert leg.line == line
        assert leg.state == LegState.RINGING

        phone = DispatcherPhone(client, leg)
        offer = phone.pick_up()
        assert "Press 1 to take it" in offer.text()
        assert phone.status("completed").status_code == 204  # hung up without pressing 1
        leg.refresh_from_db()
        assert leg.state == LegState.DECLINED

        held = caller.hold(queued)
        assert held.verbs() == ["Say", "Leave"]
        message = caller.leave_queue(queued, "leave")
        assert "Record" in message.verbs()
        caller.record(message)
        caller.hang_up()
        call.refresh_from_db()
        assert call.voicemail_reason == "no_answer"
        assert call.outcome == CallOutcome.VOICEMAIL
        assert Report.objects.count() == 1

    def test_a_phone_that_rings_out_leads_to_voicemail(
        self, client: Client, caller: Caller
    ) -> None:
        dispatcher_on_shift("ana", "+15105550201")
        queued = caller.press(caller.dial(), "1")
        (leg,) = live_legs(Call.objects.get())
        DispatcherPhone(client, leg).status("no-answer")
        leg.refresh_from_db()
        assert leg.state == LegState.MISSED
        assert caller.hold(queued).verbs() == ["Say", "Leave"]

    def test_waiting_too_long_leads_to_voicemail(self, caller: Caller) -> None:
        dispatcher_on_shift("ana", "+15105550201")
        queued = caller.press(caller.dial(), "1")
        assert "Leave" not in caller.hold(queued).verbs()
        later = timezone.now() + timedelta(seconds=91)
        with mock.patch("django.utils.timezone.now", return_value=later):
            assert caller.hold(queued).verbs() == ["Say", "Leave"]
        assert Call.objects.get().voicemail_reason == "timeout"

    def test_hanging_up_on_hold_is_an_abandoned_call_to_call_back(self, caller: Caller) -> None:
        dispatcher_on_shift("ana", "+15105550201")
        queued = caller.press(caller.dial(), "1")
        call = Call.objects.get()
        assert caller.leave_queue(queued, "hangup").verbs() == ["Hangup"]
        caller.hang_up()
        call.refresh_from_db()
        assert call.outcome == CallOutcome.ABANDONED
        assert call.needs_callback
        assert not live_legs(call)  # the dispatcher's phone stopped ringing

    def test_a_hidden_number_that_hangs_up_is_not_listed_for_a_call_back(
        self, client: Client
    ) -> None:
        caller = Caller(client, number="+266696687")
        caller.dial()
        caller.hang_up()
        call = Call.objects.get()
        assert call.outcome == CallOutcome.ABANDONED
        assert not call.needs_callback


@pytest.mark.django_db
class TestADispatcherTakesTheCall:
    def test_the_first_to_press_1_gets_the_caller_and_the_others_stop_ringing(
        self, client: Client, caller: Caller
    ) -> None:
        ana = dispatcher_on_shift("ana", "+15105550201")
        dispatcher_on_shift("ben", "+15105550202")
        queued = caller.press(caller.dial(), "2")
        call = Call.objects.get()
        first, second = (DispatcherPhone(client, leg) for leg in live_legs(call))
        assert first.leg.line == ana
        assert "Español" in first.pick_up().text()
        second.pick_up()

        taken = first.press("1")
        assert taken.verbs() == ["Say", "Dial"]
        assert taken.find("Dial").find("Queue").text == call.queue_name  # type: ignore[union-attr]
        assert queued.find("Enqueue").text == call.queue_name

        late = second.press("1")
        assert late.verbs() == ["Say", "Hangup"]
        assert "Another dispatcher" in late.text()
        call.refresh_from_db()
        assert call.state == CallState.CONNECTED
        assert call.answered_by == ana.user
        assert [leg.state for leg in call.legs.order_by("pk")] == [
            LegState.ACCEPTED,
            LegState.CANCELLED,
        ]
        # While connected, the hold loop plays nothing that could pull the caller out.
        assert "Leave" not in caller.hold(queued).verbs()
        assert caller.leave_queue(queued, "bridged").verbs() == ["Hangup"]
        caller.hang_up(duration="300")
        call.refresh_from_db()
        assert call.outcome == CallOutcome.ANSWERED
        assert call.duration_seconds == 300
        assert not call.needs_callback
        assert call.legs.get(line=ana).state == LegState.ENDED

    def test_pressing_another_key_lets_the_call_go_to_the_next(
        self, client: Client, caller: Caller
    ) -> None:
        dispatcher_on_shift("ana", "+15105550201")
        caller.press(caller.dial(), "1")
        (leg,) = live_legs(Call.objects.get())
        phone = DispatcherPhone(client, leg)
        phone.pick_up()
        assert phone.press("9").verbs() == ["Say", "Hangup"]
        leg.refresh_from_db()
        assert leg.state == LegState.DECLINED

    def test_a_phone_that_picks_up_after_the_call_was_taken_hears_so(
        self, client: Client, caller: Caller
    ) -> None:
        dispatcher_on_shift("ana", "+15105550201")
        dispatcher_on_shift("ben", "+15105550202")
        caller.press(caller.dial(), "1")
        first, second = (DispatcherPhone(client, leg) for leg in live_legs(Call.objects.get()))
        first.pick_up()
        first.press("1")
        assert "Another dispatcher" in second.pick_up().text()

    def test_a_dispatcher_freed_from_a_call_rings_for_the_next_caller(self, client: Client) -> None:
        dispatcher_on_shift("ana", "+15105550201")
        first_caller = Caller(client, sid="CA1", number="+15105550301")
        second_caller = Caller(client, sid="CA2", number="+15105550302")
        first_caller.press(first_caller.dial(), "1")
        second_queued = second_caller.press(second_caller.dial(), "1")
        first_call, second_call = Call.objects.order_by("pk")
        (leg,) = live_legs(first_call)
        phone = DispatcherPhone(client, leg)
        phone.pick_up()
        phone.press("1")
        # Ana is busy: the second caller hears their place and may leave a message.
        held = second_caller.hold(second_queued)
        assert "Leave" not in held.verbs()
        assert "number 2 in line" in held.text() or "number 1 in line" in held.text()
        assert "leave a message" in held.text()
        assert not live_legs(second_call)
        first_caller.hang_up()
        phone.status("completed")
        (next_leg,) = live_legs(second_call)
        assert next_leg.line == leg.line


@pytest.mark.django_db
class TestOverflow:
    def test_callers_beyond_the_dispatchers_hear_their_place_and_can_leave_a_message(
        self, client: Client
    ) -> None:
        dispatcher_on_shift("ana", "+15105550201")
        callers = [Caller(client, sid=f"CA{i}", number=f"+1510555031{i}") for i in range(3)]
        queued = [c.press(c.dial(), "1") for c in callers]
        third = callers[2].hold(queued[2])
        assert "You are number 3 in line." in third.text()
        assert "To leave a message instead, press 1." in third.text()
        gather = third.find("Gather")
        left = TwiML.parse(callers[2].post(gather.get("action", ""), Digits="1"))
        assert left.verbs() == ["Leave"]
        message = callers[2].leave_queue(queued[2], "leave")
        assert "Record" in message.verbs()
        assert Call.objects.get(provider_sid="CA2").voicemail_reason == "caller_chose"

    def test_another_key_on_hold_keeps_the_caller_waiting(self, client: Client) -> None:
        dispatcher_on_shift("ana", "+15105550201")
        caller = Caller(client)
        queued = caller.press(caller.dial(), "1")
        held = caller.hold(queued)
        again = TwiML.parse(caller.post(held.find("Gather").get("action", ""), Digits="5"))
        assert again.verbs() == ["Redirect"]
        assert Call.objects.get().state == CallState.WAITING


@pytest.mark.django_db
class TestCallbacksOnlyMoveForward:
    def test_a_repeated_or_late_status_changes_nothing(self, caller: Caller) -> None:
        caller.dial()
        caller.hang_up(duration="4")
        call = Call.objects.get()
        ended_at = call.ended_at
        caller.hang_up(duration="99")
        caller.post(f"{ENTRY}/status", CallStatus="ringing")
        caller.post(f"{ENTRY}/status", CallStatus="in-progress")
        call.refresh_from_db()
        assert call.state == CallState.ENDED
        assert call.ended_at == ended_at
        assert call.duration_seconds == 4

    def test_the_recording_twice_and_after_the_hang_up_makes_one_voicemail(
        self, caller: Caller
    ) -> None:
        message = caller.press(caller.dial(), "1")
        caller.hang_up()  # the status callback comes first
        assert Call.objects.get().outcome == CallOutcome.ABANDONED
        caller.record(message)
        caller.record(message)
        call = Call.objects.get()
        assert call.outcome == CallOutcome.VOICEMAIL
        assert Report.objects.count() == 1

    def test_a_late_ringing_status_of_a_dispatcher_phone_changes_nothing(
        self, client: Client, caller: Caller
    ) -> None:
        dispatcher_on_shift("ana", "+15105550201")
        caller.press(caller.dial(), "1")
        (leg,) = live_legs(Call.objects.get())
        phone = DispatcherPhone(client, leg)
        phone.status("no-answer")
        phone.status("ringing")
        phone.status("no-answer")
        leg.refresh_from_db()
        assert leg.state == LegState.MISSED

    def test_a_status_for_an_unknown_call_is_accepted_and_ignored(self, client: Client) -> None:
        response = Caller(client, sid="CAunknown").hang_up()
        assert response.status_code == 204
        assert not Call.objects.exists()


@pytest.mark.django_db
class TestBadRequests:
    def test_a_missing_or_forged_signature_is_refused_and_nothing_is_stored(
        self, client: Client
    ) -> None:
        params = {"CallSid": "CA1", "From": "+15105550123"}
        assert post_twilio(client, ENTRY, params, signature="").status_code == 403
        forged = sign(f"https://hotline.example.org{ENTRY}", params, token="wrong")
        assert post_twilio(client, ENTRY, params, signature=forged).status_code == 403
        other = post_twilio(client, ENTRY, params, signed_url="https://evil.example.com" + ENTRY)
        assert other.status_code == 403
        assert not Call.objects.exists()

    def test_a_forged_step_is_refused(self, client: Client, caller: Caller) -> None:
        menu = caller.dial()
        path = path_of(menu.find("Gather").get("action", ""))
        response = post_twilio(client, path, {"Digits": "1"}, signature="")
        assert response.status_code == 403
        assert Call.objects.get().state == CallState.MENU

    def test_a_tampered_call_id_is_not_found(self, client: Client, caller: Caller) -> None:
        caller.dial()
        for call_id in ["not-a-uuid", "00000000-0000-0000-0000-000000000000"]:
            response = post_twilio(client, f"{ENTRY}/language?call={call_id}", {"Digits": "1"})
            assert response.status_code == 404

    def test_an_unknown_step_is_not_found(self, client: Client) -> None:
        assert post_twilio(client, f"{ENTRY}/transfer", {"CallSid": "CA1"}).status_code == 404

    def test_a_call_without_its_id_is_refused(self, client: Client) -> None:
        assert post_twilio(client, ENTRY, {"From": "+15105550123"}).status_code == 400
        assert post_twilio(client, f"{ENTRY}/status", {"CallStatus": "x"}).status_code == 400
        assert not Call.objects.exists()

    def test_get_is_not_allowed(self, client: Client) -> None:
        assert client.get(ENTRY).status_code == 405

    def test_a_database_failure_tells_the_caller_how_else_to_reach_the_hotline(
        self, client: Client
    ) -> None:
        """Twilio does not fetch TwiML again after an error: the caller would hear an
        application error and be cut off."""
        from django.db import DatabaseError

        with mock.patch("calls.flow.Call.objects.filter", side_effect=DatabaseError):
            answer = TwiML.parse(post_twilio(client, ENTRY, {"CallSid": "CA1", "From": "+1510"}))
        assert answer.verbs() == ["Say", "Say", "Hangup"]
        assert "text what you see" in answer.text()
        assert [language for language, _text in answer.says()] == ["en-US", "es-US"]

    def test_a_database_failure_on_hold_keeps_the_caller_holding(
        self, client: Client, caller: Caller
    ) -> None:
        from django.db import DatabaseError

        dispatcher_on_shift("ana", "+15105550201")
        queued = caller.press(caller.dial(), "1")
        with mock.patch("calls.flow.find_call", side_effect=DatabaseError):
            held = caller.hold(queued)
        assert held.verbs() == ["Pause"]


def test_step_urls_carry_only_ids() -> None:
    from calls.script import Step
    from messaging.providers.twilio.voice import step_url

    url = step_url(Step("leg-accept", "c-id", "l-id"))
    assert query_of(url) == {"call": "c-id", "leg": "l-id"}


@pytest.mark.django_db
class TestBetweenPressing1AndTheBridge:
    def taken(self, client: Client, caller: Caller, dispatchers: int = 1) -> tuple[Call, Any, Any]:
        for i in range(dispatchers):
            dispatcher_on_shift(f"d{i}", f"+1510555020{i}")
        queued = caller.press(caller.dial(), "1")
        call = Call.objects.get()
        phone = DispatcherPhone(client, live_legs(call)[0])
        phone.pick_up()
        return call, queued, phone

    def test_the_dispatcher_is_connected_through_the_callers_queue_with_a_short_wait(
        self, client: Client, caller: Caller
    ) -> None:
        call, _queued, phone = self.taken(client, caller)
        dial = phone.press("1").find("Dial")
        assert dial.get("timeout") == "5"
        assert path_of(dial.get("action", "")).startswith(f"{ENTRY}/leg-dialled?")
        queue = dial.find("Queue")
        assert queue is not None
        assert queue.text == call.queue_name
        assert path_of(queue.get("url", "")).startswith(f"{ENTRY}/bridge?call={call.uuid}")

    def test_only_a_bridged_call_is_answered(self, client: Client, caller: Caller) -> None:
        call, _queued, phone = self.taken(client, caller)
        dial = phone.press("1").find("Dial")
        bridge = dial.find("Queue")
        assert bridge is not None
        assert TwiML.parse(caller.post(bridge.get("url", ""))).verbs() == []
        caller.hang_up()
        call.refresh_from_db()
        assert call.bridged_at is not None
        assert call.outcome == CallOutcome.ANSWERED

    def test_a_caller_who_hangs_up_before_the_bridge_is_called_back(
        self, client: Client, caller: Caller
    ) -> None:
        call, queued, phone = self.taken(client, caller)
        dial = phone.press("1").find("Dial")
        caller.leave_queue(queued, "hangup")  # no status callback needed
        call.refresh_from_db()
        assert call.state == CallState.ENDED
        assert call.outcome == CallOutcome.ABANDONED
        assert call.needs_callback
        told = TwiML.parse(phone._post("leg-dialled", DialCallStatus="no-answer"))
        assert "hung up before you were connected" in told.text()
        assert dial.get("action")

    def test_a_dispatcher_phone_that_drops_before_the_bridge_puts_the_caller_back(
        self, client: Client, caller: Caller
    ) -> None:
        call, queued, phone = self.taken(client, caller, dispatchers=2)
        phone.press("1")
        phone.status("completed")  # dropped
        call.refresh_from_db()
        assert call.state == CallState.WAITING
        assert call.answered_by is None
        # The other dispatcher rings again for this caller, who is still on hold.
        (again,) = live_legs(call)
        assert again.line != phone.leg.line
        assert "Leave" not in caller.hold(queued).verbs()


@pytest.mark.django_db
class TestNothingStaysStuck:
    def test_a_caller_silent_on_hold_is_ended_and_their_dispatcher_freed(
        self, client: Client, caller: Caller
    ) -> None:
        line = dispatcher_on_shift("ana", "+15105550201")
        queued = caller.press(caller.dial(), "1")
        caller.hold(queued)
        from calls import flow
        from calls.routing import busy_line_ids

        assert line.pk in busy_line_ids()
        later = timezone.now() + timedelta(minutes=3)
        with mock.patch("django.utils.timezone.now", return_value=later):
            assert flow.close_stale_calls() == 1
        call = Call.objects.get()
        assert call.state == CallState.ENDED
        assert call.outcome == CallOutcome.ABANDONED
        assert line.pk not in busy_line_ids()

    def test_a_leg_whose_end_never_came_frees_its_dispatcher(
        self, client: Client, caller: Caller
    ) -> None:
        line = dispatcher_on_shift("ana", "+15105550201")
        queued = caller.press(caller.dial(), "1")
        from calls import flow
        from calls.routing import busy_line_ids

        later = timezone.now() + timedelta(seconds=90)
        with mock.patch("django.utils.timezone.now", return_value=later):
            caller.hold(queued)  # the caller is still there
            flow.close_stale_calls()
        assert line.pk not in busy_line_ids()
        assert Call.objects.get().state != CallState.ENDED

    def test_no_phone_rings_for_a_caller_who_already_left(self, caller: Caller) -> None:
        from calls import routing

        dispatcher_on_shift("ana", "+15105550201")
        with mock.patch("calls.routing.dial"):  # legs created, not yet dialled
            caller.press(caller.dial(), "1")
        call = Call.objects.get()
        (leg,) = call.legs.all()
        assert leg.state == LegState.DIALING
        Call.objects.filter(pk=call.pk).update(state=CallState.ENDED)
        routing.dial([leg.pk])
        leg.refresh_from_db()
        assert leg.state == LegState.CANCELLED
        assert leg.provider_sid is None

    def test_a_ringing_callback_before_the_id_is_stored_keeps_the_id(self, caller: Caller) -> None:
        from calls import routing

        dispatcher_on_shift("ana", "+15105550201")
        with mock.patch("calls.routing.dial"):
            caller.press(caller.dial(), "1")
        (leg,) = Call.objects.get().legs.all()

        def ring_and_callback_first(**kwargs: Any) -> str:
            # The phone's "ringing" callback lands before ring() returns its id.
            CallLeg.objects.filter(pk=leg.pk).update(state=LegState.RINGING)
            return "CONCLx"

        with mock.patch(
            "messaging.providers.console.voice.ConsoleVoice.ring",
            side_effect=ring_and_callback_first,
        ):
            routing.dial([leg.pk])
        leg.refresh_from_db()
        assert leg.provider_sid == "CONCLx"
        assert leg.state == LegState.RINGING

    def test_the_hold_loop_keeps_listening_for_a_key_while_it_waits(self, caller: Caller) -> None:
        dispatcher_on_shift("ana", "+15105550201")
        held = caller.hold(caller.press(caller.dial(), "1"))
        assert held.verbs() == ["Gather"]
        assert [child.tag for child in held.find("Gather")][-1] == "Pause"


@pytest.mark.django_db
def test_the_built_in_voices_are_named(caller: Caller) -> None:
    menu = caller.dial()
    voices = {say.get("language"): say.get("voice") for say in menu.root.iter("Say")}
    assert voices == {"en-US": "Polly.Joanna", "es-US": "Polly.Lupe"}


@pytest.mark.django_db
def test_the_duration_arrives_after_a_hang_up_on_hold(caller: Caller) -> None:
    dispatcher_on_shift("ana", "+15105550201")
    queued = caller.press(caller.dial(), "1")
    caller.leave_queue(queued, "hangup")
    caller.hang_up(duration="37")
    caller.hang_up(duration="99")
    assert Call.objects.get().duration_seconds == 37
