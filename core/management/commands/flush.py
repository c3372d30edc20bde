"""Django's flush, able to empty the audit table.

Flushing wipes every table: an owner's operation (tests between cases, a developer's
reset), never something the application does. SQLite's flush is a DELETE per table,
which the audit guard refuses, so the guard is lifted for the flush and put back in the
same transaction; PostgreSQL's flush is TRUNCATE, which the row triggers do not see.
"""

from __future__ import annotations

from typing import Any

from django.core.management.commands import flush
from django.db import DEFAULT_DB_ALIAS, connections, transaction

from core import audit_guard


class Command(flush.Command):
    def handle(self, **options: Any) -> None:
        connection = connections[options.get("database") or DEFAULT_DB_ALIAS]
        guarded = connection.vendor == "sqlite" and (
            audit_guard.TABLE in connection.introspection.table_names()
        )
        if not guarded:
            super().handle(**options)
            return
        # A failed flush rolls the removal back with everything else.
        with transaction.atomic(using=connection.alias):
            audit_guard.remove(connection)
            super().handle(**options)
            audit_guard.install(connection)
