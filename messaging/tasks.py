from __future__ import annotations

from django_tasks import task

from messaging import outbox


@task()
def send_queued_messages() -> None:
    """Drain the outbox at the configured rate. If another sender is already draining,
    it will reach these messages; if the time budget ran out, queue another run. In a
    worker with a sender thread (``run_worker``) that thread sends, and this task,
    which would hold the worker's task queue for the whole drain, does nothing."""
    if outbox.sender_thread_running():
        return
    handled = outbox.send_due()
    if handled is not None and outbox.due_count():
        send_queued_messages.enqueue()
