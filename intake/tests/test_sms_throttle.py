"""Reports by text are limited per sender: nothing is lost (every text is stored and
shown to dispatchers), but past the limit texts join the sender's latest report instead
of opening new rows, and the sender gets one "we have your reports" reply per window.
Keywords, responders and dispatchers are never throttled."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from typing import Any

import pytest
from django.core.cache import cache
from django.test import Client
from django.utils import translation

from accounts.tests.test_login import stored_cache_entries
from conftest import FRUITVALE, post_twilio, sms_params
from core import phones
from core.models import AuditAction, AuditEvent
from incidents import actions as incident_actions
from incidents.models import Incident, IncidentStatus
from intake import throttle
from intake.models import Report
from messaging.models import InboundMessage

PATH = "/hooks/twilio/sms"
SENDER = "+15105550177"
LIMIT = 5  # RR_SMS_REPORTS_PER_SENDER's default


def reply_of(response: Any) -> str:
    root = ET.fromstring(response.content)  # noqa: S314 - our own server's TwiML
    messages = root.findall("Message")
    return (messages[0].text or "") if messages else ""


def text(client: Client, number: int, body: str, sender: str = SENDER) -> str:
    response = post_twilio(client, PATH, sms_params(f"SM{number:04d}", body, sender=sender))
    assert response.status_code == 200
    return reply_of(response)


def flood(client: Client, count: int, sender: str = SENDER, start: int = 0) -> list[str]:
    lat, lng = FRUITVALE
    return [
        text(client, start + n, f"Agents at {lat:.5f},{lng:.5f} number {n} right now", sender)
        for n in range(count)
    ]


@pytest.mark.django_db
class TestSenderLimit:
    def test_past_the_limit_texts_join_the_latest_report(self, client: Client) -> None:
        replies = flood(client, LIMIT + 4)
        assert InboundMessage.objects.count() == LIMIT + 4  # never lose a message
        assert InboundMessage.objects.filter(processed_at__isnull=True).count() == 0
        reports = list(Report.objects.order_by("received_at", "pk"))
        assert len(reports) == LIMIT
        latest = reports[-1]
        # Everything the sender wrote is on a report a dispatcher sees.
        for n in range(LIMIT - 1, LIMIT + 4):
            assert f"number {n} right now" in latest.text
        assert latest.text.count("[+ ") == 4
        added = AuditEvent.objects.filter(action=AuditAction.REPORT_TEXT_ADDED)
        assert added.count() == 4
        assert set(added.values_list("target_id", flat=True)) == {str(latest.uuid)}
        # An acknowledgement for each report, then one notice, then silence.
        assert all("received your report" in reply for reply in replies[:LIMIT])
        assert "we have your reports" in replies[LIMIT]
        assert replies[LIMIT + 1 :] == ["", "", ""]

    def test_the_providers_retries_do_not_count(self, client: Client) -> None:
        replies = flood(client, LIMIT - 1)
        for _ in range(3):
            assert text(client, LIMIT - 2, "a retry of the last text") == replies[-1]
        assert "received your report" in text(client, 800, "Agents at the corner store")
        assert Report.objects.count() == LIMIT

    def test_photos_of_a_throttled_text_are_counted_on_the_report(self, client: Client) -> None:
        flood(client, LIMIT)
        post_twilio(
            client,
            PATH,
            sms_params(
                "SM9999",
                "",
                sender=SENDER,
                NumMedia="1",
                MediaUrl0="https://api.twilio.com/media/ME1",
                MediaContentType0="image/jpeg",
            ),
        )
        assert Report.objects.count() == LIMIT
        assert Report.objects.order_by("-received_at", "-pk").first().media_count == 1  # type: ignore[union-attr]

    def test_other_senders_are_not_affected(self, client: Client) -> None:
        flood(client, LIMIT + 2)
        reply = text(client, 500, "ICE van on Foothill Blvd", sender="+15105550188")
        assert "received your report" in reply
        assert Report.objects.count() == LIMIT + 1

    def test_the_limit_resets_with_the_window(self, client: Client, settings: Any) -> None:
        flood(client, LIMIT + 1)
        assert Report.objects.count() == LIMIT
        Report.objects.update(received_at=Report.objects.first().received_at.replace(year=2020))  # type: ignore[union-attr]
        cache.clear()  # the counter's window is over too
        assert "received your report" in text(client, 900, "Agents again at the school")
        assert Report.objects.count() == LIMIT + 1

    def test_the_notice_is_in_the_senders_language(
        self, client: Client, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        languages: list[str | None] = []
        original = throttle.throttled_reply

        def recording() -> str:
            languages.append(translation.get_language())
            return original()

        monkeypatch.setattr(throttle, "throttled_reply", recording)
        for n in range(LIMIT + 1):
            text(client, n, f"Hay agentes de inmigración en la parada del autobús {n}")
        assert languages == ["es"]

    def test_the_counter_is_keyed_by_hash_and_holds_no_number(self, client: Client) -> None:
        flood(client, LIMIT + 2)
        stored = stored_cache_entries()
        assert "ratelimit:" in stored
        digits = SENDER.lstrip("+")
        for form in (SENDER, digits, digits[-7:], phones.phone_hash(SENDER)):
            assert form not in stored

    def test_with_the_cache_down_messages_are_kept_and_reports_still_capped(
        self, client: Client, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        def down(*args: Any, **kwargs: Any) -> Any:
            raise ConnectionError("cache down")

        monkeypatch.setattr(cache, "add", down)
        monkeypatch.setattr(cache, "incr", down)
        replies = flood(client, LIMIT + 3)
        assert InboundMessage.objects.count() == LIMIT + 3
        assert Report.objects.count() == LIMIT  # the database count still decides
        # The texts that opened reports are acknowledged; past the cap the notice's
        # counter cannot be kept, so those texts are stored without a reply rather
        # than each getting one.
        assert all("received your report" in reply for reply in replies[:LIMIT])
        assert not any("received your report" in reply for reply in replies[LIMIT:])


@pytest.mark.django_db
class TestNeverThrottled:
    def test_keywords_still_work_past_the_limit(self, client: Client) -> None:
        flood(client, LIMIT + 2)
        assert "STOP" in text(client, 600, "HELP")
        assert "no more messages" in text(client, 601, "STOP")
        assert "receive messages from this number again" in text(client, 602, "START")
        assert Report.objects.count() == LIMIT

    def test_join_still_works_past_the_limit(self, client: Client, service_area: Any) -> None:
        flood(client, LIMIT + 2)
        reply = text(client, 700, "JOIN Fruitvale")
        assert "YES" in reply

    def test_responders_are_never_throttled(self, client: Client) -> None:
        from dispatch.tests.factories import responder

        volunteer = responder(phone="+15105550190")
        assert volunteer.active
        flood(client, LIMIT + 3, sender="+15105550190")
        assert Report.objects.count() == LIMIT + 3

    def test_dispatchers_are_never_throttled(self, client: Client) -> None:
        from calls.tests.factories import dispatcher_on_shift

        dispatcher_on_shift("dani", "+15105550191")
        flood(client, LIMIT + 2, sender="+15105550191")
        assert Report.objects.count() == LIMIT + 2


@pytest.mark.django_db
def test_a_text_after_the_senders_incident_closed_opens_a_new_report(
    client: Client, dispatcher: Any
) -> None:
    flood(client, LIMIT)
    incident = Incident.objects.get()
    incident_actions.change_status(
        actor=dispatcher, incident=incident, status=IncidentStatus.CLOSED, reason="they left"
    )
    lat, lng = FRUITVALE
    text(client, 900, f"They are back at {lat:.5f},{lng:.5f} with two vans")
    # A closed incident is off the console: the new sighting must not be buried in it.
    newest = Report.objects.order_by("-received_at", "-pk").first()
    assert newest is not None and "two vans" in newest.text
    assert newest.incident is not None and newest.incident.is_open
    closed_texts = [report.text for report in Report.objects.filter(incident=incident)]
    assert not any("two vans" in body for body in closed_texts)
