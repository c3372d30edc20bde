from __future__ import annotations

from django_tasks import task

from cases import reminders


@task()
def send_hearing_reminders() -> None:
    """Send the reminders due now (also run every minute by the worker's timer)."""
    reminders.send_due()
