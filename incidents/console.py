"""Publishing changes to the live console.

``publish`` writes a ConsoleEvent in the caller's transaction, so an event exists
exactly when its change committed. Web processes learn of it at once: the same process
through ``live.wake``, others through PostgreSQL NOTIFY (delivered at commit) or, on
SQLite, by polling.
"""

from __future__ import annotations

import uuid

from django.db import connection, transaction

from incidents.models import ConsoleEvent, ConsoleEventKind

NOTIFY_CHANNEL = "rr_console"


def publish(kind: ConsoleEventKind, object_uuid: uuid.UUID) -> None:
    ConsoleEvent.objects.create(kind=kind, object_uuid=object_uuid)
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_notify(%s, '')", [NOTIFY_CHANNEL])
    from incidents import live

    transaction.on_commit(live.wake)


def latest_event_id() -> int:
    last = ConsoleEvent.objects.order_by("-id").values_list("id", flat=True).first()
    return int(last or 0)
