"""The outbox: rows first, then sends that move forward only, at the configured rate."""

from __future__ import annotations

import itertools
import threading
import time
from datetime import timedelta
from typing import Any
from unittest import mock

import pytest
from django.db import transaction
from django.test import Client
from django.utils import timezone
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.django import TestCase

from conftest import committed, post_twilio
from core import phones
from messaging import outbox
from messaging.models import OptOut, OutboxKind, OutboxMessage, OutboxStatus
from messaging.providers import Sent, active_provider

TO = "+15105550177"


def queue(**kwargs: Any) -> OutboxMessage:
    return outbox.queue_sms(
        to=kwargs.pop("to", TO),
        body=kwargs.pop("body", "Verify a report near 35th Ave. Reply YES 4821"),
        language="en",
        kind=OutboxKind.OFFER,
        **kwargs,
    )


@pytest.mark.django_db
def test_the_console_provider_marks_messages_sent() -> None:
    message = queue()
    assert outbox.send_due() == 1
    message.refresh_from_db()
    assert message.status == OutboxStatus.SENT
    assert (message.provider_sid or "").startswith("CON")


@pytest.mark.django_db
def test_queueing_wakes_the_sender_after_commit() -> None:
    with committed():
        message = queue()
    message.refresh_from_db()
    assert message.status == OutboxStatus.SENT


@pytest.mark.django_db(transaction=True)
def test_a_rolled_back_transaction_sends_nothing() -> None:
    with pytest.raises(RuntimeError), transaction.atomic():
        queue()
        raise RuntimeError("the action failed")
    assert not OutboxMessage.objects.exists()


@pytest.mark.django_db
def test_opted_out_numbers_are_skipped_and_recorded() -> None:
    OptOut.objects.create(phone_hash=phones.phone_hash(TO))
    message = queue()
    assert message.status == OutboxStatus.SKIPPED
    assert outbox.send_due() == 0


@pytest.mark.django_db
def test_twilio_sends_through_the_real_client(twilio_api: Any) -> None:
    message = queue()
    outbox.send_due()
    message.refresh_from_db()
    assert message.status == OutboxStatus.SENT
    [sent] = twilio_api.messages
    assert (sent.to, sent.sender) == (TO, "+15105550000")
    assert message.provider_sid == sent.sid


@pytest.mark.django_db
def test_a_rate_limit_or_outage_is_retried_later(twilio_api: Any) -> None:
    twilio_api.fail_next(1, status=429, code=20429)
    twilio_api.fail_next(1, status=503, code=20503)
    message = queue()
    outbox.send_due()
    message.refresh_from_db()
    assert message.status == OutboxStatus.QUEUED and message.error_code == "20429"
    assert outbox.send_due() == 0  # not due yet
    OutboxMessage.objects.update(next_attempt_at=timezone.now())
    outbox.send_due()
    OutboxMessage.objects.update(next_attempt_at=timezone.now())
    outbox.send_due()
    message.refresh_from_db()
    assert message.status == OutboxStatus.SENT and message.attempts == 3
    assert len(twilio_api.messages) == 1


@pytest.mark.django_db
def test_an_unsubscribed_recipient_is_marked_opted_out(twilio_api: Any) -> None:
    twilio_api.fail_next(1, status=400, code=21610)
    message = queue()
    outbox.send_due()
    message.refresh_from_db()
    assert message.status == OutboxStatus.SKIPPED
    assert OptOut.objects.filter(phone_hash=phones.phone_hash(TO)).exists()


@pytest.mark.django_db
def test_a_permanent_error_fails_once(twilio_api: Any) -> None:
    twilio_api.fail_next(1, status=400, code=21211)
    message = queue()
    outbox.send_due()
    message.refresh_from_db()
    assert message.status == OutboxStatus.FAILED and message.error_code == "21211"


@pytest.mark.django_db
def test_a_message_past_its_validity_is_not_sent(twilio_api: Any) -> None:
    message = queue(valid_until=timezone.now() - timedelta(seconds=1))
    outbox.send_due()
    message.refresh_from_db()
    assert message.status == OutboxStatus.EXPIRED
    assert twilio_api.messages == []


@pytest.mark.django_db
def test_a_dead_senders_lease_is_released() -> None:
    message = queue()
    OutboxMessage.objects.filter(pk=message.pk).update(
        status=OutboxStatus.SENDING, lease_until=timezone.now() - timedelta(seconds=1)
    )
    assert outbox.release_expired_leases() == 1
    outbox.send_due()
    message.refresh_from_db()
    assert message.status == OutboxStatus.SENT


