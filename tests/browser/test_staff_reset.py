"""A coordinator resets the two-step login of a dispatcher who lost their phone, in a
real browser, by keyboard and labels; the dispatcher's next sign-in enrols a new app.
On a phone and on a desktop."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from allauth.mfa.models import Authenticator

from accounts.models import Role
from accounts.testing import enrol_totp
from conftest import LiveServer, make_user
from tests.browser.pages import VIEWPORTS, LoginPage

pytestmark = pytest.mark.browser

PASSWORD = "a-long-test-password"


@pytest.mark.parametrize("device", sorted(VIEWPORTS))
def test_a_coordinator_resets_a_lost_phone(
    browser: Any, live_asgi: LiveServer, service_area: Any, screenshot_dir: Path, device: str
) -> None:
    coordinator = make_user(Role.COORDINATOR, username="cora")
    enrol_totp(coordinator)
    dana = make_user(Role.DISPATCHER, username="dana")
    enrol_totp(dana)
    context = browser.new_context(viewport=VIEWPORTS[device], is_mobile=device == "phone")
    try:
        page = context.new_page()
        LoginPage(page, live_asgi.url).log_in("cora", PASSWORD)
        page.get_by_role("navigation", name="Main").get_by_role("link", name="Staff").click()
        page.wait_for_load_state()
        page.get_by_role("heading", name="Staff").wait_for()
        row = page.get_by_role("row").filter(has_text="dana")
        assert "authenticator app, recovery codes" in row.inner_text()
        page.screenshot(path=str(screenshot_dir / f"staff-{device}.png"), full_page=True)

        # The link's accessible name says whose login it resets.
        page.get_by_role("link", name="Reset two-step login of dana").click()
        page.wait_for_load_state()
        # A fresh sign-in counts as having confirmed it is them: no second prompt.
        page.get_by_role("heading", name="Reset the two-step login of Dispatcher").wait_for()
        button = page.get_by_role("button", name="Reset two-step login")
        button.focus()
        with page.expect_navigation():
            page.keyboard.press("Enter")  # without ticking the confirmation
        page.get_by_role("alert").filter(has_text="Confirm who you are talking to").wait_for()
        page.screenshot(
            path=str(screenshot_dir / f"staff-reset-error-{device}.png"), full_page=True
        )
        assert Authenticator.objects.filter(user=dana).count() == 2

        page.get_by_label("I have confirmed, by voice or in person").check()
        with page.expect_navigation():
            page.get_by_role("button", name="Reset two-step login").click()
        page.get_by_text("was reset").wait_for()
        page.screenshot(path=str(screenshot_dir / f"staff-reset-done-{device}.png"), full_page=True)
        assert not Authenticator.objects.filter(user=dana).exists()
    finally:
        context.close()

    # Dana, still on the call, signs in with her own password: straight to enrolling.
    fresh = browser.new_context(viewport=VIEWPORTS[device], is_mobile=device == "phone")
    try:
        page = fresh.new_page()
        LoginPage(page, live_asgi.url).log_in_with_password("dana", PASSWORD)
        assert page.url.endswith("/accounts/mfa/totp/activate/")
    finally:
        fresh.close()
