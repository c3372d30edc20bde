"""PostgreSQL roles for a deployment: an owner that migrates, an app role that cannot
change the audit trail.

The owner role owns every table (it runs ``migrate``). The app role, which the web and
worker processes use, may read and write every table except the audit tables, where it
may only INSERT and SELECT; it owns nothing, so it cannot grant itself more, disable
the audit triggers or truncate. Print the SQL (the default) to review and run it with
psql as a superuser, or ``--apply`` it through the configured connection (which must
then be a superuser or the owner). The statements are idempotent: run them again after
every ``migrate``, since a new table gets the owner's default privileges, which give
the app role full access (right for ordinary tables, wrong for a new audit table).
``--check`` reports whether the app role's privileges are what they should be.

Passwords are not handled here: set them with psql's ``\\password`` so they never pass
through a command line or this command's output.
"""

from __future__ import annotations

from argparse import ArgumentParser
from typing import Any

from django.apps import apps
from django.core.management.base import BaseCommand, CommandError
from django.db import DEFAULT_DB_ALIAS, connections

# Append-only tables: the app role gets INSERT and SELECT only.
AUDIT_MODELS = ["core.AuditEvent"]
WRITE = ("SELECT", "INSERT", "UPDATE", "DELETE")


def audit_tables() -> list[str]:
    return [apps.get_model(label)._meta.db_table for label in AUDIT_MODELS]


def _ident(name: str) -> str:
    # Role names end up in DDL, which takes no parameters: allow only plain names.
    if not name.replace("_", "").isalnum() or not name[0].isalpha() or len(name) > 63:
        raise CommandError(f"{name!r} is not a plain role name (letters, digits, underscore).")
    return '"' + name + '"'


def statements(*, database: str, schema: str, owner: str, app: str, transfer: bool) -> list[str]:
    db, sch, own, app_role = _ident(database), _ident(schema), _ident(owner), _ident(app)
    create = (
        "DO $$ BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '{name}') THEN "
        "CREATE ROLE {ident} LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOBYPASSRLS; "
        "END IF; END $$"
    )
    sql = [
        create.format(name=owner, ident=own),
        create.format(name=app, ident=app_role),
        # Whoever ran this (a superuser) must not pass its own powers on.
        f"ALTER ROLE {app_role} NOSUPERUSER NOCREATEDB NOCREATEROLE NOBYPASSRLS NOINHERIT",
        f"GRANT CONNECT ON DATABASE {db} TO {own}, {app_role}",
        f"GRANT USAGE, CREATE ON SCHEMA {sch} TO {own}",
        f"REVOKE CREATE ON SCHEMA {sch} FROM {app_role}",
        f"GRANT USAGE ON SCHEMA {sch} TO {app_role}",
    ]
    if transfer:
        # Tables made before the owner existed (migrated as postgres) move to it; their
        # identity sequences follow. The names passed _ident (plain names only).
        sql.append(
            "DO $$ DECLARE r record; BEGIN "  # noqa: S608  # nosec B608
            f"FOR r IN SELECT tablename FROM pg_tables WHERE schemaname = '{schema}' LOOP "
            f"EXECUTE format('ALTER TABLE {sch}.%I OWNER TO {own}', r.tablename); "
            "END LOOP; END $$"
        )
        sql.append(f"ALTER FUNCTION {sch}.rr_audit_append_only() OWNER TO {own}")
    sql += [
        f"GRANT {', '.join(WRITE)} ON ALL TABLES IN SCHEMA {sch} TO {app_role}",
        f"GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA {sch} TO {app_role}",
        f"ALTER DEFAULT PRIVILEGES FOR ROLE {own} IN SCHEMA {sch} "
        f"GRANT {', '.join(WRITE)} ON TABLES TO {app_role}",
        f"ALTER DEFAULT PRIVILEGES FOR ROLE {own} IN SCHEMA {sch} "
        f"GRANT USAGE, SELECT ON SEQUENCES TO {app_role}",
    ]
    for table in audit_tables():
        sql += [
            f"REVOKE ALL ON {sch}.{_ident(table)} FROM {app_role}",
            f"GRANT SELECT, INSERT ON {sch}.{_ident(table)} TO {app_role}",
        ]
    return sql