def _leased_then_crashed(message: OutboxMessage, *, accepted: bool) -> None:
    """A sender claimed the message and died, after or before the provider took it."""
    [claimed] = outbox._claim(timezone.now(), 1, "dead-sender")
    assert claimed.pk == message.pk
    if accepted:
        active_provider().send(to=claimed.contact.phone, body=claimed.text)


LATER = timedelta(seconds=61)


@pytest.mark.django_db
def test_a_send_cut_short_after_the_provider_accepted_is_not_sent_again(
    twilio_api: Any,
) -> None:
    message = queue()
    _leased_then_crashed(message, accepted=True)
    [accepted] = twilio_api.messages
    assert outbox.release_expired_leases(now=timezone.now() + LATER) == 0
    message.refresh_from_db()
    assert message.status == OutboxStatus.SENT and message.provider_sid == accepted.sid
    outbox.send_due()
    assert len(twilio_api.messages) == 1


@pytest.mark.django_db
def test_a_send_cut_short_before_the_provider_accepted_is_sent_once(twilio_api: Any) -> None:
    queue(to="+15105550178", body="the same words")  # another number: not this one's
    outbox.send_due()
    message = queue()
    _leased_then_crashed(message, accepted=False)
    assert outbox.release_expired_leases(now=timezone.now() + LATER) == 1
    outbox.send_due()
    message.refresh_from_db()
    assert message.status == OutboxStatus.SENT
    assert [m.to for m in twilio_api.messages] == ["+15105550178", TO]


@pytest.mark.django_db
def test_when_the_provider_cannot_say_the_message_waits(twilio_api: Any, settings: Any) -> None:
    message = queue()
    _leased_then_crashed(message, accepted=False)
    settings.TWILIO_API_BASE = "http://127.0.0.1:9"  # nothing listens: unreachable
    assert outbox.release_expired_leases(now=timezone.now() + LATER) == 0
    message.refresh_from_db()
    assert message.status == OutboxStatus.SENDING


@pytest.mark.django_db
def test_sends_are_paced_at_the_configured_rate(settings: Any) -> None:
    import time

    settings.RR_SMS_RATE_PER_SECOND = 20
    for i in range(10):
        queue(to=f"+1510555{100 + i:04d}")
    started = time.monotonic()
    assert outbox.send_due() == 10
    elapsed = time.monotonic() - started
    assert elapsed >= 9 / 20 * 0.95


def status_post(client: Client, sid: str, status: str, **extra: str) -> Any:
    return post_twilio(
        client,
        "/hooks/twilio/status",
        {"MessageSid": sid, "MessageStatus": status, "AccountSid": "ACtest", **extra},
    )


@pytest.mark.django_db
def test_status_callbacks_are_signed_and_move_forward_only(client: Client, twilio_api: Any) -> None:
    message = queue()
    outbox.send_due()
    message.refresh_from_db()
    sid = message.provider_sid
    assert sid
    assert (
        client.post(
            "/hooks/twilio/status", {"MessageSid": sid, "MessageStatus": "delivered"}
        ).status_code
        == 403
    )
    assert status_post(client, sid, "delivered").status_code == 204
    assert status_post(client, sid, "sent").status_code == 204  # late, older
    message.refresh_from_db()
    assert message.status == OutboxStatus.DELIVERED
    assert status_post(client, "", "delivered").status_code == 400


@pytest.mark.django_db
def test_a_21610_callback_opts_the_number_out(client: Client, twilio_api: Any) -> None:
    message = queue()
    outbox.send_due()
    message.refresh_from_db()
    status_post(client, str(message.provider_sid), "failed", ErrorCode="21610")
    assert OptOut.objects.filter(phone_hash=message.recipient_hash).exists()


RANK = {"sent": 2, "delivered": 3, "undelivered": 3, "failed": 3}


