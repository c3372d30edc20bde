"""Migrations that move data: run from the state before them, with rows in it."""

from __future__ import annotations

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

BEFORE = [("messaging", "0005_outbox_one_index_per_key")]


def migrate(targets: list[tuple[str, str]]) -> MigrationExecutor:
    executor = MigrationExecutor(connection)
    executor.migrate(targets)
    return MigrationExecutor(connection)


@pytest.mark.django_db(transaction=True)
def test_alert_texts_take_the_batch_and_language_of_their_rows() -> None:
    latest = MigrationExecutor(connection).loader.graph.leaf_nodes()
    try:
        old = migrate(BEFORE).loader.project_state(BEFORE).apps
        contact = old.get_model("messaging", "Contact").objects.create(
            phone="+15105550100", phone_hash="a" * 64
        )
        bodies = old.get_model("messaging", "OutboxBody").objects
        used = {"en": bodies.create(text="VERIFIED"), "es": bodies.create(text="VERIFICADO")}
        bodies.create(text="a text no message says")
        rows = old.get_model("messaging", "OutboxMessage").objects
        for number, language in enumerate(["en", "es", "es"]):
            rows.create(
                provider="console",
                kind="alert",
                contact=contact,
                recipient_hash="a" * 64,
                shared_body=used[language],
                batch="alert-1",
                dedupe_key=f"alert-1:{number:010d}",
                language=language,
            )

        new = migrate(latest).loader.project_state(latest).apps
        texts = {
            (body.batch, body.language): str(body.text)
            for body in new.get_model("messaging", "OutboxBody").objects.all()
        }
        assert texts == {("alert-1", "en"): "VERIFIED", ("alert-1", "es"): "VERIFICADO"}
    finally:
        migrate(latest)
