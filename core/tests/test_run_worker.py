"""run_worker outlives a database restart instead of exiting with it."""

from __future__ import annotations

from typing import Any
from unittest import mock

from django.core.management import call_command
from django.db import OperationalError


def test_a_database_error_pauses_the_worker_instead_of_ending_it() -> None:
    runs = 0

    def run(self: Any) -> None:
        nonlocal runs
        runs += 1
        if runs == 1:
            raise OperationalError("the connection is closed")
        self.running = False  # stopped by a signal on the second run

    with (
        mock.patch("django_tasks_db.management.commands.db_worker.Worker.run", run),
        mock.patch("django_tasks_db.management.commands.db_worker.Worker.configure_signals"),
        mock.patch("core.management.commands.run_worker.OUTAGE_PAUSE_SECONDS", 0),
        mock.patch("intake.language.warm_up"),
        mock.patch("messaging.outbox.start_sender_thread") as sender,
    ):
        call_command("run_worker", "--no-periodic")
    assert runs == 2
    sender.return_value.join.assert_called_once()  # the sender finishes its sends
