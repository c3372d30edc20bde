"""Triggers that refuse UPDATE and DELETE on audit events (core.audit_guard)."""

from django.db import migrations


def install(apps, schema_editor):
    from core import audit_guard

    audit_guard.install(schema_editor.connection)


def remove(apps, schema_editor):
    from core import audit_guard

    audit_guard.remove(schema_editor.connection)


class Migration(migrations.Migration):

    dependencies = [
        ('core', '0005_audit_actions'),
    ]

    operations = [
        migrations.RunPython(install, remove, elidable=False),
    ]
