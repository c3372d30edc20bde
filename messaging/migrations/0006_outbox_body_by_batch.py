"""An alert's texts are found by batch and language instead of a key on every row."""

from typing import Any

from django.db import migrations, models


def name_bodies_by_batch(apps: Any, schema_editor: Any) -> None:
    """Each text takes the batch and language of the rows that point to it; a text no
    row points to is gone already as far as anyone can read it, and is deleted."""
    OutboxBody = apps.get_model("messaging", "OutboxBody")
    OutboxMessage = apps.get_model("messaging", "OutboxMessage")
    for body in OutboxBody.objects.all().iterator():
        row = (
            OutboxMessage.objects.filter(shared_body_id=body.pk)
            .values("batch", "language")
            .first()
        )
        if row is None:
            body.delete()
            continue
        OutboxBody.objects.filter(pk=body.pk).update(batch=row["batch"], language=row["language"])


class Migration(migrations.Migration):
    dependencies = [("messaging", "0005_outbox_one_index_per_key")]

    operations = [
        migrations.AddField(
            model_name="outboxbody",
            name="batch",
            field=models.CharField(default="", max_length=48),
            preserve_default=False,
        ),
        migrations.AddField(
            model_name="outboxbody",
            name="language",
            field=models.CharField(default="", max_length=8),
            preserve_default=False,
        ),
        migrations.RunPython(name_bodies_by_batch, migrations.RunPython.noop),
        migrations.RemoveField(model_name="outboxmessage", name="shared_body"),
        migrations.AddConstraint(
            model_name="outboxbody",
            constraint=models.UniqueConstraint(
                fields=("batch", "language"), name="outbox_body_batch_language_unique"
            ),
        ),
    ]