def check(connection: Any, *, schema: str, app: str) -> list[str]:
    """What is wrong with the app role's privileges (empty when right)."""
    problems: list[str] = []
    audit = set(audit_tables())
    with connection.cursor() as cursor:
        cursor.execute("SELECT rolsuper, rolbypassrls FROM pg_roles WHERE rolname = %s", [app])
        row = cursor.fetchone()
        if row is None:
            return [f"role {app} does not exist"]
        if row[0] or row[1]:
            problems.append(f"role {app} is a superuser or bypasses row security")
        cursor.execute(
            "SELECT tablename, tableowner FROM pg_tables WHERE schemaname = %s", [schema]
        )
        for table, table_owner in cursor.fetchall():
            if table_owner == app:
                problems.append(f"{app} owns {table} (an owner can change anything in it)")
            qualified = f'"{schema}"."{table}"'
            for privilege in (*WRITE, "TRUNCATE"):
                cursor.execute(
                    "SELECT has_table_privilege(%s, %s, %s)", [app, qualified, privilege]
                )
                has = bool(cursor.fetchone()[0])
                allowed = privilege in {"SELECT", "INSERT"} or (
                    table not in audit and privilege in WRITE
                )
                needed = privilege in {"SELECT", "INSERT"} or (
                    table not in audit and privilege != "TRUNCATE"
                )
                if has and not allowed:
                    problems.append(f"{app} may {privilege} {table}")
                elif needed and not has:
                    problems.append(f"{app} may not {privilege} {table}")
    return problems


class Command(BaseCommand):
    help = (
        "Print (or --apply, or --check) the PostgreSQL roles and grants: an owner role "
        "that migrates and an app role that may only INSERT and SELECT audit events."
    )

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument("--owner", default="rr_owner", help="owner role (default rr_owner)")
        parser.add_argument("--app", default="rr_app", help="app role (default rr_app)")
        parser.add_argument("--schema", default="public")
        parser.add_argument("--database", default=DEFAULT_DB_ALIAS, help="Django database alias")
        parser.add_argument(
            "--transfer-ownership",
            action="store_true",
            help="make the owner role own every table, sequence and the audit trigger function",
        )
        action = parser.add_mutually_exclusive_group()
        action.add_argument("--apply", action="store_true", help="run the SQL")
        action.add_argument("--check", action="store_true", help="verify the app role's grants")

    def handle(self, *args: Any, **options: Any) -> None:
        connection = connections[options["database"]]
        if connection.vendor != "postgresql" and not (options["apply"] or options["check"]):
            self.stderr.write("Note: roles apply to PostgreSQL; this database is not one.")
        elif connection.vendor != "postgresql":
            raise CommandError("Database roles exist on PostgreSQL only.")
        if options["check"]:
            problems = check(connection, schema=options["schema"], app=options["app"])
            for problem in problems:
                self.stderr.write(problem)
            if problems:
                raise CommandError(f"{len(problems)} problems with role {options['app']}.")
            self.stdout.write(self.style.SUCCESS(f"Role {options['app']} has the right grants."))
            return
        sql = statements(
            database=str(connection.settings_dict["NAME"]),
            schema=options["schema"],
            owner=options["owner"],
            app=options["app"],
            transfer=bool(options["transfer_ownership"]),
        )
        if not options["apply"]:
            self.stdout.write(";\n".join(sql) + ";")
            return
        with connection.cursor() as cursor:
            for statement in sql:
                cursor.execute(statement)
        self.stdout.write(self.style.SUCCESS(f"Applied {len(sql)} statements."))
