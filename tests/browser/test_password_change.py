"""Changing one's own password in a real browser, by keyboard, on a phone and a
desktop: the link beside "Two-step login", a refused password's errors tied to its
field, then the new password, which signs out the other browser."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from accounts.models import Role
from accounts.testing import enrol_totp
from conftest import LiveServer, make_user
from tests.browser.pages import VIEWPORTS, LoginPage

pytestmark = pytest.mark.browser

PASSWORD = "a-long-test-password"
NEW = "a-different-long-passphrase-42"


@pytest.mark.parametrize("device", sorted(VIEWPORTS))
def test_a_new_password_by_keyboard_signs_out_the_other_browser(
    browser: Any, live_asgi: LiveServer, service_area: Any, screenshot_dir: Path, device: str
) -> None:
    enrol_totp(make_user(Role.DISPATCHER, username="dana"))
    here = browser.new_context(viewport=VIEWPORTS[device], is_mobile=device == "phone")
    elsewhere = browser.new_context()
    try:
        other = elsewhere.new_page()
        LoginPage(other, live_asgi.url).log_in("dana", PASSWORD)
        page = here.new_page()
        LoginPage(page, live_asgi.url).log_in("dana", PASSWORD)
        page.get_by_role("link", name="Password").click()
        page.get_by_role("heading", name="Change your password").wait_for()

        new = page.get_by_label("New password", exact=True)
        assert new.get_attribute("autocomplete") == "new-password"
        new.focus()
        page.keyboard.type("short")
        page.keyboard.press("Tab")
        page.keyboard.press("Tab")  # past the rules, to the confirmation
        page.get_by_label("New password confirmation").focus()
        page.keyboard.type("short")
        with page.expect_navigation():
            page.keyboard.press("Enter")
        page.get_by_role("alert").wait_for()
        error = page.locator(".field-error").first
        assert "too short" in error.inner_text()
        # The error is read with its field.
        # Django reports a refused password on its confirmation.
        confirmation = page.get_by_label("New password confirmation")
        assert confirmation.get_attribute("aria-invalid") == "true"
        described = (confirmation.get_attribute("aria-describedby") or "").split()
        assert described == ["id_new_password2_error", "id_new_password2_helptext"]
        assert "too short" in page.locator(f"#{described[0]}").inner_text()
        page.screenshot(path=str(screenshot_dir / f"password-refused-{device}.png"), full_page=True)

        page.get_by_label("New password", exact=True).fill(NEW)
        page.get_by_label("New password confirmation").fill(NEW)
        with page.expect_navigation():
            page.get_by_role("button", name="Change password").click()
        page.get_by_text("Your password was changed").wait_for()
        page.screenshot(path=str(screenshot_dir / f"password-changed-{device}.png"), full_page=True)

        other.goto(f"{live_asgi.url}/console/")
        assert "/accounts/login/" in other.url
    finally:
        here.close()
        elsewhere.close()
