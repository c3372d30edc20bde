"""Two reminder senders at once (two workers, or a retry beside a slow run) send each
reminder once. On PostgreSQL they really overlap (row locks that skip what the other
holds); on SQLite the IMMEDIATE transactions take turns. The outcome is the same."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest

from accounts.models import Role
from cases import reminders
from cases.models import HearingReminder, ReminderLead, ReminderStatus
from cases.tests.hearing_factories import add_hearing, make_case, make_contact
from conftest import at_once, make_user
from messaging.models import OutboxMessage

CONTACTS = 10


@pytest.mark.django_db(transaction=True)
def test_two_senders_at_once_send_each_reminder_once(monkeypatch: pytest.MonkeyPatch) -> None:
    worker = make_user(Role.FAMILY_SUPPORT, username="fam")
    case = make_case(opened_by=worker)
    for _ in range(CONTACTS):
        make_contact(case)
    hearing = add_hearing(case, actor=worker)
    evening = reminders.due_times(hearing.starts_at)[ReminderLead.DAY_BEFORE]

    from messaging.outbox import queue_sms as real_queue

    in_flight = threading.Event()

    def slow_queue(**kwargs: Any) -> OutboxMessage:
        # Hold the claimed rows a little, so the other sender runs meanwhile.
        in_flight.set()
        time.sleep(0.02)
        return real_queue(**kwargs)

    monkeypatch.setattr(reminders, "queue_sms", slow_queue)
    results = at_once(2, lambda: reminders.send_due(now=evening, limit=3))
    assert in_flight.is_set()
    assert sum(r.sent for r in results) == CONTACTS
    assert OutboxMessage.objects.count() == CONTACTS
    assert OutboxMessage.objects.values("recipient_hash").distinct().count() == CONTACTS
    evening_rows = HearingReminder.objects.filter(lead=ReminderLead.DAY_BEFORE)
    assert set(evening_rows.values_list("status", flat=True)) == {ReminderStatus.SENT}
    assert evening_rows.exclude(outbox_message=None).count() == CONTACTS
