"""The test phone's call mode: call the hotline and play the dispatchers' phones with
buttons, offline, through the same flow as a Twilio call."""

from __future__ import annotations

import html
import json
import re
import uuid
from typing import Any

import pytest
from django.test import Client

from accounts.models import Role
from calls.models import Call, CallLeg, CallOutcome, CallState, DispatcherLine, LegState
from calls.tests.factories import dispatcher_on_shift
from conftest import committed, make_user
from intake.models import Channel, Report

PAGE = "/test-phone/"


def panel(page: str, name: str) -> str:
    """One panel of the page: the caller's side or the dispatchers' phones."""
    start = page.index(f'data-live-panel="{name}"')
    end = page.find("</section>", start)
    return page[start:end]


def field(part: str, name: str) -> str:
    found = re.search(rf'name="{name}" value="([^"]*)"', part)
    assert found is not None, f"no {name} field"
    return html.unescape(found.group(1))


class PhonePage:
    """A staff member at the test phone page, pressing its buttons."""

    def __init__(self, client: Client) -> None:
        self.client = client

    def post(self, path: str, data: dict[str, str] | None = None, **extra: Any) -> Any:
        with committed():
            return self.client.post(path, data or {}, **extra)

    def page(self) -> str:
        response = self.client.get(PAGE)
        assert response.status_code == 200
        return str(response.content.decode())

    def caller(self) -> str:
        return panel(self.page(), "caller")

    def phones(self) -> str:
        response = self.client.get("/test-phone/phones/")
        assert response.status_code == 200
        return panel(response.content.decode(), "phones")

    def call(self) -> Call:
        return Call.objects.get(uuid=self.client.session["test_phone_call"]["call"])

    def _answer(self, **data: str) -> Any:
        caller = self.caller()
        form = {"call": field(caller, "call"), "step": field(caller, "step"), **data}
        return self.post("/test-phone/call/answer/", form)

    # The caller's side.
    def dial(self) -> Any:
        return self.post("/test-phone/call/")

    def press(self, key: str) -> Any:
        return self._answer(digits=key)

    def say(self, words: str) -> Any:
        return self._answer(speech=words)

    def say_nothing(self) -> Any:
        return self._answer(silence="1")

    def leave_message(self) -> Any:
        caller = self.caller()
        form = {"call": field(caller, "call"), "step": field(caller, "step")}
        return self.post("/test-phone/call/record/", form)

    def hang_up(self) -> Any:
        return self.post("/test-phone/call/hang-up/", {"call": field(self.caller(), "call")})

    def keep_waiting(self) -> str:
        response = self.post(
            "/test-phone/call/poll/",
            {"call": field(self.caller(), "call")},
            HTTP_X_REQUESTED_WITH="fetch",
        )
        assert response.status_code == 200
        return panel(response.content.decode(), "caller")

    # The dispatchers' phones.
    def answer_phone(self, leg: CallLeg) -> Any:
        return self.post(f"/test-phone/phones/{leg.uuid}/answer/")

    def press_on_phone(self, leg: CallLeg, key: str) -> Any:
        step = field(self.phones(), "step")
        return self.post(f"/test-phone/phones/{leg.uuid}/press/", {"step": step, "digits": key})

    def ring_out(self, leg: CallLeg) -> Any:
        return self.post(f"/test-phone/phones/{leg.uuid}/ring-out/")

    def hang_up_phone(self, leg: CallLeg) -> Any:
        return self.post(f"/test-phone/phones/{leg.uuid}/hang-up/")


@pytest.fixture
def phone(client: Client) -> PhonePage:
    client.force_login(make_user(Role.DISPATCHER, username="dani"))
    return PhonePage(client)


def ana() -> DispatcherLine:
    line = dispatcher_on_shift("ana", "+15105550201")
    line.user.first_name = "Ana"
    line.user.save(update_fields=["first_name"])
    return line


def ringing(call: Call) -> CallLeg:
    (leg,) = call.legs.filter(state__in=[LegState.DIALING, LegState.RINGING])
    return leg


