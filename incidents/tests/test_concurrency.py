"""Writers that race: on PostgreSQL these run in parallel for real; on SQLite the
IMMEDIATE transactions serialise them. The outcome must be the same on both."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import pytest
from django.db import connection, transaction

from conftest import FRUITVALE
from incidents import console
from incidents.models import ConsoleEvent, ConsoleEventKind, Incident
from intake.models import Report
from intake.tests.factories import web_report


def run_together(count: int, work: Callable[[int], object]) -> list[BaseException]:
    barrier = threading.Barrier(count)
    errors: list[BaseException] = []

    def runner(i: int) -> None:
        try:
            barrier.wait()
            work(i)
        except BaseException as exc:
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=runner, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return errors


@pytest.mark.django_db(transaction=True)
def test_simultaneous_reports_of_one_event_open_one_incident() -> None:
    errors = run_together(8, lambda i: web_report(f"report {i}", at=FRUITVALE))
    assert errors == []
    assert Report.objects.count() == 8
    assert Incident.objects.count() == 1
    assert Incident.objects.get().reports.count() == 8


@pytest.mark.django_db(transaction=True)
def test_console_events_become_visible_in_id_order() -> None:
    """A second publisher waits for the first to commit, so a reader that takes
    "everything above the last id I saw" can never skip an event."""
    first_published = threading.Event()
    timings: dict[str, float] = {}

    def slow_writer() -> None:
        with transaction.atomic():
            console.publish(ConsoleEventKind.INCIDENT, Report().uuid)
            first_published.set()
            time.sleep(0.5)
            timings["first_commit"] = time.monotonic()
        connection.close()

    def fast_writer() -> None:
        first_published.wait()
        with transaction.atomic():
            console.publish(ConsoleEventKind.INCIDENT, Report().uuid)
        timings["second_commit"] = time.monotonic()
        connection.close()

    threads = [threading.Thread(target=slow_writer), threading.Thread(target=fast_writer)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert timings["second_commit"] >= timings["first_commit"]
    ids = list(ConsoleEvent.objects.order_by("id").values_list("id", flat=True))
    assert len(ids) == 2
