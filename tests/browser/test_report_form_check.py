"""The report form's proof-of-work in a real browser: the widget fetches a challenge,
solves it in a worker from our origin under the strict CSP, says what it is doing to
screen readers, and the report is stored; the keyboard alone is enough."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from conftest import FRUITVALE, LiveServer
from intake.models import Report, SpentChallenge
from tests.browser.pages import ReportFormPage

pytestmark = pytest.mark.browser


def watch_for_csp_violations(page: Any) -> list[str]:
    """Collect every CSP violation the page reports (inline styles, blob: workers …)."""
    violations: list[str] = []
    page.on(
        "console",
        lambda message: (
            violations.append(message.text) if "Content Security Policy" in message.text else None
        ),
    )
    page.add_init_script(
        "document.addEventListener('securitypolicyviolation', e => "
        "console.error('Content Security Policy violation: ' + e.violatedDirective"
        " + ' ' + e.blockedURI));"
    )
    return violations


def test_the_widget_solves_the_check_and_the_report_is_stored(
    browser: Any, live_asgi: LiveServer, service_area: Any, screenshot_dir: Path
) -> None:
    context = browser.new_context(viewport={"width": 390, "height": 844}, is_mobile=True)
    try:
        page = context.new_page()
        violations = watch_for_csp_violations(page)
        workers: list[str] = []
        page.on("worker", lambda worker: workers.append(worker.url))
        form = ReportFormPage(page, live_asgi.url)
        form.open()
        widget = page.locator("altcha-widget")
        assert widget.get_by_text("I am a person sending this").is_visible()
        form.describe("Agents in vests at the laundromat, two grey vans", "International & 35th")
        form.pin_on_map(*FRUITVALE)
        form.wait_for_check()
        status = page.locator("[data-pow-status]")
        assert status.get_attribute("aria-live") == "polite"
        assert status.inner_text() == "Check finished. You can send the report."
        assert widget.get_by_text("Checked. You can send the report.").is_visible()
        assert workers and all(
            url.startswith(f"{live_asgi.url}/static/vendor/altcha/workers/") for url in workers
        ), workers
        page.locator("[data-pow]").screenshot(path=str(screenshot_dir / "report-check-phone.png"))
        page.screenshot(path=str(screenshot_dir / "report-form-check-phone.png"), full_page=True)
        form.send()
        page.get_by_role("heading", name="Thank you. Your report was received.").wait_for()
        report = Report.objects.get()
        assert report.neighbourhood is not None and report.neighbourhood.name == "Fruitvale"
        assert SpentChallenge.objects.count() == 1
        assert violations == []
    finally:
        context.close()


def test_with_the_keyboard_only_send_waits_for_the_check(
    browser: Any, live_asgi: LiveServer, service_area: Any, screenshot_dir: Path
) -> None:
    context = browser.new_context(viewport={"width": 390, "height": 844}, locale="es-MX")
    try:
        page = context.new_page()
        violations = watch_for_csp_violations(page)
        # Hold the challenge back, so the send button is pressed while the check runs.
        held: list[Any] = []

        def hold(route: Any) -> None:  # Playwright wants a Python function here
            held.append(route)

        page.route("**/report/challenge/", hold)
        form = ReportFormPage(page, live_asgi.url)
        form.open("es")
        page.get_by_label("¿Qué está pasando?").focus()
        page.keyboard.type("Agentes de inmigración en la parada del autobús")
        page.keyboard.press("Tab")
        page.keyboard.type("Fruitvale y la calle 35")
        for _ in range(100):
            if held:
                break
            page.wait_for_timeout(50)
        assert held, "the widget did not ask for a challenge when the form was focused"
        # Straight to the send button and Enter, before the check has finished.
        page.get_by_role("button", name="Enviar reporte").focus()
        state = page.evaluate("document.querySelector('altcha-widget').getState()")
        assert state == "verifying", state
        page.locator("[data-pow]").screenshot(path=str(screenshot_dir / "report-checking-es.png"))
        page.keyboard.press("Enter")
        page.wait_for_timeout(300)
        assert not Report.objects.exists()  # the send waits for the check
        held[0].continue_()
        page.get_by_role("heading", name="Gracias. Recibimos su reporte.").wait_for(timeout=30_000)
        assert Report.objects.get().language == "es"
        assert violations == []
    finally:
        context.close()