def done(response: Any) -> None:
    assert response.status_code == 302, response.content.decode()[:2000]
    assert response["Location"].startswith(PAGE + "?focus=")


@pytest.mark.django_db
class TestTheMenu:
    def test_the_menu_has_a_keypad_and_says_each_language_in_its_voice(
        self, phone: PhonePage
    ) -> None:
        done(phone.dial())
        caller = phone.caller()
        assert '<li data-line="2" class="bubble theirs" lang="en-US">' in caller
        assert "For English, press 1." in caller
        assert re.search(r'lang="es-US">.*Español', caller)
        for key in "0123456789":
            assert f'name="digits" value="{key}"' in caller
        assert "Say nothing" in caller
        assert 'name="speech"' in caller
        assert "Hang up" in caller
        call = phone.call()
        assert call.provider == "console"
        assert call.provider_sid.startswith("CONCA")
        assert call.caller == phone.client.session["test_phone_number"]
        assert call.state == CallState.MENU

    def test_pressing_2_chooses_spanish(self, phone: PhonePage) -> None:
        ana()
        phone.dial()
        done(phone.press("2"))
        call = phone.call()
        assert call.language == "es"
        assert call.state == CallState.WAITING
        caller = phone.caller()
        assert "You press 2." in caller
        assert "On hold" in caller
        assert re.search(r'<p lang="es-US">', caller)

    def test_saying_the_language_chooses_it(self, phone: PhonePage) -> None:
        ana()
        phone.dial()
        done(phone.say("Español, por favor"))
        assert phone.call().language == "es"
        assert "Español, por favor" in phone.caller()

    def test_saying_nothing_asks_again_then_takes_the_first_language(
        self, phone: PhonePage
    ) -> None:
        phone.dial()
        done(phone.say_nothing())
        assert phone.call().state == CallState.MENU
        assert phone.caller().count("For English, press 1.") == 2
        phone.say_nothing()
        call = phone.call()
        assert call.language == "en"
        assert call.state == CallState.VOICEMAIL


@pytest.mark.django_db
class TestVoicemail:
    def test_with_no_one_on_shift_the_caller_leaves_a_message_to_call_back(
        self, phone: PhonePage
    ) -> None:
        phone.dial()
        phone.press("1")
        caller = phone.caller()
        assert "Leave the message" in caller
        assert "No volunteer can answer right now." in caller
        assert phone.call().voicemail_reason == "no_one_on_shift"

        done(phone.leave_message())
        call = phone.call()
        report = Report.objects.get()
        assert report.channel == Channel.VOICE
        assert call.report == report
        assert call.needs_callback
        assert call.outcome == CallOutcome.VOICEMAIL
        assert call.state == CallState.ENDED
        assert call.recording_sid and call.recording_sid.startswith("CONRE")
        assert call.recording_reference == f"console:{call.recording_sid}"
        assert call.recording_seconds == 5
        caller = phone.caller()
        assert "Thank you." in caller
        assert "The call ended: Voicemail." in caller
        assert "Call the hotline" in caller
        # It waits on the console's list of missed calls.
        section = phone.client.get("/calls/console-section/").content.decode()
        assert f"missed-{call.uuid}" in section

    def test_pressing_1_on_hold_leaves_a_message(self, phone: PhonePage) -> None:
        ana()
        phone.dial()
        phone.press("1")
        assert "To leave a message instead, press 1." in phone.caller()
        done(phone.press("1"))
        assert "Leave the message" in phone.caller()
        call = phone.call()
        assert call.state == CallState.VOICEMAIL
        assert call.voicemail_reason == "caller_chose"
        assert ringing_or_none(call) is None

    def test_a_phone_that_rings_out_sends_the_caller_to_voicemail(self, phone: PhonePage) -> None:
        ana()
        phone.dial()
        phone.press("1")
        leg = ringing(phone.call())
        done(phone.ring_out(leg))
        leg.refresh_from_db()
        assert leg.state == LegState.MISSED
        held = phone.keep_waiting()
        assert "Leave the message" in held
        assert phone.call().voicemail_reason == "no_answer"

    def test_hanging_up_on_hold_is_an_abandoned_call_to_call_back(self, phone: PhonePage) -> None:
        ana()
        phone.dial()
        phone.press("1")
        leg = ringing(phone.call())
        done(phone.hang_up())
        call = phone.call()
        assert call.outcome == CallOutcome.ABANDONED
        assert call.needs_callback
        leg.refresh_from_db()
        assert leg.state == LegState.CANCELLED
        assert "Ana" not in phone.phones()


