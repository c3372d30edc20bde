"""The worker's background loop: works while there is work, waits when idle, outlasts
an outage and a failing step, and stops when asked."""

from __future__ import annotations

import logging
import threading

import pytest
from django.db import OperationalError

from core.loops import run_until_stopped


class Steps:
    """A step that plays a script of outcomes, then stops the loop."""

    def __init__(self, stop: threading.Event, outcomes: list[object]) -> None:
        self.stop = stop
        self.outcomes = list(outcomes)
        self.calls = 0

    def __call__(self) -> bool:
        self.calls += 1
        outcome = self.outcomes.pop(0)
        if not self.outcomes:
            self.stop.set()
        if isinstance(outcome, BaseException):
            raise outcome
        return bool(outcome)


class CountingStop(threading.Event):
    """Records how long the loop asked to wait, without waiting."""

    def __init__(self) -> None:
        super().__init__()
        self.waits: list[float] = []

    def wait(self, timeout: float | None = None) -> bool:
        self.waits.append(timeout or 0.0)
        return self.is_set()


def test_work_is_followed_at_once_and_idleness_by_the_poll_wait() -> None:
    stop = CountingStop()
    step = Steps(stop, [True, True, False, True])
    run_until_stopped(stop, step, poll_seconds=0.25, what="the test loop")
    assert step.calls == 4
    assert stop.waits == [0.25]  # only after the idle step


def test_an_outage_and_a_failing_step_back_off_and_the_loop_goes_on(
    caplog: pytest.LogCaptureFixture,
) -> None:
    stop = CountingStop()
    step = Steps(stop, [OperationalError("gone"), RuntimeError("broken"), True])
    with caplog.at_level(logging.WARNING, logger="core.loops"):
        run_until_stopped(stop, step, poll_seconds=0.25, what="the test loop", backoff_seconds=2)
    assert step.calls == 3
    assert stop.waits == [2, 2]
    messages = [record.getMessage() for record in caplog.records]
    assert messages == [
        "Database unreachable; the test loop waits.",
        "The test loop failed; trying again.",
    ]


def test_a_loop_asked_to_stop_takes_no_step() -> None:
    stop = CountingStop()
    stop.set()
    step = Steps(stop, [True])
    run_until_stopped(stop, step, poll_seconds=0.25, what="the test loop")
    assert step.calls == 0


@pytest.mark.django_db(transaction=True)
def test_a_stopped_loop_closes_its_threads_database_connection() -> None:
    """A worker's loops run in threads of their own, each with its own connection; one
    left open after the loop stops would hold on to the database."""
    from django.db import connections

    stop = threading.Event()
    used: list[object] = []

    def step() -> bool:
        with connections["default"].cursor() as cursor:
            cursor.execute("SELECT 1")
        used.append(connections["default"])
        stop.set()
        return True

    thread = threading.Thread(
        target=run_until_stopped, args=(stop, step), kwargs={"poll_seconds": 0.1, "what": "t"}
    )
    thread.start()
    thread.join(timeout=10)
    assert not thread.is_alive()
    (thread_connection,) = used
    assert thread_connection is not connections["default"]  # the thread's own
    assert thread_connection.connection is None  # type: ignore[attr-defined]
