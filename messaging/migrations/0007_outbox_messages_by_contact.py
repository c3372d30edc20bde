"""A person's messages are found by their contact and when they were written; the index
on the recipient's hash goes. The new index is built before the old ones are dropped."""

import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("messaging", "0006_outbox_body_by_batch"),
    ]

    operations = [
        migrations.AddIndex(
            model_name="outboxmessage",
            index=models.Index(fields=["contact", "created_at"], name="outbox_contact_idx"),
        ),
        migrations.AlterField(
            model_name="outboxmessage",
            name="contact",
            field=models.ForeignKey(
                db_index=False,
                on_delete=django.db.models.deletion.PROTECT,
                related_name="outbox",
                to="messaging.contact",
            ),
        ),
        migrations.RemoveIndex(
            model_name="outboxmessage",
            name="outbox_recipient_idx",
        ),
    ]
