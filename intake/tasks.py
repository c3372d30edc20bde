from __future__ import annotations

from django_tasks import task

from intake import actions


@task()
def process_inbound_message(message_id: int) -> None:
    """Create the report for a stored inbound SMS (idempotent)."""
    actions.create_report_from_message(message_id=message_id)
