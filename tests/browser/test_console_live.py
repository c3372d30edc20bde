"""End to end in a real browser: a neighbour files the web form, and the incident
appears on a dispatcher's open console without a reload."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from accounts.models import Role
from conftest import FRUITVALE, LiveServer, make_user
from incidents.models import Incident
from intake.models import Report
from tests.browser.pages import ConsolePage, LoginPage, ReportFormPage

pytestmark = pytest.mark.browser


def test_a_web_report_appears_on_the_console_without_a_reload(
    browser: Any, live_asgi: LiveServer, service_area: Any, screenshot_dir: Path
) -> None:
    make_user(Role.DISPATCHER, username="dani")
    dispatcher = browser.new_context(viewport={"width": 1280, "height": 900})
    neighbour = browser.new_context(viewport={"width": 390, "height": 844}, is_mobile=True)
    try:
        console_tab = dispatcher.new_page()
        LoginPage(console_tab, live_asgi.url).log_in("dani", "a-long-test-password")
        console = ConsolePage(console_tab, live_asgi.url)
        console.open()
        console.mark_page_instance()
        assert console.incident_rows().count() == 0
        console_tab.screenshot(path=str(screenshot_dir / "console-empty.png"))

        form_tab = neighbour.new_page()
        form = ReportFormPage(form_tab, live_asgi.url)
        form.open()
        form.describe(
            "Two unmarked SUVs and agents in POLICE ICE vests at the bus stop",
            "International Blvd & 35th Ave",
        )
        form.pin_on_map(*FRUITVALE)
        assert form_tab.get_by_text("A pin is on the map.").is_visible()
        form_tab.screenshot(path=str(screenshot_dir / "report-form-phone.png"), full_page=True)
        form.send()
        form_tab.get_by_role("heading", name="Thank you. Your report was received.").wait_for()
        form_tab.screenshot(path=str(screenshot_dir / "report-thanks-phone.png"), full_page=True)

        row = console.row_containing("POLICE ICE vests")
        row.wait_for(timeout=5_000)
        assert console.same_page_instance(), "the console reloaded instead of updating"
        assert "Fruitvale" in row.inner_text()
        incident = Incident.objects.get()
        assert Report.objects.get().incident == incident
        marker_count = console_tab.evaluate("Object.keys(window.RRMaps[0].markers).length")
        assert marker_count == 1
        console_tab.screenshot(path=str(screenshot_dir / "console-live-update.png"))
    finally:
        dispatcher.close()
        neighbour.close()


def test_a_dispatcher_changes_status_with_the_keyboard_only(
    browser: Any, live_asgi: LiveServer, service_area: Any, screenshot_dir: Path
) -> None:
    from intake.tests.factories import web_report

    make_user(Role.DISPATCHER, username="dani")
    report = web_report("car with tinted windows outside the school", at=FRUITVALE)
    assert report.incident is not None
    context = browser.new_context(viewport={"width": 1024, "height": 768})
    try:
        page = context.new_page()
        LoginPage(page, live_asgi.url).log_in("dani", "a-long-test-password")
        ConsolePage(page, live_asgi.url).open()
        # From the top of the page: the skip link, then the incident link, by keyboard.
        page.keyboard.press("Tab")
        assert page.evaluate("document.activeElement.textContent").strip() == "Skip to content"
        page.locator(".incident-link").first.focus()
        page.keyboard.press("Enter")
        page.wait_for_url(f"**/console/incidents/{report.incident.uuid}/")
        status = page.get_by_label("New status")
        status.focus()
        status.select_option("verifying")
        page.keyboard.press("Tab")
        page.keyboard.type("Two verifiers sent to the school.")
        page.keyboard.press("Tab")
        page.keyboard.press("Enter")
        message = page.locator(".messages", has_text="Status changed.")
        message.wait_for(timeout=5_000)
        assert page.evaluate("document.activeElement.classList.contains('messages')")
        assert page.locator(".detail-header .status").inner_text() == "Verifying"
        page.screenshot(path=str(screenshot_dir / "incident-after-status.png"), full_page=True)
        report.incident.refresh_from_db()
        assert report.incident.status == "verifying"
    finally:
        context.close()


def test_report_text_on_the_map_is_shown_as_text_not_markup(
    browser: Any, live_asgi: LiveServer
) -> None:
    from intake.tests.factories import web_report

    make_user(Role.DISPATCHER, username="dani")
    report = web_report(
        "agents", at=FRUITVALE, where='<img src="x" id="injected"><b>bold</b> corner'
    )
    assert report.incident is not None
    context = browser.new_context()
    try:
        page = context.new_page()
        LoginPage(page, live_asgi.url).log_in("dani", "a-long-test-password")
        ConsolePage(page, live_asgi.url).open()
        label = page.evaluate(
            "id => { const m = window.RRMaps[0].markers[id]; m.openTooltip();"
            " return m.getTooltip().getElement().textContent; }",
            str(report.incident.uuid),
        )
        assert '<img src="x" id="injected">' in label
        assert page.locator("#injected").count() == 0
        assert page.locator("table.incidents", has_text='<img src="x"').count() == 1
    finally:
        context.close()
