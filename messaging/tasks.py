from __future__ import annotations

from django_tasks import task

from messaging import outbox


@task()
def send_queued_messages() -> None:
    """Drain the outbox at the configured rate; queue another run if work remains."""
    outbox.send_due()
    if outbox.pending_count():
        from django.db.models import Q
        from django.utils import timezone

        from messaging.models import OutboxMessage, OutboxStatus

        due_now = OutboxMessage.objects.filter(
            Q(status=OutboxStatus.QUEUED) & Q(next_attempt_at__lte=timezone.now())
        ).exists()
        if due_now:
            send_queued_messages.enqueue()
