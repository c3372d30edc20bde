"""Encrypted columns hold no plaintext, and a value moved to another row is useless."""

from __future__ import annotations

import pytest
from django.db import connection

from core import crypto, phones
from intake.models import Channel, Report


def make_report(contact: str | None = "+15105550123") -> Report:
    return Report.objects.create(
        channel=Channel.WEB,
        text="agents at the corner",
        language="en",
        reporter_contact=contact,
        reporter_hash=phones.phone_hash(contact) if contact else "",
    )


def raw_column(table: str, column: str, pk: int) -> str:
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT {column} FROM {table} WHERE id = %s", [pk])  # noqa: S608 - fixed names
        return str(cursor.fetchone()[0])


@pytest.mark.django_db
def test_the_raw_column_holds_ciphertext_and_the_model_reads_plaintext() -> None:
    report = make_report()
    stored = raw_column("intake_report", "reporter_contact", report.pk)
    assert "5105550123" not in stored
    assert stored.startswith("rr1.")
    assert Report.objects.get(pk=report.pk).reporter_contact == "+15105550123"


@pytest.mark.django_db
def test_a_ciphertext_copied_into_another_row_fails_to_decrypt() -> None:
    victim = make_report("+15105550123")
    other = make_report("+15105550199")
    stolen = raw_column("intake_report", "reporter_contact", victim.pk)
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE intake_report SET reporter_contact = %s WHERE id = %s", [stolen, other.pk]
        )
    reread = Report.objects.get(pk=other.pk)
    with pytest.raises(crypto.DecryptionError):
        _ = reread.reporter_contact


@pytest.mark.django_db
def test_encrypted_fields_cannot_be_filtered_or_bulk_updated() -> None:
    make_report()
    with pytest.raises(TypeError):
        list(Report.objects.filter(reporter_contact="+15105550123"))
    with pytest.raises(TypeError):
        Report.objects.update(reporter_contact="+15105550000")


@pytest.mark.django_db
def test_lookups_go_through_the_keyed_hash() -> None:
    report = make_report("+15105550123")
    found = Report.objects.get(reporter_hash=phones.phone_hash(phones.normalize("(510) 555-0123")))
    assert found.pk == report.pk


@pytest.mark.django_db
def test_null_stays_null_and_deferred_loading_decrypts() -> None:
    empty = make_report(None)
    assert Report.objects.get(pk=empty.pk).reporter_contact is None
    full = make_report()
    deferred = Report.objects.defer("reporter_contact").get(pk=full.pk)
    assert deferred.reporter_contact == "+15105550123"


@pytest.mark.django_db
def test_serialisation_exports_tokens_not_plaintext() -> None:
    from django.core import serializers

    report = make_report()
    dumped = serializers.serialize("json", [Report.objects.get(pk=report.pk)])
    assert "5105550123" not in dumped
    assert "rr1." in dumped


@pytest.mark.django_db
def test_report_text_is_encrypted_too() -> None:
    report = make_report()
    stored = raw_column("intake_report", "text", report.pk)
    assert "agents at the corner" not in stored
    assert Report.objects.get(pk=report.pk).text == "agents at the corner"
