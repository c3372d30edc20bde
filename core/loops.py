"""The shape shared by a worker's background loops (storing accepted texts, sending the
outbox): do a step while there is work, wait a little when there is none, and outlast
the database going away and any one step failing."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from django.db import InterfaceError, OperationalError, close_old_connections, connection

logger = logging.getLogger(__name__)

# How long a loop waits after the database refused it or a step failed.
BACKOFF_SECONDS = 1.0


def run_until_stopped(
    stop: threading.Event,
    step: Callable[[], bool],
    *,
    poll_seconds: float,
    what: str,
    backoff_seconds: float = BACKOFF_SECONDS,
) -> None:
    """Call ``step`` until ``stop`` is set. ``step`` returns whether it found work; when
    it did not, the loop waits ``poll_seconds``. ``what`` names the loop in the log.
    The loop's database connection (its thread's own) is closed when it stops: nothing
    else would, and an open one keeps PostgreSQL from dropping a database or counts
    against its connection limit after the worker has let the loop go."""
    try:
        _loop(stop, step, poll_seconds=poll_seconds, what=what, backoff_seconds=backoff_seconds)
    finally:
        connection.close()


def _loop(
    stop: threading.Event,
    step: Callable[[], bool],
    *,
    poll_seconds: float,
    what: str,
    backoff_seconds: float,
) -> None:
    while not stop.is_set():
        try:
            worked = step()
        except (OperationalError, InterfaceError):
            logger.warning("Database unreachable; %s waits.", what)
            # A dead connection is not reused: the next step opens a new one.
            close_old_connections()
            stop.wait(backoff_seconds)
            continue
        except Exception:
            logger.exception("%s failed; trying again.", what[:1].upper() + what[1:])
            stop.wait(backoff_seconds)
            continue
        if not worked:
            close_old_connections()
            stop.wait(poll_seconds)
