"""R27: the audit trail is append-only in the database, and copied to a separate sink."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from django.core.management import call_command
from django.db import DatabaseError, connection, transaction

from conftest import committed
from core import audit, audit_guard, audit_sink
from core.management.commands import db_roles
from core.models import AuditAction, AuditEvent, ServiceArea


def _event(**detail: Any) -> AuditEvent:
    area = ServiceArea.objects.create(name=f"Audit test area {ServiceArea.objects.count()}")
    return audit.record(actor=None, action=AuditAction.SERVICE_AREA_LOADED, target=area, **detail)


@pytest.mark.django_db
def test_the_guard_is_installed_by_the_migrations() -> None:
    assert audit_guard.installed(connection)


@pytest.mark.django_db
def test_the_database_refuses_to_update_or_delete_an_audit_event() -> None:
    event = _event(count=3)
    for change in (
        lambda: AuditEvent.objects.filter(pk=event.pk).update(target_id="someone-else"),
        lambda: AuditEvent.objects.filter(pk=event.pk).delete(),
        lambda: AuditEvent.objects.all().delete(),
        lambda: event.save(update_fields=["detail"]),
    ):
        with pytest.raises(DatabaseError, match=r"append-only|permission"), transaction.atomic():
            change()
    with connection.cursor() as cursor, pytest.raises(DatabaseError), transaction.atomic():
        cursor.execute(f"UPDATE {audit_guard.TABLE} SET detail = %s", ["{}"])  # noqa: S608
    event.refresh_from_db()
    assert event.target_id != "someone-else"
    assert event.detail == {"count": 3}
    # Adding rows goes on as before.
    _event(count=4)
    assert AuditEvent.objects.count() == 2


@pytest.mark.django_db(transaction=True)
def test_flush_still_empties_the_table_and_puts_the_guard_back() -> None:
    # Between transactional tests (and for a developer's reset) flush wipes every table.
    _event()
    call_command("flush", interactive=False, verbosity=0)
    assert AuditEvent.objects.count() == 0
    assert audit_guard.installed(connection)
    event = _event()
    with pytest.raises(DatabaseError), transaction.atomic():
        AuditEvent.objects.filter(pk=event.pk).delete()


def test_db_roles_grants_the_app_role_insert_and_select_only_on_audit_tables() -> None:
    sql = "\n".join(
        db_roles.statements(
            database="rr", schema="public", owner="rr_owner", app="rr_app", transfer=False
        )
    )
    assert 'GRANT SELECT, INSERT ON "public"."core_auditevent" TO "rr_app"' in sql
    assert 'REVOKE ALL ON "public"."core_auditevent" FROM "rr_app"' in sql
    # The revocation comes after the blanket grant, or the grant would win.
    assert sql.index("REVOKE ALL ON") > sql.index("ON ALL TABLES IN SCHEMA")
    with pytest.raises(Exception, match="plain role name"):
        db_roles.statements(
            database="rr", schema="public", owner="x; DROP", app="rr_app", transfer=False
        )


@pytest.fixture
def app_role(transactional_db: None) -> Iterator[dict[str, Any]]:
    """A fresh app role on the test database, granted as ``db_roles`` grants; dropped
    afterwards (roles belong to the whole cluster)."""
    import psycopg

    if connection.vendor != "postgresql":
        pytest.skip("database roles exist on PostgreSQL only")
    params = connection.get_connection_params()
    params.pop("cursor_factory", None)
    params.pop("context", None)
    owner = params.get("user") or "postgres"
    role = f"rr_test_app_{os.getpid()}"
    sql = db_roles.statements(
        database=str(connection.settings_dict["NAME"]),
        schema="public",
        owner=owner,
        app=role,
        transfer=False,
    )
    with psycopg.connect(**params, autocommit=True) as admin:
        for statement in sql:
            admin.execute(statement)
    try:
        yield {**params, "user": role}
    finally:
        with psycopg.connect(**params, autocommit=True) as admin:
            admin.execute(f'DROP OWNED BY "{role}"')
            admin.execute(f'DROP ROLE IF EXISTS "{role}"')


def test_the_app_role_can_add_audit_events_but_not_change_them(app_role: dict[str, Any]) -> None:
    import psycopg
    from psycopg import errors

    assert db_roles.check(connection, schema="public", app=app_role["user"]) == []
    with psycopg.connect(**app_role, autocommit=True) as app:
        assert app.execute("SELECT current_user").fetchone() == (app_role["user"],)
        row = app.execute(
            "INSERT INTO core_auditevent (at, action, target_type, target_id, detail) "
            "VALUES (now(), 'audit.viewed', 'core.auditevent', 'search', '{}') RETURNING id"
        ).fetchone()
        assert row is not None
        event_id = row[0]
        assert app.execute(
            "SELECT target_id FROM core_auditevent WHERE id = %s", [event_id]
        ).fetchone() == ("search",)
        for statement in (
            "UPDATE core_auditevent SET target_id = 'other' WHERE id = %s",
            "DELETE FROM core_auditevent WHERE id = %s",
        ):
            with pytest.raises(errors.InsufficientPrivilege):
                app.execute(statement, [event_id])
        with pytest.raises(errors.InsufficientPrivilege):
            app.execute("TRUNCATE core_auditevent")
        with pytest.raises(errors.InsufficientPrivilege):
            app.execute("ALTER TABLE core_auditevent DISABLE TRIGGER rr_audit_append_only")
        # Every other table is the app's to change.
        app.execute(
            "INSERT INTO core_retentionpolicy (rule, days, updated_at) VALUES ('x', 3, now())"
        )
        app.execute("UPDATE core_retentionpolicy SET days = 4 WHERE rule = 'x'")
        app.execute("DELETE FROM core_retentionpolicy WHERE rule = 'x'")
    assert AuditEvent.objects.filter(pk=event_id, target_id="search").exists()


def test_check_reports_an_app_role_that_may_still_delete_audit_events(
    app_role: dict[str, Any],
) -> None:
    import psycopg

    params = {**app_role, "user": connection.get_connection_params().get("user") or "postgres"}
    with psycopg.connect(**params, autocommit=True) as admin:
        admin.execute(f'GRANT DELETE ON core_auditevent TO "{app_role["user"]}"')
    problems = db_roles.check(connection, schema="public", app=app_role["user"])
    assert problems == [f"{app_role['user']} may DELETE core_auditevent"]


class Collecting:
    """A sink for the tests: keeps what it receives."""

    received: list[dict[str, Any]] = []

    def emit(self, event: dict[str, Any]) -> None:
        Collecting.received.append(event)


class Failing:
    def emit(self, event: dict[str, Any]) -> None:
        raise OSError("the collector is down")


@pytest.fixture
def sink(settings: Any) -> Iterator[Any]:
    def use(spec: str) -> None:
        settings.RR_AUDIT_SINK = spec
        audit_sink.configured.cache_clear()

    Collecting.received = []
    yield use
    audit_sink.configured.cache_clear()


@pytest.mark.django_db
def test_every_committed_event_reaches_a_file_sink(sink: Any, tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    sink(f"jsonl:{path}")
    with committed():
        first = _event(count=2, kind="sms")
    # Events written without core.audit (the audit page, retention) are copied too.
    with committed():
        second = AuditEvent.objects.create(
            action=AuditAction.RETENTION_PURGED, target_type="core.retention", target_id="x"
        )
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    assert [line["id"] for line in lines] == [first.pk, second.pk]
    assert lines[0] == {
        "id": first.pk,
        "at": first.at.isoformat(),
        "action": "service_area.loaded",
        "actor_id": None,
        "target_type": "core.servicearea",
        "target_id": first.target_id,
        "detail": {"count": 2, "kind": "sms"},
    }
    assert (path.stat().st_mode & 0o777) == 0o600


@pytest.mark.django_db
def test_the_sink_gets_no_personal_content(sink: Any) -> None:
    sink("python:core.tests.test_audit_trail.Collecting")
    with committed():
        _event(
            phone="+15105550142",
            digits="5105550142",
            text="ICE van at 5th and Main, my neighbour Ana was taken",
            uuid="0f8b2c4e-1a2b-4c3d-8e9f-0123456789ab",
            status="verified",
            count=7,
        )
    (event,) = Collecting.received
    assert event["detail"] == {
        "phone": audit_sink.WITHHELD,
        "digits": audit_sink.WITHHELD,
        "text": audit_sink.WITHHELD,
        "uuid": "0f8b2c4e-1a2b-4c3d-8e9f-0123456789ab",
        "status": "verified",
        "count": 7,
    }
    assert "5550142" not in json.dumps(event)


@pytest.mark.django_db
def test_a_rolled_back_event_is_not_sent(sink: Any) -> None:
    sink("python:core.tests.test_audit_trail.Collecting")
    with committed():
        try:
            with transaction.atomic():
                _event()
                raise RuntimeError("the action failed")
        except RuntimeError:
            pass
    assert Collecting.received == []
    assert AuditEvent.objects.count() == 0


@pytest.mark.django_db
def test_a_failing_sink_does_not_undo_the_action(sink: Any, caplog: Any) -> None:
    sink("python:core.tests.test_audit_trail.Failing")
    with committed():
        event = _event()
    assert AuditEvent.objects.filter(pk=event.pk).exists()
    assert "audit sink refused" in caplog.text


def test_sink_specs() -> None:
    assert audit_sink.parse("") is None
    assert isinstance(audit_sink.parse("jsonl:/tmp/x.jsonl"), audit_sink.JsonLinesSink)
    assert isinstance(audit_sink.parse("syslog:127.0.0.1:514"), audit_sink.SyslogSink)
    with pytest.raises(Exception, match="RR_AUDIT_SINK"):
        audit_sink.parse("kafka:somewhere")
    with pytest.raises(Exception, match="needs a file path"):
        audit_sink.parse("jsonl:")
