"""Per-transaction locks and marks: taken once in a transaction, again after a savepoint
that took them is rolled back, and again in the next transaction."""

from __future__ import annotations

import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext

from core.locks import first_time_in_transaction, serialize


@pytest.mark.django_db(transaction=True)  # real transactions, so the second is new
def test_a_mark_is_first_once_per_transaction_and_forgotten_with_its_savepoint() -> None:
    with transaction.atomic():
        assert first_time_in_transaction("a")
        assert not first_time_in_transaction("a")
        assert first_time_in_transaction("b")
        try:
            with transaction.atomic():
                assert first_time_in_transaction("c")
                raise RuntimeError("rolled back")
        except RuntimeError:
            pass
        assert first_time_in_transaction("c")  # the savepoint took its mark with it
        with transaction.atomic():
            assert not first_time_in_transaction("a")  # a savepoint sees its transaction's
    with transaction.atomic():
        assert first_time_in_transaction("a")


def test_a_mark_outside_a_transaction_is_refused() -> None:
    with pytest.raises(RuntimeError):
        first_time_in_transaction("a")


@pytest.mark.django_db
def test_the_lock_is_asked_for_once_per_transaction() -> None:
    with transaction.atomic(), CaptureQueriesContext(connection) as queries:
        for _ in range(3):
            serialize("test-lock")
        serialize("another-lock")
    asked = [q["sql"] for q in queries.captured_queries if "pg_advisory_xact_lock" in q["sql"]]
    assert len(asked) == (2 if connection.vendor == "postgresql" else 0)


@pytest.mark.django_db
def test_two_console_events_in_one_transaction_send_one_notice() -> None:
    import uuid

    from incidents import console
    from incidents.models import ConsoleEvent, ConsoleEventKind

    with transaction.atomic(), CaptureQueriesContext(connection) as queries:
        console.publish(ConsoleEventKind.REPORT, uuid.uuid4())
        console.publish(ConsoleEventKind.INCIDENT, uuid.uuid4())
        hooks = list(transaction.get_connection().run_on_commit)
    assert ConsoleEvent.objects.count() == 2
    notices = [q["sql"] for q in queries.captured_queries if "pg_notify" in q["sql"]]
    assert len(notices) == (1 if connection.vendor == "postgresql" else 0)
    wakes = [hook for _sids, hook, *_ in hooks if getattr(hook, "__name__", "") == "wake"]
    assert len(wakes) == 1
