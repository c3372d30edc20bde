"""On a phone: a dispatcher offers an incident, the responder answers YES from the test
phone, files a field report from the link, and the dispatcher verifies."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from accounts.models import Role
from conftest import FRUITVALE, LiveServer, make_user
from dispatch.models import Offer, OfferStatus
from dispatch.tests.factories import responder
from incidents.models import IncidentStatus
from intake.tests.factories import web_report
from tests.browser.pages import LoginPage

pytestmark = pytest.mark.browser


def test_offer_yes_field_report_verified(
    browser: Any, live_asgi: LiveServer, service_area: Any, screenshot_dir: Path
) -> None:
    make_user(Role.DISPATCHER, username="dani")
    make_user(Role.VERIFIER, username="vero-login")
    vero = responder(at=FRUITVALE, name="Vero", phone="+15105550301")
    report = web_report(
        "Agents in vests stopping people at the bus stop",
        at=FRUITVALE,
        where="International & 35th",
    )
    incident = report.incident
    assert incident is not None

    desk = browser.new_context(viewport={"width": 1280, "height": 900})
    phone = browser.new_context(viewport={"width": 390, "height": 844}, is_mobile=True)
    try:
        console = desk.new_page()
        LoginPage(console, live_asgi.url).log_in("dani", "a-long-test-password")
        console.goto(f"{live_asgi.url}/console/incidents/{incident.uuid}/")
        console.get_by_role("button", name="Offer only to this one").first.click()
        console.get_by_text("Offer sent to 1 responder(s).").wait_for()
        offer = Offer.objects.get(responder=vero)

        handset = phone.new_page()
        LoginPage(handset, live_asgi.url).log_in("vero-login", "a-long-test-password")
        handset.goto(f"{live_asgi.url}/test-phone/")
        handset.get_by_label("Send as number").fill("+15105550301")
        handset.get_by_label("Message").fill("hello")
        handset.get_by_role("button", name="Send").click()
        handset.get_by_text(f"Reply YES {offer.code}").wait_for()
        handset.screenshot(path=str(screenshot_dir / "phone-offer.png"), full_page=True)
        handset.get_by_label("Message").fill(f"YES {offer.code}")
        handset.get_by_role("button", name="Send").click()
        accepted = handset.get_by_text("Report what you see:")
        accepted.wait_for()
        link = re.search(r"(/r/[^\s]+/)", accepted.inner_text())
        assert link is not None
        offer.refresh_from_db()
        assert offer.status == OfferStatus.ACCEPTED

        handset.goto(live_asgi.url + link.group(1))
        handset.get_by_role("button", name="I have arrived").click()
        handset.get_by_label("Verified: I saw immigration enforcement").check()
        handset.get_by_label("Officers (how many)").fill("6")
        handset.get_by_label("People detained").fill("1")
        handset.screenshot(path=str(screenshot_dir / "phone-field-report.png"), full_page=True)
        handset.get_by_role("button", name="Save report").click()
        handset.get_by_text("Report saved.").wait_for()

        console.reload()
        console.get_by_text("Confirmations from the scene: 1 of 1").wait_for()
        console.get_by_label("New status").select_option("verified")
        console.get_by_label("Reason").first.fill("Confirmed by Vero on the scene.")
        console.get_by_role("button", name="Change status").click()
        console.locator(".messages", has_text="Status changed.").wait_for()
        console.screenshot(
            path=str(screenshot_dir / "incident-verified-by-responder.png"), full_page=True
        )
        incident.refresh_from_db()
        assert incident.status == IncidentStatus.VERIFIED
        assert incident.first_arrived_at is not None and incident.decided_at is not None
    finally:
        desk.close()
        phone.close()