class CallbackOrder(TestCase):
    @settings(max_examples=40, deadline=None)
    @given(
        st.lists(
            st.sampled_from(["queued", "sending", "sent", "delivered", "undelivered", "failed"]),
            min_size=1,
            max_size=8,
        )
    )
    def test_any_order_of_callbacks_ends_in_the_first_final_state(
        self, statuses: list[str]
    ) -> None:
        message = OutboxMessage.objects.create(
            provider="twilio",
            kind=OutboxKind.OFFER,
            contact=outbox.contact_for(TO),
            recipient_hash=phones.phone_hash(TO),
            body="x",
            language="en",
            status=OutboxStatus.SENT,
            provider_sid=f"SM{message_counter()}",
        )
        for status in statuses:
            outbox.record_status(provider_sid=str(message.provider_sid), status=status)
        message.refresh_from_db()
        finals = [s for s in statuses if s in {"delivered", "undelivered", "failed"}]
        assert message.status == (finals[0] if finals else "sent")


_counter = iter(range(10**9))


def message_counter() -> int:
    return next(_counter)


@pytest.mark.django_db(transaction=True)
def test_only_one_sender_drains_at_a_time() -> None:
    """Another process (here: another thread with its own connection) holds the sender
    lock; this one then leaves the outbox to it."""
    import threading
    from unittest import mock

    from django.db import connection

    from core.locks import exclusive

    with mock.patch("messaging.tasks.send_queued_messages"):  # no wake-up: send by hand
        queue()
    holding, release = threading.Event(), threading.Event()

    def other_sender() -> None:
        with exclusive(outbox.SENDER_LOCK, ttl_seconds=30) as held:
            assert held
            holding.set()
            release.wait(10)
        connection.close()

    thread = threading.Thread(target=other_sender)
    thread.start()
    holding.wait(10)
    try:
        assert outbox.send_due() is None
    finally:
        release.set()
        thread.join()
    assert outbox.send_due() == 1


@pytest.mark.django_db
def test_a_sender_that_lost_its_lease_does_not_send_the_row(twilio_api: Any) -> None:
    message = queue()
    now = timezone.now()
    [claimed] = outbox._claim(now, 10, "first-sender")
    # The first sender stalls past its lease; the sweep queues the row again and a
    # second sender takes it.
    OutboxMessage.objects.update(lease_until=now - timedelta(seconds=1))
    outbox.release_expired_leases()
    [again] = outbox._claim(timezone.now(), 10, "second-sender")
    assert not outbox._still_ours(claimed, "first-sender")
    assert outbox._still_ours(again, "second-sender")
    outbox._record_outcome(again, "second-sender", outbox._send(again, "twilio"))
    message.refresh_from_db()
    assert message.status == OutboxStatus.SENT
    assert len(twilio_api.messages) == 1


@pytest.mark.django_db
def test_message_bodies_are_encrypted_at_rest() -> None:
    from django.db import connection

    queue(body="Verify near 35th. https://hotline.example.org/r/secret-token/")
    with connection.cursor() as cursor:
        cursor.execute("SELECT body FROM messaging_outboxmessage")
        assert "secret-token" not in cursor.fetchone()[0]


@pytest.mark.django_db
def test_contact_numbers_are_encrypted_at_rest() -> None:
    from django.db import connection

    from messaging.models import Contact

    contact = outbox.contact_for(TO)
    with connection.cursor() as cursor:
        cursor.execute("SELECT phone, phone_hash FROM messaging_contact")
        [(stored, stored_hash)] = cursor.fetchall()
    # Whole numbers only: a few digits can occur in base64 ciphertext by chance.
    assert stored.startswith("rr1.") and TO not in stored and TO.lstrip("+") not in stored
    assert TO not in stored_hash and stored_hash == phones.phone_hash(TO)
    assert Contact.objects.get(pk=contact.pk).phone == TO


@pytest.mark.django_db
def test_dedupe_keys_and_provider_ids_stay_unique_with_one_index_each() -> None:
    from django.db import IntegrityError, connection

    first, second, _third = queue(), queue(), queue()
    OutboxMessage.objects.filter(pk=first.pk).update(dedupe_key="alert:1:1", provider_sid="SM1")
    for field, value in (("dedupe_key", "alert:1:1"), ("provider_sid", "SM1")):
        with pytest.raises(IntegrityError), transaction.atomic():
            OutboxMessage.objects.filter(pk=second.pk).update(**{field: value})
    # Queued rows have no provider id (nor dedupe key) yet: any number of them.
    assert OutboxMessage.objects.filter(provider_sid__isnull=True, dedupe_key=None).count() == 2
    with connection.cursor() as cursor:
        constraints = connection.introspection.get_constraints(cursor, OutboxMessage._meta.db_table)
    for column in ("dedupe_key", "provider_sid"):
        indexes = [c for c in constraints.values() if c["index"] and column in c["columns"]]
        assert len(indexes) == 1, (column, indexes)


