"""Publishing changes to the live console.

``publish`` writes a ConsoleEvent in the caller's transaction, so an event exists
exactly when its change committed. Web processes learn of it at once: the same process
through ``live.wake``, others through PostgreSQL NOTIFY (delivered at commit) or, on
SQLite, by polling.
"""

from __future__ import annotations

import uuid

from django.db import connection, transaction

from core.locks import first_time_in_transaction, serialize
from incidents.models import ConsoleEvent, ConsoleEventKind

NOTIFY_CHANNEL = "rr_console"
# Every transaction that changes incidents or publishes console events holds this lock
# from its start to its commit. Event ids therefore become visible in id order (the
# live hub reads "every id above the last one seen" and would otherwise skip an event
# whose transaction committed after a later one), and matching never sees an incident
# that a concurrent merge or close is about to change.
INCIDENTS_LOCK = "incidents"


def publish(kind: ConsoleEventKind, object_uuid: uuid.UUID) -> None:
    publish_all([(kind, object_uuid)])


def publish_all(changes: list[tuple[ConsoleEventKind, uuid.UUID]]) -> None:
    """Several changes of one action (a report and the incident it joined) in one
    INSERT, in the order given."""
    serialize(INCIDENTS_LOCK)
    ConsoleEvent.objects.bulk_create(
        [ConsoleEvent(kind=kind, object_uuid=object_uuid) for kind, object_uuid in changes]
    )
    # One notice per transaction: a listener reads every event above the last one it
    # saw, so a report and its incident (two events) need one wake-up between them.
    if not first_time_in_transaction("console:notify"):
        return
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_notify(%s, '')", [NOTIFY_CHANNEL])
    from incidents import live

    transaction.on_commit(live.wake)


def latest_event_id() -> int:
    last = ConsoleEvent.objects.order_by("-id").values_list("id", flat=True).first()
    return int(last or 0)
