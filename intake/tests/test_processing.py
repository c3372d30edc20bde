"""Stored messages always become reports: once, and again after a crash."""

from __future__ import annotations

from datetime import timedelta
from unittest import mock

import pytest
from django.utils import timezone

from core import periodic
from intake import actions
from intake.models import Report
from messaging.actions import receive_sms
from messaging.models import InboundMessage


def store(body: str = "ICE at the bus stop", sid: str = "SM1") -> InboundMessage:
    """Store a message as the webhook does, without running the queued processing (as if
    the worker died before it got to it)."""
    return receive_sms(
        provider="twilio", provider_sid=sid, sender="+15105550123", recipient="", body=body
    ).message


@pytest.mark.django_db
def test_processing_twice_makes_one_report() -> None:
    message = store()
    first = actions.create_report_from_message(message_id=message.pk)
    second = actions.create_report_from_message(message_id=message.pk)
    assert first is not None and second is None
    assert Report.objects.count() == 1
    message.refresh_from_db()
    assert message.processed_at is not None


@pytest.mark.django_db
def test_unfinished_messages_are_queued_again_after_a_while() -> None:
    message = store()
    assert actions.queue_unprocessed_messages() == 0  # too recent: its task may be running
    later = timezone.now() + actions.RETRY_AFTER + timedelta(seconds=1)
    assert actions.queue_unprocessed_messages(now=later) == 1
    message.refresh_from_db()
    assert message.processed_at is not None and message.attempts == 1
    assert Report.objects.get().inbound_message == message
    assert actions.queue_unprocessed_messages(now=later) == 0


@pytest.mark.django_db
def test_a_failure_leaves_the_message_to_be_retried() -> None:
    message = store()
    later = timezone.now() + actions.RETRY_AFTER + timedelta(seconds=1)
    with mock.patch("intake.actions.file_new_report", side_effect=RuntimeError("bug")):
        actions.queue_unprocessed_messages(now=later)
    message.refresh_from_db()
    assert message.processed_at is None and not Report.objects.exists()
    assert actions.queue_unprocessed_messages(now=later) == 0  # waits for its next turn
    actions.queue_unprocessed_messages(now=later + actions.retry_delay(1))
    assert Report.objects.count() == 1


@pytest.mark.django_db
def test_a_backlog_does_not_use_up_the_attempts() -> None:
    """A worker outage of an hour costs a handful of attempts, not all of them."""
    message = store()
    start = timezone.now()
    with mock.patch("intake.tasks.process_inbound_message"):
        for minute in range(61):
            actions.queue_unprocessed_messages(now=start + timedelta(minutes=minute))
    message.refresh_from_db()
    assert 1 <= message.attempts <= 7
    assert message.attempts < actions.MAX_ATTEMPTS


@pytest.mark.django_db
def test_retries_stop_after_the_limit() -> None:
    message = store()
    InboundMessage.objects.filter(pk=message.pk).update(attempts=actions.MAX_ATTEMPTS)
    later = timezone.now() + actions.RETRY_AFTER + timedelta(seconds=1)
    assert actions.queue_unprocessed_messages(now=later) == 0


@pytest.mark.django_db
def test_the_worker_runs_the_retry_sweep_on_a_timer() -> None:
    names = [job.name for job in periodic.jobs()]
    assert "intake.retry-unprocessed" in names
    calls: list[int] = []
    periodic.register("test.job", 10, lambda: calls.append(1))
    try:
        last_run: dict[str, float] = dict.fromkeys(names, 1000.0)
        periodic.run_due(last_run, 1000.0)
        periodic.run_due(last_run, 1005.0)
        periodic.run_due(last_run, 1011.0)
        assert calls == [1, 1]
    finally:
        periodic._jobs.pop("test.job")