def ringing_or_none(call: Call) -> CallLeg | None:
    return call.legs.filter(state__in=[LegState.DIALING, LegState.RINGING]).first()


@pytest.mark.django_db
class TestADispatcherAnswers:
    def connect(self, phone: PhonePage) -> CallLeg:
        ana()
        phone.dial()
        phone.press("1")
        leg = ringing(phone.call())
        phones = phone.phones()
        assert "Ana" in phones
        assert "Pick up" in phones
        assert "Let it ring out" in phones

        done(phone.answer_phone(leg))
        leg.refresh_from_db()
        assert leg.state == LegState.PICKED_UP
        phones = phone.phones()
        assert "Press 1 to take it" in phones
        card = phones.split("data-call-log")[0]
        assert card.count("Press 1 to take it") == 1  # said twice, shown once
        assert f'id="phone-{leg.uuid}-key-1"' in phones

        done(phone.press_on_phone(leg, "1"))
        leg.refresh_from_db()
        assert leg.state == LegState.ACCEPTED
        call = phone.call()
        assert call.state == CallState.CONNECTED
        assert call.bridged_at is not None
        page = phone.page()
        assert "Connected to Ana" in panel(page, "caller")
        assert "Connected to the caller" in panel(page, "phones")
        assert "Connecting you to the caller." in panel(page, "phones")
        assert "Connected to Ana." in phone.keep_waiting()
        return leg

    def test_answer_and_1_connect_and_the_dispatcher_hangs_up(self, phone: PhonePage) -> None:
        leg = self.connect(phone)
        done(phone.hang_up_phone(leg))
        call = phone.call()
        assert call.state == CallState.ENDED
        assert call.outcome == CallOutcome.ANSWERED
        assert not call.needs_callback
        leg.refresh_from_db()
        assert leg.state == LegState.ENDED
        assert "The call ended: Answered." in phone.caller()
        assert "Ana" not in panel(phone.page(), "phones").split("data-call-log")[0]

    def test_the_caller_hanging_up_ends_the_dispatchers_leg_too(self, phone: PhonePage) -> None:
        leg = self.connect(phone)
        done(phone.hang_up())
        call = phone.call()
        assert call.outcome == CallOutcome.ANSWERED
        leg.refresh_from_db()
        assert leg.state == LegState.ENDED
        assert "No dispatcher phone is ringing." in phone.phones()

    def test_another_key_lets_the_call_go(self, phone: PhonePage) -> None:
        ana()
        phone.dial()
        phone.press("1")
        leg = ringing(phone.call())
        phone.answer_phone(leg)
        done(phone.press_on_phone(leg, "9"))
        leg.refresh_from_db()
        assert leg.state == LegState.DECLINED
        assert "You did not take the call." in phone.phones()
        assert "Leave the message" in phone.keep_waiting()