@pytest.mark.django_db
def test_a_number_has_one_contact_however_it_is_asked_for() -> None:
    from messaging.models import Contact

    first = outbox.contact_id_for(TO, phones.phone_hash(TO))
    assert outbox.contact_id_for(TO, phones.phone_hash(TO)) == first
    assert outbox.contact_for(TO).pk == first
    contact = Contact.objects.get()
    # The raw INSERT prepares each value as a save would.
    assert (contact.phone, contact.phone_hash) == (TO, phones.phone_hash(TO))
    assert contact.uuid.version == 4 and timezone.is_aware(contact.created_at)


@pytest.mark.django_db(transaction=True)
def test_a_concurrent_creation_of_the_same_contact_is_waited_for_not_an_error() -> None:
    """The second INSERT gives way to the first (still uncommitted) and reads its row,
    with no savepoint and no IntegrityError in the caller's transaction."""
    import threading

    from django.db import connection

    from messaging.models import Contact

    created = threading.Event()
    ids: dict[str, int] = {}

    def first() -> None:
        try:
            with transaction.atomic():
                ids["first"] = outbox.contact_id_for(TO, phones.phone_hash(TO))
                created.set()
                threading.Event().wait(0.3)  # the other INSERT waits meanwhile
        finally:
            connection.close()

    thread = threading.Thread(target=first)
    thread.start()
    assert created.wait(10)
    with transaction.atomic():
        ids["second"] = outbox.contact_id_for(TO, phones.phone_hash(TO))
        Contact.objects.get(pk=ids["second"])  # the transaction is still usable
    thread.join(10)
    assert ids["first"] == ids["second"] and Contact.objects.count() == 1


@pytest.mark.django_db
def test_a_fault_in_the_client_is_retried_not_fatal(monkeypatch: pytest.MonkeyPatch) -> None:
    first, second = queue(to="+15105550181"), queue(to="+15105550182")

    def broken(message: OutboxMessage, provider_name: str) -> Any:
        if message.pk == first.pk:
            raise RuntimeError("a bug in a client library")
        return Sent(provider_sid="CON1")

    monkeypatch.setattr(outbox, "_send", broken)
    assert outbox.send_due() == 2
    first.refresh_from_db()
    second.refresh_from_db()
    assert first.status == OutboxStatus.QUEUED and first.next_attempt_at > timezone.now()
    assert second.status == OutboxStatus.SENT


@pytest.mark.django_db
def test_many_sends_are_in_flight_at_once_but_started_at_the_rate(
    twilio_api: Any, settings: Any
) -> None:
    import time

    settings.RR_SMS_RATE_PER_SECOND = 100
    twilio_api.state.latency_seconds = 0.1  # ten times the interval between sends
    for i in range(40):
        queue(to=f"+1510555{1200 + i:04d}")
    started = time.monotonic()
    assert outbox.send_due() == 40
    elapsed = time.monotonic() - started
    # One at a time would take 40 x 0.1 s; paced at 100/s with sends overlapping, about
    # 0.4 s plus one latency.
    assert elapsed < 2.0
    assert twilio_api.state.max_seen_concurrent > 1
    arrivals = sorted(m.at for m in twilio_api.messages)
    gaps = [b - a for a, b in itertools.pairwise(arrivals)]
    assert sum(gaps) / len(gaps) >= 0.008  # never faster than the rate on average


@pytest.mark.django_db
def test_sending_at_the_providers_own_limit_never_meets_a_429(
    twilio_api: Any, settings: Any
) -> None:
    """The stand-in refuses a request when it has had its rate in the last second, as
    a provider with a per-second limit does; a sender configured at that same rate must
    stay under it in every window, however its sends are scheduled."""
    rate = 20
    settings.RR_SMS_RATE_PER_SECOND = rate
    twilio_api.state.rate_per_second = rate
    twilio_api.state.latency_seconds = 0.02
    numbers = [f"+1510555{2000 + i:04d}" for i in range(2 * rate)]
    for number in numbers:
        queue(to=number)
    assert outbox.send_due(budget_seconds=30) == len(numbers)
    assert twilio_api.state.rejected_429 == 0
    assert set(OutboxMessage.objects.values_list("status", flat=True)) == {OutboxStatus.SENT}
    assert sorted(m.to for m in twilio_api.messages) == numbers


