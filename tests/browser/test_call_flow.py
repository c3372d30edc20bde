"""The voice hotline offline, through the test phone: a caller with no one on shift
leaves a message that a dispatcher calls back from the console; and a call that a
dispatcher on shift answers by pressing 1."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from accounts.models import Role
from calls.models import Call, CallOutcome, CallState, LegState
from calls.tests.factories import dispatcher_on_shift
from conftest import LiveServer, make_user
from intake.models import Channel, Report
from tests.browser.pages import ConsolePage, LoginPage, MissedCallsSection, TestPhoneCallPage

pytestmark = pytest.mark.browser
PASSWORD = "a-long-test-password"  # make_user's password for test accounts
PHONE = {"viewport": {"width": 390, "height": 844}, "is_mobile": True}
DESK = {"viewport": {"width": 1280, "height": 900}}


def test_no_one_on_shift_the_caller_leaves_a_message_and_is_called_back(
    browser: Any, live_asgi: LiveServer, service_area: Any, screenshot_dir: Path
) -> None:
    make_user(Role.DISPATCHER, username="dani")
    phone = browser.new_context(**PHONE)
    desk = browser.new_context(**DESK)
    try:
        handset = phone.new_page()
        LoginPage(handset, live_asgi.url).log_in("dani", PASSWORD)
        test_phone = TestPhoneCallPage(handset, live_asgi.url)
        test_phone.open()
        test_phone.call_the_hotline()
        test_phone.log().get_by_text("For English, press 1.").wait_for()
        handset.screenshot(path=str(screenshot_dir / "phone-call-menu.png"), full_page=True)

        test_phone.press_with_keyboard("1")
        test_phone.wait_for_status("Recording your message")
        # Without a reload, focus moves to what happened, as on the other staff pages.
        assert handset.evaluate("document.activeElement.id") == "call-status"
        test_phone.log().get_by_text("No volunteer can answer right now.").wait_for()
        handset.screenshot(path=str(screenshot_dir / "phone-call-voicemail.png"), full_page=True)
        test_phone.leave_message()
        test_phone.wait_for_status("The call ended: Voicemail.")
        handset.screenshot(path=str(screenshot_dir / "phone-call-message-left.png"), full_page=True)

        call = Call.objects.get()
        assert call.needs_callback
        assert call.outcome == CallOutcome.VOICEMAIL
        assert Report.objects.get().channel == Channel.VOICE

        console = desk.new_page()
        LoginPage(console, live_asgi.url).log_in("dani", PASSWORD)
        ConsolePage(console, live_asgi.url).open()
        missed = MissedCallsSection(console)
        missed.call(call.uuid).wait_for()
        console.screenshot(path=str(screenshot_dir / "console-missed-call.png"), full_page=True)
        missed.log_reached_with_keyboard(call.uuid)
        missed.call(call.uuid).wait_for(state="detached", timeout=10_000)
        console.get_by_text("No missed call is waiting for a call back.").wait_for()
        call.refresh_from_db()
        assert not call.needs_callback
        assert call.called_back_at is not None
    finally:
        phone.close()
        desk.close()


def test_a_dispatcher_on_shift_presses_1_and_both_are_connected(
    browser: Any, live_asgi: LiveServer, screenshot_dir: Path
) -> None:
    line = dispatcher_on_shift("ana", "+15105550201")
    line.user.first_name = "Ana"
    line.user.save(update_fields=["first_name"])
    make_user(Role.DISPATCHER, username="dani")
    phone = browser.new_context(**PHONE)
    desk = browser.new_context(**DESK)
    try:
        # A neighbour calls from the test phone on a phone...
        handset = phone.new_page()
        LoginPage(handset, live_asgi.url).log_in("dani", PASSWORD)
        caller = TestPhoneCallPage(handset, live_asgi.url)
        caller.open()
        caller.call_the_hotline()
        caller.press("1")
        caller.wait_for_status("On hold")
        caller.caller.get_by_text("To leave a message instead, press 1.").wait_for()

        # ...and Ana plays her ringing phone on the test phone at her desk.
        desktop = desk.new_page()
        LoginPage(desktop, live_asgi.url).log_in("ana", PASSWORD)
        dispatcher = TestPhoneCallPage(desktop, live_asgi.url)
        dispatcher.open()
        dispatcher.phone_of("Ana").get_by_text("Ringing").wait_for(timeout=10_000)
        caller.phone_of("Ana").wait_for(timeout=10_000)  # it shows on every test phone
        handset.screenshot(path=str(screenshot_dir / "phone-call-on-hold.png"), full_page=True)
        dispatcher.answer_phone_of("Ana")
        dispatcher.phone_of("Ana").get_by_text("Press 1 to take it").wait_for()
        leg = Call.objects.get().legs.get()
        assert desktop.evaluate("document.activeElement.id") == f"phone-{leg.uuid}"
        desktop.screenshot(
            path=str(screenshot_dir / "test-phone-offer-desktop.png"), full_page=True
        )
        dispatcher.press_on_phone_of("Ana", "1")
        dispatcher.phone_of("Ana").get_by_text("Connected to the caller").first.wait_for()

        caller.wait_for_status("Connected to Ana")
        caller.log().get_by_text("Connected to Ana.").wait_for()
        handset.screenshot(path=str(screenshot_dir / "phone-call-connected.png"), full_page=True)
        dispatcher.open()
        desktop.screenshot(
            path=str(screenshot_dir / "test-phone-connected-desktop.png"), full_page=True
        )
        call = Call.objects.get()
        assert call.state == CallState.CONNECTED
        assert call.answered_by == line.user

        caller.hang_up()
        caller.wait_for_status("The call ended: Answered.")
        dispatcher.phones.locator(".empty", has_text="No dispatcher phone is ringing.").wait_for(
            timeout=10_000
        )
        call.refresh_from_db()
        assert call.outcome == CallOutcome.ANSWERED
        assert not call.needs_callback
        assert call.legs.get().state == LegState.ENDED
    finally:
        phone.close()
        desk.close()
