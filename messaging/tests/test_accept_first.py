"""Accept first (RR_SMS_ACCEPT_FIRST): the webhook keeps each text in one INSERT and
answers with nothing; the worker stores and routes it in order and replies through the
outbox."""

from __future__ import annotations

from typing import Any
from unittest import mock

import pytest
from django.db import OperationalError
from django.test import Client

from conftest import post_twilio, sms_params
from incidents.models import Incident
from intake.models import Report
from messaging import accepted, outbox, spool
from messaging.models import (
    AcceptedMessage,
    InboundKind,
    InboundMessage,
    OptOut,
    OutboxKind,
    OutboxMessage,
    OutboxStatus,
)

PATH = "/hooks/twilio/sms"
SENDER = "+15105550123"
BODY = "Agents at the Fruitvale BART station right now"


@pytest.fixture(autouse=True)
def _accept_first(settings: Any) -> Any:
    settings.RR_SMS_ACCEPT_FIRST = True
    with mock.patch("messaging.spool.start_replayer"):
        yield


@pytest.mark.django_db
def test_the_webhook_keeps_the_text_encrypted_and_answers_nothing(client: Client) -> None:
    response = post_twilio(client, PATH, sms_params("SMa1", BODY))
    assert response.status_code == 200
    assert b"<Message" not in response.content
    assert not InboundMessage.objects.exists()
    (row,) = AcceptedMessage.objects.all()
    assert (row.sender, row.body, row.provider_sid) == (SENDER, BODY, "SMa1")
    sealed = AcceptedMessage.objects.values_list("sender", "body").get()
    raw = " ".join(value.token for value in sealed)  # type: ignore[attr-defined]
    assert SENDER not in raw and "Fruitvale" not in raw


@pytest.mark.django_db
def test_the_worker_stores_routes_and_replies_through_the_outbox(client: Client) -> None:
    post_twilio(client, PATH, sms_params("SMa2", BODY))
    result = accepted.store_accepted()
    assert result is not None and result.stored == 1
    assert not AcceptedMessage.objects.exists()
    message = InboundMessage.objects.get(provider_sid="SMa2")
    assert message.kind == InboundKind.REPORT
    # Nothing was answered in the webhook's response: the reply waits in the outbox.
    reply = OutboxMessage.objects.get(kind=OutboxKind.REPLY)
    assert reply.status == OutboxStatus.QUEUED
    assert "received your report" in reply.text


@pytest.mark.django_db
def test_the_worker_makes_the_report_and_its_incident_as_it_stores_the_text(
    client: Client,
) -> None:
    """No task is queued for the report: the worker that stores the text makes it, so
    a surge's texts do not wait twice (for the store, then for the task queue)."""
    from incidents.models import Incident

    post_twilio(client, PATH, sms_params("SMa7", "ICE agents here 37.77490, -122.41940"))
    with mock.patch("intake.tasks.process_inbound_message") as task:
        result = accepted.store_accepted()
    assert result is not None and result.stored == 1
    assert not task.enqueue.called
    message = InboundMessage.objects.get(provider_sid="SMa7")
    assert message.processed_at is not None
    report = Report.objects.get(inbound_message=message)
    assert report.incident == Incident.objects.get()
    assert report.lat is not None and report.lng is not None
    assert (round(report.lat, 4), round(report.lng, 4)) == (37.7749, -122.4194)