@pytest.mark.django_db
def test_a_sender_does_not_renew_a_lease_that_already_ran_out(twilio_api: Any) -> None:
    # The sweep may be asking the provider about this row right now; if the sender
    # renewed and sent it, the sweep (finding nothing yet) would queue it again.
    queue()
    [claimed] = outbox._claim(timezone.now(), 10, "slow-sender")
    OutboxMessage.objects.update(lease_until=timezone.now() - timedelta(seconds=1))
    assert not outbox._still_ours(claimed, "slow-sender")
    outbox.release_expired_leases()
    assert OutboxMessage.objects.get().status == OutboxStatus.QUEUED
    assert outbox.send_due() == 1
    assert len(twilio_api.messages) == 1


@pytest.mark.django_db
def test_the_sweep_leaves_a_row_whose_lease_was_renewed_while_it_asked(
    twilio_api: Any, monkeypatch: Any
) -> None:
    queue()
    [claimed] = outbox._claim(timezone.now(), 10, "sender")
    read_lease = timezone.now() - timedelta(milliseconds=1)
    OutboxMessage.objects.update(lease_until=read_lease)
    provider = active_provider()

    def renewed_and_sent_while_asking(**kwargs: Any) -> None:
        # The sender renewed just before the expiry and sends while the sweep asks
        # the provider, which has not received the message yet.
        OutboxMessage.objects.update(lease_until=timezone.now() + outbox.lease())

    monkeypatch.setattr(
        type(provider), "find_sent", lambda self, **kw: renewed_and_sent_while_asking(**kw)
    )
    assert outbox.release_expired_leases() == 0
    row = OutboxMessage.objects.get()
    assert (row.status, row.lease_token) == (OutboxStatus.SENDING, "sender")
    sent = active_provider().send(to=claimed.contact.phone, body=claimed.text)
    outbox._record_outcome(claimed, "sender", sent)
    assert OutboxMessage.objects.get().status == OutboxStatus.SENT
    assert len(twilio_api.messages) == 1


@pytest.mark.django_db(transaction=True)
def test_a_workers_sender_thread_sends_and_its_task_leaves_the_queue_to_it() -> None:
    """run_worker sends from its own thread: a paced drain never holds up the task
    queue, and the sender task, run by that worker, returns at once."""
    from messaging.tasks import send_queued_messages

    stop = threading.Event()
    with mock.patch("messaging.tasks.outbox.send_due", wraps=outbox.send_due) as drains:
        thread = outbox.start_sender_thread(stop)
        try:
            assert outbox.sender_thread_running()
            send_queued_messages.call()  # what a worker's task queue would run
            # Committed (a transactional test), which also runs the sender task at once
            # (the test settings' immediate backend): only the thread may send it.
            message = queue()
            deadline = time.monotonic() + 10
            while OutboxMessage.objects.get(pk=message.pk).status != OutboxStatus.SENT:
                assert time.monotonic() < deadline, "the sender thread never sent it"
                time.sleep(0.05)
        finally:
            stop.set()
            thread.join(timeout=10)
    assert drains.call_count >= 1
    assert all(call.kwargs.get("stop") is stop for call in drains.call_args_list)
    assert not thread.is_alive()
    assert not outbox.sender_thread_running()  # the task sends again once it stopped


@pytest.mark.django_db(transaction=True)
def test_a_queued_text_wakes_the_sender_task_only_where_no_sender_thread_runs() -> None:
    """A worker's own sender thread finds a queued reply by itself; a web process has
    none, so it queues the sender task."""
    with mock.patch("messaging.tasks.send_queued_messages") as task:
        enqueued = task.enqueue
        queue()
        assert enqueued.call_count == 1
        with mock.patch.object(outbox, "sender_thread_running", return_value=True):
            queue(to="+15105550178")
            outbox.sweep()
        assert enqueued.call_count == 1
        outbox.sweep()  # two rows due, no sender thread: the sweep wakes the task
        assert enqueued.call_count == 2


@pytest.mark.django_db
def test_a_stopping_sender_starts_no_new_send() -> None:
    first, second = queue(), queue(to="+15105550178")
    stop = threading.Event()
    stop.set()
    assert outbox.send_due(stop=stop) == 0
    assert {m.status for m in OutboxMessage.objects.filter(pk__in=[first.pk, second.pk])} == {
        OutboxStatus.QUEUED
    }
    assert outbox.send_due() == 2
