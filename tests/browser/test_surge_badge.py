"""The surge breaker as a dispatcher sees it: a "Possible flood" badge on the console
row, with text (not colour alone), and the explanation on the incident page."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from accounts.models import Role
from conftest import FRUITVALE, LiveServer, make_user
from tests.browser.pages import ConsolePage, LoginPage

pytestmark = pytest.mark.browser


def test_a_flagged_incident_shows_its_badge(
    browser: Any, live_asgi: LiveServer, service_area: Any, settings: Any, screenshot_dir: Path
) -> None:
    from intake.tests.factories import web_report

    settings.RR_SURGE_REPORTS = 3
    for n in range(4):
        web_report(f"ICE checkpoint, tell everyone ({n})", at=FRUITVALE)
    make_user(Role.DISPATCHER, username="dani")
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    try:
        page = context.new_page()
        LoginPage(page, live_asgi.url).log_in("dani", "a-long-test-password")
        console = ConsolePage(page, live_asgi.url)
        console.open()
        row = console.row_containing("tell everyone")
        badge = row.get_by_text("Possible flood", exact=True)
        assert badge.is_visible()
        page.screenshot(path=str(screenshot_dir / "console-surge-badge.png"))
        row.locator("a.incident-link").click()
        page.get_by_text("possibly a flood of false tips").wait_for()
        page.screenshot(path=str(screenshot_dir / "incident-surge-notice.png"))
    finally:
        context.close()
