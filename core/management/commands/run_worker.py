from __future__ import annotations

import logging
import threading
import time
from argparse import ArgumentParser
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand
from django.db import InterfaceError, OperationalError, connections
from django.utils.crypto import get_random_string
from django_tasks_db.management.commands.db_worker import Worker

from core import periodic
from messaging import accepted, outbox

logger = logging.getLogger(__name__)

# How long the worker waits before asking again when the database is unreachable.
OUTAGE_PAUSE_SECONDS = 1.0
# How long a stopping worker waits for its sender's sends in flight.
SENDER_STOP_SECONDS = 15.0


class Command(BaseCommand):
    help = (
        "Run background work: the Tasks database worker, the outbox's sender, the texts "
        "the SMS webhook accepted to store later, and the periodic housekeeping jobs (retrying "
        "unfinished intake, and later sweeps). Run one or more per host."
    )

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument(
            "--interval",
            type=float,
            default=0.2,
            help="seconds to wait when the queue is empty (default 0.2)",
        )
        parser.add_argument(
            "--no-periodic", action="store_true", help="do not run the periodic jobs here"
        )

    def handle(self, *args: Any, **options: Any) -> None:
        from intake import language

        language.warm_up()
        stop = threading.Event()
        if not options["no_periodic"]:
            periodic.start_thread(stop)
        if settings.RR_SMS_ACCEPT_FIRST:
            # Texts the webhook accepted without storing: stored here as they come.
            accepted.start_thread(stop)
        # Sending, paced at the carrier's rate, in its own thread: never queued behind
        # the tasks, nor holding them up.
        sender = outbox.start_sender_thread(stop)
        worker = Worker(
            queue_names=["*"],
            interval=options["interval"],
            batch=False,
            backend_name="default",
            startup_delay=False,
            max_tasks=None,
            worker_id=get_random_string(32),
            excluded_queue_names=[],
        )
        worker.configure_signals()
        try:
            while worker.running:
                try:
                    worker.run()
                except (OperationalError, InterfaceError):
                    # A database restart must not end the worker: the task it was
                    # running is picked up again by the periodic sweeps.
                    logger.warning("Database unreachable; the worker pauses and resumes.")
                    connections.close_all()
                    time.sleep(OUTAGE_PAUSE_SECONDS)
        finally:
            stop.set()
            # No new send starts; those in flight are answered and recorded (the
            # provider's timeout bounds the wait).
            sender.join(timeout=SENDER_STOP_SECONDS)