@pytest.mark.django_db
class TestBadRequests:
    def snapshot(self) -> list[Any]:
        calls = list(Call.objects.values_list("state", "language", "menu_attempts", "outcome"))
        legs = list(CallLeg.objects.values_list("state", flat=True))
        return [calls, legs, Report.objects.count()]

    def refused(self, phone: PhonePage, response: Any, message: str) -> None:
        assert response.status_code == 400
        body = response.content.decode()
        assert 'role="alert"' in body
        assert message in html.unescape(body)

    def test_bad_caller_buttons_change_nothing(self, phone: PhonePage) -> None:
        # No call yet, or the session that held it expired.
        response = phone.post("/test-phone/call/answer/", {"call": str(uuid.uuid4())})
        self.refused(phone, response, "your session has expired")

        phone.dial()
        caller = phone.caller()
        call_id, step = field(caller, "call"), field(caller, "step")
        before, session = self.snapshot(), phone.client.session["test_phone_call"]
        for path, data, message in [
            ("answer", {"call": call_id, "step": step, "digits": "x"}, "Press one key"),
            ("answer", {"call": call_id, "step": step, "digits": "12"}, "Press one key"),
            ("answer", {"call": call_id, "step": step}, "Press a key"),
            ("answer", {"call": call_id, "step": step, "speech": "x" * 201}, "at most 200"),
            ("answer", {"call": call_id, "step": "hold-key", "digits": "1"}, "no longer offers"),
            ("record", {"call": call_id, "step": "recorded"}, "not recording"),
            ("answer", {"call": str(uuid.uuid4()), "step": step, "digits": "1"}, "earlier call"),
            ("hang-up", {"call": "not-a-call"}, "earlier call"),
        ]:
            response = phone.post(f"/test-phone/call/{path}/", data)
            self.refused(phone, response, message)
            assert self.snapshot() == before
            assert phone.client.session["test_phone_call"] == session

        # A form the call has moved past: the language menu, after choosing.
        phone.press("1")
        before = self.snapshot()
        response = phone.post(
            "/test-phone/call/answer/", {"call": call_id, "step": step, "digits": "2"}
        )
        self.refused(phone, response, "no longer offers")
        assert self.snapshot() == before
        assert phone.call().language == "en"

        # A call that has ended.
        phone.hang_up()
        before = self.snapshot()
        response = phone.post("/test-phone/call/hang-up/", {"call": call_id})
        self.refused(phone, response, "This call has ended")
        assert self.snapshot() == before

    def test_a_form_of_an_earlier_call_changes_nothing(self, phone: PhonePage) -> None:
        phone.dial()
        first = field(phone.caller(), "call")
        phone.dial()  # hangs up the first
        caller = phone.caller()
        assert field(caller, "call") != first
        before = self.snapshot()
        response = phone.post(
            "/test-phone/call/answer/",
            {"call": first, "step": field(caller, "step"), "digits": "1"},
        )
        self.refused(phone, response, "earlier call")
        assert self.snapshot() == before

    def test_bad_dispatcher_buttons_change_nothing(self, phone: PhonePage) -> None:
        ana()
        phone.dial()
        phone.press("1")
        leg = ringing(phone.call())
        before = self.snapshot()
        for path, data, message in [
            ("nope/answer", {}, "no such dispatcher phone"),
            (f"{uuid.uuid4()}/answer", {}, "no such dispatcher phone"),
            (f"{leg.uuid}/press", {"step": "leg-accept", "digits": "1"}, "Answer it first"),
        ]:
            self.refused(phone, phone.post(f"/test-phone/phones/{path}/", data), message)
            assert self.snapshot() == before

        phone.answer_phone(leg)
        before = self.snapshot()
        for data, message in [
            ({"step": "leg-accept", "digits": "#"}, "Press one key"),
            ({"step": "language", "digits": "1"}, "Answer it first"),
        ]:
            response = phone.post(f"/test-phone/phones/{leg.uuid}/press/", data)
            self.refused(phone, response, message)
            assert self.snapshot() == before
        response = phone.post(f"/test-phone/phones/{leg.uuid}/ring-out/")
        self.refused(phone, response, "no longer ringing")
        assert self.snapshot() == before

        phone.hang_up()  # the leg stops ringing
        before = self.snapshot()
        self.refused(phone, phone.answer_phone(leg), "no longer ringing")
        self.refused(phone, phone.hang_up_phone(leg), "not on a call")
        assert self.snapshot() == before

    def test_a_phone_of_a_twilio_call_is_not_on_the_test_phone(
        self, phone: PhonePage, client: Client
    ) -> None:
        from calls.tests.voice import Caller

        ana()
        twilio_caller = Caller(client, sid="CAreal")
        twilio_caller.press(twilio_caller.dial(), "1")
        leg = ringing(Call.objects.get(provider="twilio"))
        assert "Ana" not in phone.phones()
        before = self.snapshot()
        self.refused(phone, phone.answer_phone(leg), "no such dispatcher phone")
        assert self.snapshot() == before


