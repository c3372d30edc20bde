from __future__ import annotations

import threading
from argparse import ArgumentParser
from typing import Any

from django.core.management.base import BaseCommand
from django.utils.crypto import get_random_string
from django_tasks_db.management.commands.db_worker import Worker

from core import periodic


class Command(BaseCommand):
    help = (
        "Run background work: the Tasks database worker, plus the periodic housekeeping "
        "jobs (retrying unfinished intake, and later sweeps). Run one or more per host."
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
            worker.run()
        finally:
            stop.set()
