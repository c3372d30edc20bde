"""A first login in a real browser: password, enrol an authenticator app (the QR code
displays under our CSP), recovery codes, then the console; and the next login's TOTP
step. On a phone and on a desktop."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from accounts.models import Role, User
from accounts.testing import fresh_code
from conftest import LiveServer, make_user
from tests.browser.pages import VIEWPORTS, ConsolePage, LoginPage

pytestmark = pytest.mark.browser

PASSWORD = "a-long-test-password"


@pytest.mark.parametrize("device", sorted(VIEWPORTS))
def test_first_login_enrols_totp_then_opens_the_console(
    browser: Any, live_asgi: LiveServer, service_area: Any, screenshot_dir: Path, device: str
) -> None:
    viewport = VIEWPORTS[device]
    make_user(Role.DISPATCHER, username="dani")
    context = browser.new_context(viewport=viewport, is_mobile=device == "phone")
    violations: list[str] = []
    try:
        page = context.new_page()
        page.on(
            "console",
            lambda message: (
                violations.append(message.text)
                if "Content Security Policy" in message.text
                else None
            ),
        )
        login = LoginPage(page, live_asgi.url)
        login.log_in_with_password("dani", PASSWORD)
        assert page.url.endswith("/accounts/mfa/totp/activate/")
        qr = page.get_by_role("img", name="QR code for your authenticator app")
        qr.wait_for()
        # Drawn: the SVG loaded (a CSP-blocked image has no natural size).
        assert page.evaluate("document.querySelector('img.qr').naturalWidth") > 0
        code_input = page.get_by_label("Code from your authenticator app")
        assert code_input.get_attribute("autocomplete") == "one-time-code"
        assert code_input.get_attribute("inputmode") == "numeric"
        page.screenshot(path=str(screenshot_dir / f"mfa-enrol-{device}.png"), full_page=True)

        # Keyboard only: the code field, then Enter submits.
        login.enrol_authenticator_app()
        page.screenshot(
            path=str(screenshot_dir / f"mfa-recovery-codes-{device}.png"), full_page=True
        )
        codes = page.get_by_label("Unused codes").input_value().split()
        assert len(codes) == 10
        page.get_by_role("link", name="Continue").click()
        ConsolePage(page, live_asgi.url).wait_until_live()
        assert page.url.endswith("/console/")
        page.screenshot(path=str(screenshot_dir / f"mfa-console-{device}.png"))

        # Logging out and in again asks for a code from the app.
        page.get_by_role("button", name="Log out").click()
        page.wait_for_url(f"{live_asgi.url}/accounts/login/")
        login.log_in_with_password("dani", PASSWORD)
        assert "/accounts/login/mfa/" in page.url
        page.screenshot(path=str(screenshot_dir / f"mfa-step-{device}.png"), full_page=True)
        field = page.get_by_label("Code from your authenticator app, or a recovery code")
        field.focus()
        page.keyboard.type(fresh_code(User.objects.get(username="dani")))
        with page.expect_navigation():
            page.keyboard.press("Enter")
        ConsolePage(page, live_asgi.url).wait_until_live()
        assert not violations, violations
    finally:
        context.close()
