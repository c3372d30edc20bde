"""The database refuses UPDATE and DELETE on audit events, whoever asks.

Triggers on ``core_auditevent`` (installed by migration ``core.0005``) abort any UPDATE
or DELETE on both SQLite and PostgreSQL. On PostgreSQL the application's role also lacks
the privileges (``manage.py db_roles``), so the trigger guards against mistakes by the
owner role and code paths that bypass the ORM's habits; only the table's owner can
disable it (``ALTER TABLE … DISABLE TRIGGER``), which is the explicit, privileged way
to change the trail. TRUNCATE fires no row trigger: the application's role is not
granted it, and the test suite's flush uses it on PostgreSQL.

Audit events are kept: no retention rule removes them (``core.retention``).
"""

from __future__ import annotations

from django.db.backends.base.base import BaseDatabaseWrapper

TABLE = "core_auditevent"
MESSAGE = "audit events are append-only"

SQLITE_INSTALL = [
    f"CREATE TRIGGER IF NOT EXISTS rr_audit_no_update BEFORE UPDATE ON {TABLE} "
    f"BEGIN SELECT RAISE(ABORT, '{MESSAGE}'); END",
    f"CREATE TRIGGER IF NOT EXISTS rr_audit_no_delete BEFORE DELETE ON {TABLE} "
    f"BEGIN SELECT RAISE(ABORT, '{MESSAGE}'); END",
]
SQLITE_REMOVE = [
    "DROP TRIGGER IF EXISTS rr_audit_no_update",
    "DROP TRIGGER IF EXISTS rr_audit_no_delete",
]
POSTGRESQL_INSTALL = [
    # 42501 (insufficient_privilege): the same error the missing grant gives the app.
    "CREATE OR REPLACE FUNCTION rr_audit_append_only() RETURNS trigger LANGUAGE plpgsql AS $$ "
    f"BEGIN RAISE EXCEPTION '{MESSAGE}' USING ERRCODE = '42501'; END $$",
    f"DROP TRIGGER IF EXISTS rr_audit_append_only ON {TABLE}",
    f"CREATE TRIGGER rr_audit_append_only BEFORE UPDATE OR DELETE ON {TABLE} "
    "FOR EACH ROW EXECUTE FUNCTION rr_audit_append_only()",
]
POSTGRESQL_REMOVE = [
    f"DROP TRIGGER IF EXISTS rr_audit_append_only ON {TABLE}",
    "DROP FUNCTION IF EXISTS rr_audit_append_only()",
]


def _statements(connection: BaseDatabaseWrapper, *, install: bool) -> list[str]:
    if connection.vendor == "sqlite":
        return SQLITE_INSTALL if install else SQLITE_REMOVE
    if connection.vendor == "postgresql":
        return POSTGRESQL_INSTALL if install else POSTGRESQL_REMOVE
    return []


def install(connection: BaseDatabaseWrapper) -> None:
    """Create the triggers (idempotent)."""
    with connection.cursor() as cursor:
        for sql in _statements(connection, install=True):
            cursor.execute(sql)


def remove(connection: BaseDatabaseWrapper) -> None:
    with connection.cursor() as cursor:
        for sql in _statements(connection, install=False):
            cursor.execute(sql)


def installed(connection: BaseDatabaseWrapper) -> bool:
    with connection.cursor() as cursor:
        if connection.vendor == "sqlite":
            cursor.execute(
                "SELECT count(*) FROM sqlite_master WHERE type = 'trigger' AND tbl_name = %s",
                [TABLE],
            )
            return bool(cursor.fetchone()[0] == 2)
        if connection.vendor == "postgresql":
            cursor.execute(
                "SELECT count(*) FROM pg_trigger WHERE tgname = 'rr_audit_append_only' "
                "AND tgrelid = %s::regclass AND tgenabled <> 'D'",
                [TABLE],
            )
            return bool(cursor.fetchone()[0] == 1)
    return False
