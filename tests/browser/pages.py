"""Page objects: what a dispatcher or a reporter does, in the browser's terms."""

from __future__ import annotations

import time
from typing import Any

# The two screens every staff page is checked on.
VIEWPORTS = {"phone": {"width": 390, "height": 844}, "desktop": {"width": 1280, "height": 900}}


class LoginPage:
    def __init__(self, page: Any, base_url: str) -> None:
        self.page = page
        self.base_url = base_url

    def log_in(self, username: str, password: str) -> None:
        """Password, then the second step: a fresh code from the person's authenticator
        app (computed from their secret, one not used before), or, at their first login,
        enrolling an app and going on past the recovery codes."""
        self.log_in_with_password(username, password)
        if self.page.url.startswith(f"{self.base_url}/accounts/login/mfa/"):
            self.enter_code(username)
        elif self.page.url.startswith(f"{self.base_url}/accounts/mfa/totp/activate/"):
            self.enrol_authenticator_app()
            self.page.get_by_role("link", name="Continue").click()
        self.page.wait_for_url(lambda url: "/accounts/" not in url)

    def log_in_with_password(self, username: str, password: str) -> None:
        self.page.goto(f"{self.base_url}/accounts/login/")
        self.page.get_by_label("Username").fill(username)
        self.page.get_by_label("Password").fill(password)
        with self.page.expect_navigation():
            self.page.get_by_role("button", name="Log in").click()

    def enter_code(self, username: str) -> None:
        from accounts.models import User
        from accounts.testing import fresh_code

        code = fresh_code(User.objects.get(username=username))
        self.page.get_by_label("Code from your authenticator app, or a recovery code").fill(code)
        with self.page.expect_navigation():
            self.page.get_by_role("button", name="Continue").click()

    def enrol_authenticator_app(self) -> str:
        """Type the page's key into a (computed) authenticator app; the secret."""
        from accounts.testing import code_now

        secret = str(self.page.get_by_label("Or type this key into the app").input_value())
        self.page.get_by_label("Code from your authenticator app").fill(code_now(secret))
        with self.page.expect_navigation():
            self.page.get_by_role("button", name="Activate").click()
        self.page.get_by_role("heading", name="Recovery codes").wait_for()
        return secret


class ConsolePage:
    def __init__(self, page: Any, base_url: str) -> None:
        self.page = page
        self.base_url = base_url

    def open(self) -> None:
        self.page.goto(f"{self.base_url}/console/")
        self.wait_until_live()

    def wait_until_live(self) -> None:
        self.page.locator("[data-live-status].is-live").wait_for(timeout=10_000)

    def mark_page_instance(self) -> None:
        """Tag this page load, so a test can tell an update from a reload."""
        self.page.evaluate("window.__rrPageInstance = 'original'")

    def same_page_instance(self) -> bool:
        return bool(self.page.evaluate("window.__rrPageInstance === 'original'"))

    def incident_rows(self) -> Any:
        return self.page.locator("[data-incident-rows] tr")

    def row_containing(self, text: str) -> Any:
        return self.page.locator("[data-incident-rows] tr", has_text=text)


def wait_until_true(page: Any, expression: str, timeout: int = 30_000) -> None:
    """Poll ``expression`` from here until it is true. Playwright's wait_for_function
    polls with eval inside the page, which the site's CSP (no 'unsafe-eval') refuses
    whenever the first check is false; page.evaluate is not subject to it."""
    deadline = time.monotonic() + timeout / 1000
    while not page.evaluate(f"() => Boolean({expression})"):
        if time.monotonic() > deadline:
            raise TimeoutError(f"{expression!r} was still false after {timeout} ms")
        page.wait_for_timeout(50)


class ReportFormPage:
    def __init__(self, page: Any, base_url: str) -> None:
        self.page = page
        self.base_url = base_url

    def open(self, language: str = "en") -> None:
        self.page.goto(f"{self.base_url}/report/?lang={language}")
        wait_until_true(self.page, "window.RRMaps && window.RRMaps.length > 0")

    def describe(self, what: str, where: str) -> None:
        self.page.get_by_label("What is happening?").fill(what)
        self.page.get_by_label("Where?").fill(where)

    def pin_on_map(self, lat: float, lng: float) -> None:
        """Click the map where (lat, lng) is drawn, as a person would tap it."""
        wait_until_true(self.page, "window.RRMaps[0].areaBounds !== undefined", timeout=10_000)
        point = self.page.evaluate(
            "([lat, lng]) => { const m = window.RRMaps[0].map;"
            " m.setView([lat, lng], 15, {animate: false});"
            " const p = m.latLngToContainerPoint([lat, lng]); return {x: p.x, y: p.y}; }",
            [lat, lng],
        )
        self.page.locator(".report-form [data-map]").click(position=point)

    def wait_for_check(self, timeout: int = 30_000) -> None:
        """The proof-of-work widget has solved its challenge."""
        self.page.locator("altcha-widget [data-state='verified']").wait_for(timeout=timeout)

    def send(self) -> None:
        self.page.get_by_role("button", name="Send report").click()


class TestPhoneCallPage:
    """The test phone's call mode: the caller's side, and the dispatchers' phones that
    ring for the call."""

    __test__ = False  # a page object, not a test class

    def __init__(self, page: Any, base_url: str) -> None:
        self.page = page
        self.base_url = base_url

    def open(self) -> None:
        self.page.goto(f"{self.base_url}/test-phone/")

    @property
    def caller(self) -> Any:
        return self.page.locator("[data-live-panel='caller']")

    @property
    def phones(self) -> Any:
        return self.page.locator("[data-live-panel='phones']")

    def status(self) -> Any:
        return self.caller.locator("#call-status")

    def wait_for_status(self, text: str, timeout: int = 10_000) -> None:
        """The caller's line says this: after a button, or once the page has polled."""
        self.caller.locator("#call-status", has_text=text).wait_for(timeout=timeout)

    def call_the_hotline(self) -> None:
        self.caller.get_by_role("button", name="Call the hotline").click()
        self.wait_for_status("The hotline asks")

    def key(self, key: str) -> Any:
        return self.caller.get_by_role("group", name="Keypad").get_by_role(
            "button", name=key, exact=True
        )

    def press(self, key: str) -> None:
        self.key(key).click()

    def press_with_keyboard(self, key: str) -> None:
        self.key(key).focus()
        self.page.keyboard.press("Enter")

    def leave_message(self) -> None:
        self.caller.get_by_role("button", name="Leave the message").click()

    def hang_up(self) -> None:
        self.caller.get_by_role("button", name="Hang up").click()

    def log(self) -> Any:
        return self.caller.get_by_role("list", name="Call log")

    def phone_of(self, name: str) -> Any:
        """A dispatcher's phone card; it appears once the list has refreshed."""
        return self.phones.locator(".phone-card", has=self.page.get_by_role("heading", name=name))

    def answer_phone_of(self, name: str) -> None:
        self.phone_of(name).get_by_role("button", name="Pick up").click()

    def press_on_phone_of(self, name: str, key: str) -> None:
        self.phone_of(name).get_by_role("button", name=key, exact=True).click()


class MissedCallsSection:
    """The console's "Phone line" section: missed calls to call back."""

    def __init__(self, page: Any) -> None:
        self.page = page

    def call(self, call_uuid: Any) -> Any:
        return self.page.locator(f"#missed-{call_uuid}")

    def log_reached_with_keyboard(self, call_uuid: Any) -> None:
        button = self.call(call_uuid).get_by_role("button", name="Called back: reached")
        button.focus()
        self.page.keyboard.press("Enter")