@pytest.mark.django_db
class TestAccess:
    URLS = [
        "/test-phone/call/",
        "/test-phone/call/answer/",
        "/test-phone/call/record/",
        "/test-phone/call/hang-up/",
        "/test-phone/call/poll/",
        f"/test-phone/phones/{uuid.uuid4()}/answer/",
        f"/test-phone/phones/{uuid.uuid4()}/press/",
        f"/test-phone/phones/{uuid.uuid4()}/ring-out/",
        f"/test-phone/phones/{uuid.uuid4()}/hang-up/",
    ]

    def test_the_call_mode_is_absent_with_the_twilio_provider(
        self, phone: PhonePage, settings: Any
    ) -> None:
        settings.RR_SMS_PROVIDER = "twilio"
        assert phone.client.get(PAGE).status_code == 404
        assert phone.client.get("/test-phone/phones/").status_code == 404
        for url in self.URLS:
            assert phone.post(url, {"call": "x", "digits": "1"}).status_code == 404, url
        assert not Call.objects.exists()

    def test_anonymous_visitors_are_sent_to_log_in(self, client: Client) -> None:
        for url in self.URLS:
            response = client.post(url)
            assert response.status_code == 302, url
            assert "/accounts/login/" in response["Location"]
        assert client.get("/test-phone/phones/").status_code == 302
        assert not Call.objects.exists()

    def test_every_button_needs_the_csrf_token(self) -> None:
        client = Client(enforce_csrf_checks=True)
        client.force_login(make_user(Role.VERIFIER))
        assert client.post("/test-phone/call/").status_code == 403
        assert not Call.objects.exists()

    def test_gets_are_not_buttons(self, phone: PhonePage) -> None:
        assert phone.client.get("/test-phone/call/").status_code == 405
        assert not Call.objects.exists()

    def test_keep_waiting_without_the_pages_script_reloads_the_page(self, phone: PhonePage) -> None:
        ana()
        phone.dial()
        phone.press("1")
        caller = phone.caller()
        response = phone.post("/test-phone/call/poll/", {"call": field(caller, "call")})
        done(response)


def test_every_verb_survives_the_session() -> None:
    from calls.script import (
        DialQueue,
        Enqueue,
        Gather,
        Hangup,
        Leave,
        Pause,
        Play,
        Record,
        Redirect,
        Say,
        Step,
        Verb,
    )
    from messaging.providers.console.voice_views import dump_script, load_script

    step = Step("hold", "c-id")
    script: list[Verb] = [
        Say(text="Hola", voice="es-US", speaker="Polly.Lupe"),
        Play(url="/calls/prompts/audio/x/"),
        Pause(seconds=2),
        Gather(
            action=step,
            prompts=[Say(text="Press 1", voice="en-US"), Pause(seconds=1)],
            timeout=3,
            speech_voice="en-US",
            hints=["english"],
        ),
        Enqueue(queue="call-1", wait=step, action=Step("left-queue", "c-id")),
        DialQueue(
            queue="call-1", bridge=Step("bridge", "c-id"), done=Step("leg-dialled", "c-id", "l-id")
        ),
        Record(action=Step("recorded", "c-id"), status=Step("recording", "c-id"), max_seconds=120),
        Redirect(to=step),
        Leave(),
        Hangup(),
    ]
    assert load_script(json.loads(json.dumps(dump_script(script)))) == script
