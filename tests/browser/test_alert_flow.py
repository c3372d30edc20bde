"""A neighbour subscribes from the test phone; a dispatcher writes an alert for a
verified incident, a second dispatcher approves it, and both watch the progress reach
100 % while a real worker process sends it through the console provider."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from accounts.models import Role
from alerts.models import Alert, AlertStatus, Subscriber, SubscriberStatus
from alerts.tests.conftest import incident_at
from alerts.tests.factories import subscriber
from conftest import FRUITVALE, LiveServer, make_user
from core import phones
from incidents.models import IncidentStatus
from incidents.tests.test_live import _database_url
from messaging.models import OutboxMessage
from tests.browser.pages import LoginPage

pytestmark = pytest.mark.browser
ROOT = Path(__file__).resolve().parents[2]
NEIGHBOUR = "+15105550401"
RATE = 10  # messages a second: slow enough to watch


@pytest.fixture
def worker(live_asgi: LiveServer, settings: Any) -> Iterator[subprocess.Popen[bytes]]:
    settings.TASKS = {
        "default": {"BACKEND": "django_tasks_db.DatabaseBackend", "QUEUES": ["default"]}
    }
    settings.RR_SMS_RATE_PER_SECOND = RATE
    settings.RR_CONFIRMATIONS_REQUIRED = 0
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "rapidresponse.test_settings",
        "DATABASE_URL": _database_url(),
        "RR_TEST_TASKS": "database",
        "RR_SMS_RATE_PER_SECOND": str(RATE),
    }
    process = subprocess.Popen(
        [sys.executable, "manage.py", "run_worker", "--interval", "0.1"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        yield process
    finally:
        process.kill()
        process.wait(timeout=10)


def test_subscribe_compose_approve_and_watch_it_sent(
    browser: Any,
    live_asgi: LiveServer,
    service_area: Any,
    worker: subprocess.Popen[bytes],
    screenshot_dir: Path,
) -> None:
    dani = make_user(Role.DISPATCHER, username="dani")
    make_user(Role.DISPATCHER, username="alex")
    incident = incident_at(FRUITVALE, IncidentStatus.VERIFIED, dani)
    for i in range(29):
        subscriber(at=(FRUITVALE[0] + i * 0.0003, FRUITVALE[1]), language="es" if i % 2 else "en")

    desk = browser.new_context(viewport={"width": 1280, "height": 900})
    second_desk = browser.new_context(viewport={"width": 1280, "height": 900})
    phone = browser.new_context(viewport={"width": 390, "height": 844}, is_mobile=True)
    try:
        # A neighbour texts JOIN and confirms with YES.
        handset = phone.new_page()
        LoginPage(handset, live_asgi.url).log_in("alex", "a-long-test-password")
        handset.goto(f"{live_asgi.url}/test-phone/")
        handset.get_by_label("Send as number").fill(NEIGHBOUR)
        handset.get_by_label("Message").fill("JOIN Fruitvale")
        handset.get_by_role("button", name="Send").click()
        handset.get_by_text("reply YES to get verified alerts for Fruitvale").wait_for()
        handset.get_by_label("Message").fill("YES")
        handset.get_by_role("button", name="Send").click()
        handset.get_by_text("you will get verified alerts for Fruitvale").wait_for()
        neighbour = Subscriber.objects.get(phone_hash=phones.phone_hash(NEIGHBOUR))
        assert neighbour.status == SubscriberStatus.ACTIVE

        # Dani writes the alert from the incident page.
        page = desk.new_page()
        LoginPage(page, live_asgi.url).log_in("dani", "a-long-test-password")
        page.goto(f"{live_asgi.url}/console/incidents/{incident.uuid}/")
        page.get_by_role("link", name="Write an alert").click()
        # The page's scripts (HTMX, the segment counter) listen from DOMContentLoaded.
        page.wait_for_load_state("load")
        page.get_by_label("Send to subscribers within").select_option("3000")
        page.get_by_text("30 subscribers will get it.").wait_for()
        english = page.get_by_label("Message in English")
        english.fill(english.input_value() + " Más información: 510-555-0000")
        segments = page.locator("[data-segments-for='id_body_en']")
        page.locator("[data-segments-for='id_body_en']", has_text="UCS-2").wait_for()
        assert "Longer than one text message" in segments.inner_text()
        english.fill(
            "VERIFIED: immigration agents at International & 35th now. Stay inside. "
            "Reply STOP to end."
        )
        page.locator("[data-segments-for='id_body_en']", has_text="GSM-7").wait_for()
        assert "1 segment" in segments.inner_text()
        page.screenshot(path=str(screenshot_dir / "alert-compose.png"), full_page=True)
        page.get_by_role("button", name="Save for approval").click()
        page.get_by_text("Waiting for a second dispatcher to approve it.").wait_for()
        assert page.get_by_role("button", name="Approve and send").count() == 0
        alert = Alert.objects.get()

        # Alex approves; both watch the progress.
        approver = second_desk.new_page()
        LoginPage(approver, live_asgi.url).log_in("alex", "a-long-test-password")
        approver.goto(f"{live_asgi.url}/alerts/{alert.uuid}/")
        approver.get_by_role("button", name="Approve and send to 30 subscribers").click()
        approver.get_by_text("Approved. Sending has started").wait_for()
        approver.locator("#alert-progress progress").wait_for(timeout=10_000)
        percent = int(
            approver.locator("[data-progress-percent]").get_attribute("data-progress-percent") or 0
        )
        approver.screenshot(path=str(screenshot_dir / "alert-sending.png"), full_page=True)
        assert percent < 100, "sending at 10 a second, the first look should be mid-way"
        approver.locator("[data-progress-percent='100']").wait_for(timeout=20_000)
        approver.get_by_text("30 of 30 handled").wait_for()
        approver.screenshot(path=str(screenshot_dir / "alert-sent.png"), full_page=True)
        page.reload()
        page.locator("[data-progress-percent='100']").wait_for()

        # The neighbour's phone shows the alert.
        handset.get_by_text("VERIFIED: immigration agents at International & 35th now.").wait_for(
            timeout=10_000
        )
        handset.screenshot(path=str(screenshot_dir / "phone-alert.png"), full_page=True)
        alert.refresh_from_db()
        assert alert.status in {AlertStatus.SENDING, AlertStatus.SENT}
    finally:
        desk.close()
        second_desk.close()
        phone.close()


def test_a_neighbour_signs_up_on_a_phone_with_a_code(
    browser: Any, live_asgi: LiveServer, service_area: Any, screenshot_dir: Path
) -> None:
    phone = browser.new_context(viewport={"width": 390, "height": 844}, is_mobile=True)
    try:
        page = phone.new_page()
        page.goto(f"{live_asgi.url}/join/?lang=es")
        page.get_by_label("Número de teléfono celular").fill("510 555 0466")
        page.get_by_label("Vecindario").select_option(label="Fruitvale")
        page.get_by_role("button", name="Enviarme un código").click()
        # Nothing ticked: the error names the box, and nothing was sent.
        page.get_by_text("Marque la casilla").wait_for()
        assert not OutboxMessage.objects.exists()
        page.get_by_label("Acepto recibir alertas").check()
        page.screenshot(path=str(screenshot_dir / "join-form-es.png"), full_page=True)
        page.get_by_role("button", name="Enviarme un código").click()
        page.get_by_label("Código del mensaje de texto").wait_for()
        sms = OutboxMessage.objects.get()
        code = re.search(r"\b(\d{6})\b", sms.text)
        assert code is not None and sms.language == "es"
        page.get_by_label("Código del mensaje de texto").fill(code.group(1))
        page.keyboard.press("Enter")
        page.get_by_text("Recibirá alertas verificadas para Fruitvale.").wait_for()
        page.screenshot(path=str(screenshot_dir / "join-done-es.png"), full_page=True)
        person = Subscriber.objects.get(phone_hash=phones.phone_hash("+15105550466"))
        assert person.status == SubscriberStatus.ACTIVE and person.language == "es"
    finally:
        phone.close()


def test_the_composer_sees_when_the_sender_is_too_slow_for_the_area(
    browser: Any, live_asgi: LiveServer, service_area: Any, settings: Any, screenshot_dir: Path
) -> None:
    # One text every 100 s and a 5-minute validity: three recipients get it in time.
    settings.RR_SMS_RATE_PER_SECOND = 0.01
    settings.RR_ALERT_VALIDITY_MINUTES = 5
    settings.RR_CONFIRMATIONS_REQUIRED = 0
    dani = make_user(Role.DISPATCHER, username="dani")
    incident = incident_at(FRUITVALE, IncidentStatus.VERIFIED, dani)
    subscriber(at=FRUITVALE, radius_m=200)
    for i in range(1, 5):  # 1.7 to 6.7 km north
        subscriber(at=(FRUITVALE[0] + i * 0.015, FRUITVALE[1]), radius_m=200)
    desk = browser.new_context(viewport={"width": 390, "height": 844}, is_mobile=True)
    try:
        page = desk.new_page()
        LoginPage(page, live_asgi.url).log_in("dani", "a-long-test-password")
        page.goto(f"{live_asgi.url}/alerts/incidents/{incident.uuid}/new/")
        page.wait_for_load_state("load")
        radius = page.get_by_label("Send to subscribers within")
        radius.select_option("10000")
        page.get_by_text("5 subscribers will get it.").wait_for()
        warning = page.locator("#audience .warn")
        warning.get_by_text("only 3 would get it in time and 2 would not").wait_for()
        page.screenshot(path=str(screenshot_dir / "alert-compose-too-slow.png"), full_page=True)
        # A smaller area fits in time: the warning goes away.
        radius.select_option("1000")
        page.locator("#audience .warn").wait_for(state="detached")
        assert "Sending takes about" in page.locator("#audience").inner_text()
    finally:
        desk.close()