# transaction=True: each store commits, as a worker's does (inside a test's transaction
# the second text would find the lock and the NOTIFY already asked for by the first).
@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(
    ("joins", "sqlite", "postgresql"),
    [
        pytest.param(False, 27, 31, id="opens-an-incident"),
        pytest.param(True, 25, 29, id="joins-an-incident"),
    ],
)
def test_storing_a_located_surge_text_costs_the_worker_a_fixed_number_of_statements(
    client: Client, joins: bool, sqlite: int, postgresql: int
) -> None:
    """The worker's hot path in a surge: one text from a new number, with a place, that
    opens an incident or joins the one an earlier text opened (most texts of a raid).
    PostgreSQL adds four: the store lock and its release, the incidents lock and one
    NOTIFY (each asked once per transaction); ARCHITECTURE gives the list."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    if joins:
        post_twilio(client, PATH, sms_params("SMa8", "ICE agents here 37.77495, -122.41945"))
        accepted.store_accepted()
    post_twilio(client, PATH, sms_params("SMa9", "ICE agents here 37.77490, -122.41940"))
    # In the worker, whose sender thread sends the reply (here it would be sent at once).
    with (
        mock.patch.object(outbox, "sender_thread_running", return_value=True),
        CaptureQueriesContext(connection) as queries,
    ):
        result = accepted.store_accepted()
    assert result is not None and result.stored == 1
    assert Incident.objects.count() == 1
    statements = [q["sql"] for q in queries.captured_queries]
    if connection.vendor == "postgresql":
        assert sum("pg_advisory_xact_lock" in sql for sql in statements) == 1
        assert sum("pg_notify" in sql for sql in statements) == 1
        assert not any("django_tasks" in sql for sql in statements)
    # The incident matching found is updated as it was read (under the incidents lock),
    # not read again; the report and its incident reach the console in one INSERT.
    assert not any("FOR UPDATE" in sql for sql in statements)
    assert sum("incidents_consoleevent" in sql for sql in statements) == 1
    # With the pass's own (is anything waiting, the batch; on PostgreSQL also the store
    # lock and its release) and the transaction's BEGIN and COMMIT.
    expected = postgresql if connection.vendor == "postgresql" else sqlite
    assert len(statements) == expected, "\n".join(statements)


@pytest.mark.django_db
def test_a_report_that_fails_to_be_made_leaves_the_text_stored_for_the_sweep(
    client: Client,
) -> None:
    """A failure in making the report takes back only the report: the text is stored,
    answered and off the accepted queue, and the sweep makes its report later."""
    from intake.actions import RETRY_AFTER, queue_unprocessed_messages

    post_twilio(client, PATH, sms_params("SMa8", BODY))
    with mock.patch("intake.actions._make_report", side_effect=RuntimeError("a bug")):
        result = accepted.store_accepted()
    assert result is not None and result.stored == 1
    assert not AcceptedMessage.objects.exists()
    message = InboundMessage.objects.get(provider_sid="SMa8")
    assert message.processed_at is None and not Report.objects.exists()
    assert OutboxMessage.objects.filter(kind=OutboxKind.REPLY).count() == 1
    assert message.retry_at is not None
    assert queue_unprocessed_messages(now=message.retry_at + RETRY_AFTER) == 1
    assert Report.objects.get().inbound_message == message  # the tests' tasks run at once
    assert InboundMessage.objects.get(pk=message.pk).processed_at is not None


@pytest.mark.django_db(transaction=True)  # the webhook's own connection, in autocommit
def test_the_webhook_keeps_a_text_in_one_statement_outside_any_transaction(
    client: Client,
) -> None:
    """The surge's first hop: one INSERT in autocommit, no BEGIN and COMMIT round trips
    around it; a provider's retry of a text still waiting is refused by the unique key
    and answered 200 like the first, on a connection that stays usable."""
    from django.db import connection

    save = AcceptedMessage.save
    seen: list[tuple[bool, bool]] = []

    def recording_save(row: AcceptedMessage, *args: Any, **kwargs: Any) -> None:
        seen.append((connection.get_autocommit(), connection.in_atomic_block))
        save(row, *args, **kwargs)

    with mock.patch.object(AcceptedMessage, "save", recording_save):
        for _ in range(2):
            assert post_twilio(client, PATH, sms_params("SMa0", BODY)).status_code == 200
    assert seen == [(True, False), (True, False)]
    assert AcceptedMessage.objects.filter(provider_sid="SMa0").count() == 1


@pytest.mark.django_db
def test_a_retry_is_kept_once_and_stored_once(client: Client) -> None:
    for _ in range(2):
        assert post_twilio(client, PATH, sms_params("SMa3", BODY)).status_code == 200
    assert AcceptedMessage.objects.count() == 1
    accepted.store_accepted()
    # The provider retries after the worker stored it: accepted again, nothing new.
    post_twilio(client, PATH, sms_params("SMa3", BODY))
    result = accepted.store_accepted()
    assert result is not None and (result.stored, result.duplicates) == (0, 1)
    assert InboundMessage.objects.filter(provider_sid="SMa3").count() == 1
    assert OutboxMessage.objects.filter(kind=OutboxKind.REPLY).count() == 1
    assert not AcceptedMessage.objects.exists()


@pytest.mark.django_db
def test_a_senders_stop_and_start_keep_their_order(client: Client) -> None:
    post_twilio(client, PATH, sms_params("SMa4", "STOP"))
    post_twilio(client, PATH, sms_params("SMa5", "START"))
    accepted.store_accepted()
    sids = list(InboundMessage.objects.order_by("pk").values_list("provider_sid", flat=True))
    assert sids == ["SMa4", "SMa5"]
    assert not OptOut.objects.exists()


@pytest.mark.django_db
def test_a_text_the_normal_path_refuses_is_held_and_the_rest_go_on(client: Client) -> None:
    post_twilio(client, PATH, sms_params("SMbad", BODY))
    post_twilio(client, PATH, sms_params("SMgood", BODY))
    from messaging.actions import receive_sms as real

    def refuse_one(**kwargs: Any) -> Any:
        if kwargs["provider_sid"] == "SMbad":
            raise ValueError("a bug")
        return real(**kwargs)

    with mock.patch("messaging.accepted.receive_sms", side_effect=refuse_one):
        for _ in range(accepted.MAX_ATTEMPTS):
            accepted.store_accepted()
    assert InboundMessage.objects.filter(provider_sid="SMgood").exists()
    held = AcceptedMessage.objects.get()
    assert (held.provider_sid, held.held, held.attempts) == ("SMbad", True, 3)
    again = accepted.store_accepted()  # a held text is not tried again
    assert again is not None and again.handled == 0
    assert AcceptedMessage.objects.get().attempts == 3
    assert accepted.release_held() == 1
    accepted.store_accepted()
    assert InboundMessage.objects.filter(provider_sid="SMbad").exists()


@pytest.mark.django_db
def test_an_outage_while_storing_leaves_the_text_accepted(client: Client) -> None:
    post_twilio(client, PATH, sms_params("SMa6", BODY))
    with (
        mock.patch(
            "messaging.accepted.receive_sms", side_effect=OperationalError("connection refused")
        ),
        pytest.raises(OperationalError),
    ):
        accepted.store_accepted()
    row = AcceptedMessage.objects.get()
    assert (row.attempts, row.held) == (0, False)


@pytest.mark.django_db
def test_an_outage_while_accepting_spools_and_the_replay_joins_the_queue(
    client: Client,
) -> None:
    with mock.patch(
        "messaging.accepted.AcceptedMessage.save",
        side_effect=OperationalError("connection refused"),
    ):
        response = post_twilio(client, PATH, sms_params("SMa7", BODY))
    assert response.status_code == 200
    assert "received your report" in response.content.decode()
    assert not AcceptedMessage.objects.exists()
    result = spool.replay()
    assert result is not None and result.stored == 1
    row = AcceptedMessage.objects.get()
    assert "received your report" in row.answered
    accepted.store_accepted()
    reply = OutboxMessage.objects.get(in_reply_to__provider_sid="SMa7")
    # Answered in the webhook's response already: recorded as sent, not sent again.
    assert reply.status == OutboxStatus.SENT


@pytest.mark.django_db
@pytest.mark.parametrize(
    "params",
    [{"MessageSid": "", "SmsSid": ""}, {"From": ""}, {"NumMedia": "x"}, {"NumMedia": "11"}],
)
def test_bad_input_is_refused_and_keeps_nothing(client: Client, params: dict[str, str]) -> None:
    response = post_twilio(client, PATH, {**sms_params("SMa8", BODY), **params})
    assert response.status_code == 400
    assert not AcceptedMessage.objects.exists()


@pytest.mark.django_db
def test_an_unsigned_text_is_refused(client: Client) -> None:
    response = client.post(PATH, sms_params("SMa9", BODY))
    assert response.status_code == 403
    assert not AcceptedMessage.objects.exists()


@pytest.mark.django_db
def test_texts_accepted_and_never_stored_are_purged_with_the_inbound_ones() -> None:
    from datetime import timedelta

    from django.utils import timezone

    from core import retention

    accepted.accept(
        provider="twilio",
        provider_sid="SMold",
        sender=SENDER,
        recipient="",
        body=BODY,
        media_urls=[],
        received_at=timezone.now() - timedelta(days=400),
    )
    accepted.accept(
        provider="twilio",
        provider_sid="SMnew",
        sender=SENDER,
        recipient="",
        body=BODY,
        media_urls=[],
    )
    cutoff = timezone.now() - timedelta(days=30)
    assert retention.count_inbound(cutoff)["accepted"] == 1
    assert retention.purge_inbound(cutoff, 100)["accepted"] == 1
    assert list(AcceptedMessage.objects.values_list("provider_sid", flat=True)) == ["SMnew"]


@pytest.mark.django_db(transaction=True)
def test_the_worker_thread_stores_texts_as_they_come(client: Client) -> None:
    import threading
    import time

    stop = threading.Event()
    thread = accepted.start_thread(stop)
    try:
        post_twilio(client, PATH, sms_params("SMthread", BODY))
        deadline = time.monotonic() + 10
        while not InboundMessage.objects.filter(provider_sid="SMthread").exists():
            assert time.monotonic() < deadline, "the worker thread never stored the text"
            time.sleep(0.05)
    finally:
        stop.set()
        thread.join(timeout=10)
    assert not AcceptedMessage.objects.exists()
