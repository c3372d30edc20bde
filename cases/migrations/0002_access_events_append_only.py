"""Access events cannot be changed by any database client, not only through the model.

UPDATE is refused on both databases. DELETE is refused on PostgreSQL; SQLite keeps it,
because the test suite empties tables with DELETE there (PostgreSQL uses TRUNCATE,
which row triggers do not see). Production runs PostgreSQL.
"""

from django.db import migrations

PG_CREATE = """
CREATE OR REPLACE FUNCTION cases_accessevent_append_only() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION 'cases_accessevent is append-only';
END;
$$ LANGUAGE plpgsql;
CREATE TRIGGER cases_accessevent_no_update BEFORE UPDATE ON cases_accessevent
    FOR EACH ROW EXECUTE FUNCTION cases_accessevent_append_only();
CREATE TRIGGER cases_accessevent_no_delete BEFORE DELETE ON cases_accessevent
    FOR EACH ROW EXECUTE FUNCTION cases_accessevent_append_only();
"""
PG_DROP = """
DROP TRIGGER IF EXISTS cases_accessevent_no_update ON cases_accessevent;
DROP TRIGGER IF EXISTS cases_accessevent_no_delete ON cases_accessevent;
DROP FUNCTION IF EXISTS cases_accessevent_append_only();
"""
SQLITE_CREATE = """
CREATE TRIGGER cases_accessevent_no_update BEFORE UPDATE ON cases_accessevent
BEGIN
    SELECT RAISE(ABORT, 'cases_accessevent is append-only');
END;
"""
SQLITE_DROP = "DROP TRIGGER IF EXISTS cases_accessevent_no_update;"


def create(apps, schema_editor):
    vendor = schema_editor.connection.vendor
    if vendor == "postgresql":
        schema_editor.execute(PG_CREATE)
    elif vendor == "sqlite":
        schema_editor.execute(SQLITE_CREATE)


def drop(apps, schema_editor):
    vendor = schema_editor.connection.vendor
    if vendor == "postgresql":
        schema_editor.execute(PG_DROP)
    elif vendor == "sqlite":
        schema_editor.execute(SQLITE_DROP)


class Migration(migrations.Migration):
    dependencies = [("cases", "0001_cases_and_hearings")]

    operations = [migrations.RunPython(create, drop)]
