"""Housekeeping jobs that the worker runs on a timer (see `manage.py run_worker`).

Each job must be safe to run at any time and from several workers at once.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from django.db import close_old_connections

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class PeriodicJob:
    name: str
    every_seconds: float
    run: Callable[[], object]


_jobs: dict[str, PeriodicJob] = {}


def register(name: str, every_seconds: float, run: Callable[[], object]) -> None:
    _jobs[name] = PeriodicJob(name, every_seconds, run)


def jobs() -> list[PeriodicJob]:
    return list(_jobs.values())


def run_due(last_run: dict[str, float], now: float) -> None:
    for job in jobs():
        if now - last_run.get(job.name, 0.0) < job.every_seconds:
            continue
        last_run[job.name] = now
        try:
            job.run()
        except Exception:
            logger.exception("Periodic job %s failed; it will run again.", job.name)
        finally:
            close_old_connections()


def start_thread(stop: threading.Event, *, tick_seconds: float = 1.0) -> threading.Thread:
    def loop() -> None:
        last_run: dict[str, float] = {}
        while not stop.is_set():
            run_due(last_run, time.monotonic())
            stop.wait(tick_seconds)

    thread = threading.Thread(target=loop, name="periodic-jobs", daemon=True)
    thread.start()
    return thread
