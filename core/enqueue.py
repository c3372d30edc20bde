"""Queueing a task together with the writes it is for."""

from __future__ import annotations

from typing import Any

from django.db import transaction
from django_tasks import task_backends
from django_tasks_db import DatabaseBackend


def enqueue_with_transaction(task: Any, **kwargs: Any) -> None:
    """Queue ``task`` as part of the caller's transaction.

    When tasks are rows in this database (production's backend) the row is written now:
    it commits or rolls back with the caller's writes, in the same commit, so there is
    no moment when the writes are stored and their task is not (and no second commit
    per request). Any other backend (the tests' immediate one runs the task at once) is
    asked after the commit instead, when what the task reads is there."""
    backend = task_backends[task.backend]
    if isinstance(backend, DatabaseBackend):
        task.enqueue(**kwargs)
    else:
        transaction.on_commit(lambda: task.enqueue(**kwargs))
