"""Family support opens a case from a verified incident, adds the family's phone and an
ICE check-in, and the reminder arrives on the test phone in Spanish. A volunteer signs
up from their own page on a phone."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from django.utils import formats, timezone, translation

from accounts.models import Role
from cases import hearings, keystore, reminders
from cases.models import Accompaniment, Case, Hearing, HearingReminder, ReminderLead
from cases.tests.hearing_factories import in_days, volunteer
from conftest import FRUITVALE, LiveServer, make_user
from incidents import actions as incident_actions
from incidents.models import IncidentStatus
from intake.tests.factories import web_report
from tests.browser.pages import LoginPage

pytestmark = pytest.mark.browser
PASSWORD = "a-long-test-password"


class CasePage:
    """A case's page, as family support uses it."""

    def __init__(self, page: Any) -> None:
        self.page = page

    def add_contact(self, *, name: str, phone: str, language: str) -> None:
        self.page.get_by_role("link", name="Add a family contact").click()
        self.page.get_by_label("Name", exact=True).fill(name)
        self.page.get_by_label("Phone").fill(phone)
        self.page.get_by_label("Language for messages").select_option(language)
        self.page.get_by_label("Agrees to receive text updates (hearing reminders)").check()
        self.page.get_by_role("button", name="Save").click()

    def add_hearing(self, *, kind: str, day: str, at: str, place: str) -> None:
        self.page.get_by_role("link", name="Add a hearing, check-in or court date").click()
        self.page.get_by_label("What").select_option(kind)
        self.page.get_by_label("Date").fill(day)
        self.page.get_by_label("Time").fill(at)
        self.page.get_by_label("Where").fill(place)
        self.page.get_by_role("button", name="Add the date").click()

    def hearings_section(self) -> Any:
        return self.page.locator("section#hearings")


@pytest.fixture
def case_keys(settings: Any, tmp_path: Path) -> None:
    """A key store of the test's own; one confirmation-free verification."""
    settings.RR_CASE_KEYSTORE = str(tmp_path / "case-keys")
    settings.RR_CONFIRMATIONS_REQUIRED = 0
    keystore.clear_cache()


@pytest.mark.usefixtures("case_keys", "service_area")
def test_a_hearing_added_to_a_case_reminds_the_family_on_the_test_phone(
    browser: Any, live_asgi: LiveServer, screenshot_dir: Path
) -> None:
    dani = make_user(Role.DISPATCHER, username="dani")
    make_user(Role.FAMILY_SUPPORT, username="fern")
    report = web_report(
        "They took a man from the bus stop into a van", at=FRUITVALE, where="International & 35th"
    )
    incident = report.incident
    assert incident is not None
    for status in (IncidentStatus.VERIFYING, IncidentStatus.VERIFIED):
        incident_actions.change_status(actor=dani, incident=incident, status=status, reason="seen")
    vera = volunteer(languages=["es"])

    desk = browser.new_context(viewport={"width": 1280, "height": 900})
    phone = browser.new_context(viewport={"width": 390, "height": 844}, is_mobile=True)
    try:
        # The family's phone is the test phone: its number goes on the case.
        handset = phone.new_page()
        LoginPage(handset, live_asgi.url).log_in("fern", PASSWORD)
        handset.goto(f"{live_asgi.url}/test-phone/")
        number = handset.locator(".phone-number strong").inner_text().strip()

        page = desk.new_page()
        LoginPage(page, live_asgi.url).log_in("fern", PASSWORD)
        page.goto(f"{live_asgi.url}/cases/new/")
        page.get_by_role("link", name=f"Open a case for #{incident.short_id}").click()
        page.get_by_label("Name of the detained person").fill("Maria Elena Lopez")
        yesterday = timezone.localtime() - timedelta(days=1)
        page.get_by_label("Detained at (date and time)").fill(yesterday.strftime("%Y-%m-%dT%H:%M"))
        page.get_by_role("button", name="Open the case").click()
        case_page = CasePage(page)
        case_page.hearings_section().wait_for()
        case = Case.objects.get()

        case_page.add_contact(name="Rosa Lopez", phone=number, language="es")
        page.get_by_text("Rosa Lopez").first.wait_for()
        starts = in_days(2)
        case_page.add_hearing(
            kind="ice_checkin",
            day=starts.date().isoformat(),
            at="10:00",
            place="ICE field office, 630 Sansome St",
        )
        page.get_by_text("Date added. Reminders are scheduled.").wait_for()
        card = case_page.hearings_section().locator(".hearing-card").first
        card.get_by_text("0 sent, 2 waiting").wait_for()
        page.screenshot(path=str(screenshot_dir / "case-hearing-desktop.png"), full_page=True)
        hearing = Hearing.objects.get(case=case)
        assert HearingReminder.objects.filter(hearing=hearing).count() == 2

        # A volunteer signs up from their own page, on a phone.
        helper = phone.new_page()
        helper.goto(live_asgi.url + hearings.volunteer_path(vera))
        helper.get_by_role("button", name="I can go").click()
        helper.get_by_text("You are signed up.").wait_for()
        helper.screenshot(
            path=str(screenshot_dir / "volunteer-signed-up-phone.png"), full_page=True
        )
        assert "Maria" not in helper.content()
        assert Accompaniment.objects.filter(hearing=hearing, responder=vera).exists()

        # The evening before comes (the worker's timer would run this).
        evening = reminders.due_times(hearing.starts_at)[ReminderLead.DAY_BEFORE]
        assert reminders.send_due(now=evening).sent == 2

        handset.goto(f"{live_asgi.url}/test-phone/")
        with translation.override("es"):
            local_start = hearing.starts_at.astimezone(reminders.network_zone())
            spanish_day = formats.date_format(local_start, "DATE_FORMAT")
        message = handset.get_by_text(spanish_day)
        message.wait_for()
        text = message.inner_text()
        assert "Maria" in text and "ICE field office, 630 Sansome St" in text
        assert "Lopez" not in text
        handset.screenshot(path=str(screenshot_dir / "reminder-on-test-phone.png"), full_page=True)

        page.reload()
        case_page.hearings_section().get_by_text("2 sent, 2 waiting").wait_for()
        page.get_by_role("link", name="Hearings", exact=True).click()
        page.get_by_text("ICE field office, 630 Sansome St").wait_for()
        page.screenshot(path=str(screenshot_dir / "hearing-calendar-desktop.png"), full_page=True)

        # The phone context is signed in already (the test phone needs it).
        narrow = phone.new_page()
        narrow.goto(f"{live_asgi.url}/cases/{case.uuid}/#hearings")
        narrow.locator("section#hearings").screenshot(
            path=str(screenshot_dir / "case-hearings-phone.png")
        )
        narrow.goto(f"{live_asgi.url}/cases/hearings/")
        narrow.get_by_text("ICE field office, 630 Sansome St").wait_for()
        narrow.screenshot(path=str(screenshot_dir / "hearing-calendar-phone.png"), full_page=True)
    finally:
        desk.close()
        phone.close()
