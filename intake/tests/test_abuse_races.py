"""Races on the abuse limits: on PostgreSQL these threads run in parallel for real; on
SQLite the IMMEDIATE transactions serialise them. The outcome must be the same."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
from django.utils import timezone

from core import phones
from incidents.tests.test_concurrency import run_together
from intake import proof_of_work
from intake.actions import WebReport, create_report_from_message, submit_web_report
from intake.models import Report, SpentChallenge
from intake.tests.pow import solved_payload
from messaging.models import InboundMessage

LIMIT = 5  # RR_SMS_REPORTS_PER_SENDER's default


@pytest.mark.django_db(transaction=True)
def test_one_payload_posted_at_once_by_many_files_one_report() -> None:
    solved = proof_of_work.verify(solved_payload())
    refused: list[int] = []

    def post(i: int) -> None:
        try:
            submit_web_report(
                WebReport(
                    text=f"agents {i}",
                    language="en",
                    submission_key=uuid.uuid4(),
                    observed_at=timezone.now(),
                    location_text="Fruitvale",
                    challenge=solved,
                )
            )
        except proof_of_work.ChallengeAlreadyUsed:
            refused.append(i)

    assert run_together(6, post) == []
    assert Report.objects.count() == 1
    assert len(refused) == 5
    assert SpentChallenge.objects.count() == 1


@pytest.mark.django_db(transaction=True)
def test_a_burst_from_one_sender_processed_at_once_opens_only_the_limit() -> None:
    sender = "+15105550199"
    start = timezone.now() - timedelta(seconds=30)
    messages = [
        InboundMessage.objects.create(
            provider="console",
            provider_sid=f"SMrace{n:03d}",
            received_at=start + timedelta(seconds=n),
            sender=sender,
            sender_hash=phones.phone_hash(sender),
            body=f"Agents on 14th St, text number {n}",
            language="en",
        )
        for n in range(LIMIT + 5)
    ]
    errors = run_together(
        len(messages), lambda i: create_report_from_message(message_id=messages[i].pk)
    )
    assert errors == []
    assert Report.objects.count() == LIMIT
    assert not InboundMessage.objects.filter(processed_at__isnull=True).exists()
    everything = "\n".join(report.text for report in Report.objects.all())
    for n in range(LIMIT + 5):  # never lose a message
        assert f"text number {n}" in everything
