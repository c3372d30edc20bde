"""The SMS webhook: only Twilio gets in, every message is stored once, and the sender
gets an answer in their language."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from typing import Any
from unittest import mock

import pytest
from django.db import DatabaseError, connection
from django.test import Client

from conftest import at_once, post_twilio, sign, sms_params
from core import phones
from incidents.models import Incident
from intake.models import Report, ReportStatus
from messaging.models import InboundKind, InboundMessage, OptOut, OutboxMessage
from messaging.selectors import SenderFacts

PATH = "/hooks/twilio/sms"


def reply_of(response: Any) -> str:
    """The single <Message> of a TwiML answer (empty when there is none)."""
    root = ET.fromstring(response.content)  # noqa: S314 - our own server's TwiML
    assert root.tag == "Response"
    messages = root.findall("Message")
    assert len(messages) <= 1
    return messages[0].text or "" if messages else ""


def nothing_stored() -> bool:
    return (
        not InboundMessage.objects.exists()
        and not Report.objects.exists()
        and not OutboxMessage.objects.exists()
    )


@pytest.mark.django_db
class TestSignatures:
    def test_a_missing_signature_is_refused_and_nothing_is_stored(self, client: Client) -> None:
        response = post_twilio(client, PATH, sms_params("SM1", "ICE here"), signature="")
        assert response.status_code == 403
        assert nothing_stored()

    def test_a_forged_signature_is_refused(self, client: Client) -> None:
        params = sms_params("SM1", "ICE here")
        forged = sign(f"https://hotline.example.org{PATH}", params, token="not-the-token")
        response = post_twilio(client, PATH, params, signature=forged)
        assert response.status_code == 403
        assert nothing_stored()

    def test_a_signature_for_another_url_is_refused(self, client: Client) -> None:
        params = sms_params("SM1", "ICE here")
        response = post_twilio(
            client, PATH, params, signed_url="https://attacker.example.com/hooks/twilio/sms"
        )
        assert response.status_code == 403
        assert nothing_stored()

    def test_a_signature_over_other_parameters_is_refused(self, client: Client) -> None:
        params = sms_params("SM1", "ICE here")
        signature = sign(f"https://hotline.example.org{PATH}", {**params, "Body": "something else"})
        response = post_twilio(client, PATH, params, signature=signature)
        assert response.status_code == 403
        assert nothing_stored()

    def test_no_auth_token_means_nothing_validates(self, client: Client, settings: Any) -> None:
        settings.TWILIO_AUTH_TOKEN = ""
        response = post_twilio(client, PATH, sms_params("SM1", "ICE here"))
        assert response.status_code == 403
        assert nothing_stored()

    def test_behind_a_tls_proxy_the_public_url_validates(self, client: Client) -> None:
        # The app sees plain http on an internal host; Twilio signed the public https URL.
        response = post_twilio(
            client,
            PATH,
            sms_params("SM1", "ICE here"),
            HTTP_HOST="hotline.example.org",
            HTTP_X_FORWARDED_PROTO="https",
        )
        assert response.status_code == 200

    def test_the_query_string_is_part_of_the_signed_url(self, client: Client) -> None:
        params = sms_params("SM1", "ICE here")
        url = f"https://hotline.example.org{PATH}?line=main"
        response = client.post(
            f"{PATH}?line=main", params, HTTP_X_TWILIO_SIGNATURE=sign(url, params)
        )
        assert response.status_code == 200

    def test_get_is_not_allowed(self, client: Client) -> None:
        assert client.get(PATH).status_code == 405


@pytest.mark.django_db
class TestIntake:
    def test_a_text_becomes_a_report_and_gets_an_acknowledgement(self, client: Client) -> None:
        response = post_twilio(
            client, PATH, sms_params("SM1", "ICE agents at 35th and International")
        )
        assert response.status_code == 200
        assert response["Content-Type"].startswith("application/xml")
        assert "received your report" in reply_of(response)
        report = Report.objects.get()
        assert report.text == "ICE agents at 35th and International"
        assert report.channel == "sms"
        assert report.status == ReportStatus.UNPLACED
        assert report.reporter_hash == phones.phone_hash("+15105550123")
        assert report.reporter_contact == "+15105550123"
        message = InboundMessage.objects.get()
        assert message.processed_at is not None
        assert message.reply.body == reply_of(response)

    def test_a_message_with_coordinates_is_placed_and_grouped(
        self, client: Client, service_area: Any
    ) -> None:
        post_twilio(client, PATH, sms_params("SM1", "agents here 37.7766,-122.2265"))
        post_twilio(
            client, PATH, sms_params("SM2", "still here 37.7768,-122.2262", sender="+15105550188")
        )
        incident = Incident.objects.get()
        assert incident.reports.count() == 2
        assert incident.neighbourhood is not None and incident.neighbourhood.name == "Fruitvale"

    def test_the_same_message_five_times_in_sequence_is_one_report(self, client: Client) -> None:
        replies = {
            reply_of(post_twilio(client, PATH, sms_params("SMdup", "ICE at the school")))
            for _ in range(5)
        }
        assert len(replies) == 1
        assert InboundMessage.objects.count() == 1
        assert Report.objects.count() == 1
        assert OutboxMessage.objects.count() == 1

    def test_spanish_is_answered_in_spanish(self, client: Client) -> None:
        response = post_twilio(
            client, PATH, sms_params("SM1", "La migra está en la escuela de mis hijos ahora mismo")
        )
        assert "recibió su reporte" in reply_of(response)
        assert Report.objects.get().language == "es"

    def test_an_unclear_language_falls_back_to_the_senders_last_language(
        self, client: Client
    ) -> None:
        post_twilio(client, PATH, sms_params("SM1", "Hay agentes de inmigración en la tienda"))
        response = post_twilio(client, PATH, sms_params("SM2", "5th y 10th"))
        assert "recibió su reporte" in reply_of(response)

    def test_a_photo_without_text_is_a_report_that_asks_for_words(self, client: Client) -> None:
        params = sms_params(
            "SM1",
            "",
            NumMedia="1",
            MediaUrl0="https://api.twilio.com/media/ME1",
            MediaContentType0="image/jpeg",
        )
        response = post_twilio(client, PATH, params)
        assert response.status_code == 200
        assert "received your photo" in reply_of(response)
        report = Report.objects.get()
        assert report.media_count == 1
        assert report.text == ""

    def test_an_empty_message_is_kept_and_answered_but_not_a_report(self, client: Client) -> None:
        response = post_twilio(client, PATH, sms_params("SM1", "   "))
        assert "empty" in reply_of(response)
        assert InboundMessage.objects.get().kind == InboundKind.EMPTY
        assert not Report.objects.exists()

    @pytest.mark.parametrize(
        "params",
        [
            {"From": "+15105550123", "Body": "no sid"},
            {"MessageSid": "SM1", "Body": "no sender"},
            {"MessageSid": "SM1", "From": "+15105550123", "NumMedia": "lots"},
            {"MessageSid": "SM1", "From": "+15105550123", "NumMedia": "99"},
            {"MessageSid": "S" * 65, "From": "+15105550123"},
        ],
    )
    def test_malformed_webhooks_get_400_and_change_nothing(
        self, client: Client, params: dict[str, str]
    ) -> None:
        response = post_twilio(client, PATH, params)
        assert response.status_code == 400
        assert nothing_stored()

    def test_an_oversized_body_is_refused_before_it_is_read(self, client: Client) -> None:
        params = sms_params("SM1", "x" * 70_000)
        response = post_twilio(client, PATH, params)
        assert response.status_code == 413
        assert nothing_stored()

    def test_a_very_long_body_is_stored_up_to_the_provider_limit(self, client: Client) -> None:
        post_twilio(client, PATH, sms_params("SM1", "agents " * 400))
        assert len(Report.objects.get().text) <= 1600

    def test_a_database_error_that_is_not_an_outage_answers_503_so_twilio_retries(
        self, client: Client
    ) -> None:
        # An outage (OperationalError) goes to the spool instead: messaging/tests/test_spool.py
        with mock.patch("messaging.spool.receive_sms", side_effect=DatabaseError("refused")):
            response = post_twilio(client, PATH, sms_params("SM1", "ICE here"))
        assert response.status_code == 503
        assert response["Retry-After"]


@pytest.mark.django_db
class TestKeywords:
    @pytest.mark.parametrize("word", ["STOP", "stop", "Stop.", "UNSUBSCRIBE", "parar", "Cancelar"])
    def test_stop_words_opt_out_and_never_become_reports(self, client: Client, word: str) -> None:
        response = post_twilio(client, PATH, sms_params("SM1", word))
        assert response.status_code == 200
        assert "START" in reply_of(response)
        assert not Report.objects.exists()
        assert OptOut.objects.filter(phone_hash=phones.phone_hash("+15105550123")).exists()
        assert InboundMessage.objects.get().kind == InboundKind.KEYWORD

    def test_start_reverses_stop(self, client: Client) -> None:
        post_twilio(client, PATH, sms_params("SM1", "STOP"))
        post_twilio(client, PATH, sms_params("SM2", "START"))
        assert not OptOut.objects.exists()
        assert not Report.objects.exists()

    def test_an_opted_out_number_is_still_heard_but_not_answered(self, client: Client) -> None:
        post_twilio(client, PATH, sms_params("SM1", "STOP"))
        response = post_twilio(client, PATH, sms_params("SM2", "ICE at the corner store"))
        assert response.status_code == 200
        assert reply_of(response) == ""
        assert Report.objects.count() == 1
        assert OutboxMessage.objects.count() == 1  # only the STOP confirmation

    def test_help_answers_with_the_network_name(self, client: Client) -> None:
        reply = reply_of(post_twilio(client, PATH, sms_params("SM1", "HELP")))
        assert "Test Rapid Response" in reply and "STOP" in reply

    def test_ayuda_answers_in_spanish(self, client: Client) -> None:
        reply = reply_of(post_twilio(client, PATH, sms_params("SM1", "¡Ayuda!")))
        assert "PARAR" in reply or "STOP" in reply
        assert "texto" in reply.lower() or "envíe" in reply.lower()

    def test_a_keyword_inside_a_sentence_is_a_report(self, client: Client) -> None:
        post_twilio(client, PATH, sms_params("SM1", "stop them, ICE is at the corner"))
        assert Report.objects.count() == 1


@pytest.mark.django_db(transaction=True)
def test_the_same_message_from_parallel_threads_is_stored_once() -> None:
    params = sms_params("SMrace", "ICE vans outside the church")
    statuses = at_once(5, lambda: post_twilio(Client(), PATH, params).status_code)
    assert statuses == [200] * 5
    assert InboundMessage.objects.count() == 1
    assert Report.objects.count() == 1
    assert OutboxMessage.objects.count() == 1


@pytest.mark.django_db
def test_sender_facts_answers_four_questions_in_one_statement() -> None:
    from django.test.utils import CaptureQueriesContext

    from messaging.models import Contact
    from messaging.selectors import sender_facts

    sender = phones.phone_hash("+15105550123")
    with CaptureQueriesContext(connection) as ctx:
        facts = sender_facts(sender, provider="twilio", provider_sid="SM1")
    assert len(ctx) == 1
    assert facts == SenderFacts(None, False, False, None)
    post_twilio(Client(), PATH, sms_params("SM1", "Hay agentes de inmigración en la esquina"))
    post_twilio(Client(), PATH, sms_params("SM2", ""))  # no text: no language of its own
    OptOut.objects.create(phone_hash=sender)
    contact = Contact.objects.get(phone_hash=sender)
    facts = sender_facts(sender, provider="twilio", provider_sid="SM1")
    assert facts == SenderFacts("es", True, True, contact.pk)
    other = sender_facts(phones.phone_hash("+15105550999"), provider="twilio", provider_sid="SM9")
    assert other == SenderFacts(None, False, False, None)


def database_tasks() -> Any:
    from django.test import override_settings

    return override_settings(
        TASKS={"default": {"BACKEND": "django_tasks_db.DatabaseBackend", "QUEUES": ["default"]}}
    )


@pytest.mark.django_db(transaction=True)
def test_a_report_text_and_its_task_are_one_commit() -> None:
    """With tasks stored in the database, the report's task row is written inside the
    webhook's transaction: both are there, or (the transaction failing) neither."""
    from django.test.utils import CaptureQueriesContext
    from django_tasks_db.models import DBTaskResult

    with database_tasks():
        with CaptureQueriesContext(connection) as ctx:
            response = post_twilio(Client(), PATH, sms_params("SM1", "ICE at the bus stop"))
        assert response.status_code == 200
        message = InboundMessage.objects.get()
        [task] = DBTaskResult.objects.all()
        assert task.args_kwargs["kwargs"] == {"message_id": message.pk}
        statements = [q["sql"].split()[0].upper() for q in ctx.captured_queries]
        # One transaction: nothing is written after its COMMIT.
        assert statements.count("COMMIT") <= 1
        tail = statements[statements.index("COMMIT") + 1 :] if "COMMIT" in statements else []
        assert "INSERT" not in tail
        with mock.patch("core.audit.record", side_effect=DatabaseError("audit insert failed")):
            failed = post_twilio(Client(), PATH, sms_params("SM2", "ICE at the bus stop"))
        assert failed.status_code == 503  # the provider delivers it again
        assert InboundMessage.objects.count() == 1 and DBTaskResult.objects.count() == 1


@pytest.mark.django_db(transaction=True)  # the webhook's transaction is the outermost
def test_a_report_text_costs_a_known_number_of_statements() -> None:
    """The webhook is the hot path of a surge, and on PostgreSQL each statement is a
    round trip: one lookup (sender_facts, which also finds the number's contact), the
    message, its task, the contact for a new number (no savepoint: the INSERT gives way
    to a concurrent one), the reply row and the audit event. A number seen before skips
    the contact."""
    from django.test.utils import CaptureQueriesContext

    def statements(sid: str) -> list[str]:
        with database_tasks(), CaptureQueriesContext(connection) as ctx:
            post_twilio(Client(), PATH, sms_params(sid, "ICE at the bus stop"))
        captured = [q["sql"] for q in ctx.captured_queries]
        assert not any(s.startswith(("SAVEPOINT", "RELEASE")) for s in captured)
        # SQLite's BEGIN and COMMIT go through the cursor; PostgreSQL's do not.
        return [s for s in captured if not s.startswith(("BEGIN", "COMMIT"))]

    first = statements("SM1")
    assert len(first) == 6, "\n".join(s[:100] for s in first)
    again = statements("SM2")
    assert len(again) == 5, "\n".join(s[:100] for s in again)
