"""Case data at rest (R15, R17), the crypto-shredding proof (R20) and key rotation
of case keys (R19)."""

from __future__ import annotations

import base64
import os
import sqlite3
import threading
import uuid
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from django.core.management import call_command
from django.db import DatabaseError, connection, transaction
from django.test import Client
from django.urls import reverse

from accounts.models import User
from cases import actions, keystore
from cases import crypto as case_crypto
from cases.models import AccessAction, AccessEvent, Case, CaseStatus, FamilyContact, Note
from cases.tests.factories import A_NUMBER, PERSON, open_case
from core import crypto, retention
from incidents.models import Incident

ENCRYPTED_COLUMNS = {
    "cases_case": ["person_name", "person_birth_date", "a_number", "detained_place"],
    "cases_familycontact": ["name", "relation", "phone"],
    "cases_note": ["body"],
}


def _case(actor: User, incident: Incident) -> Case:
    case = open_case(actor=actor, incident=incident, assigned_to=actor)
    actions.save_contact(
        actor=actor,
        case=case,
        data=actions.ContactData("Rosa Cruz", "sister", "+15105550188", "es", True),
    )
    actions.add_note(actor=actor, case=case, body="Rosa says he takes insulin daily")
    return case


def _close(actor: User, case: Case) -> Case:
    return actions.update_handling(
        actor=actor,
        case=case,
        legal_stage=case.legal_stage,  # type: ignore[arg-type]
        status=CaseStatus.CLOSED,
        assigned_to=case.assigned_to,
        consulted_at=case.consulted_at,
    )


def _closed(case: Case, at: datetime | None = None) -> datetime:
    moment = at or case.closed_at
    assert moment is not None
    return moment


def copy_rows() -> dict[str, list[tuple[Any, ...]]]:
    """A backup of the case tables as the database holds them: raw SQL, no model."""
    rows = {}
    with connection.cursor() as cursor:
        for table, columns in ENCRYPTED_COLUMNS.items():
            cursor.execute(f"SELECT uuid, {', '.join(columns)} FROM {table}")  # noqa: S608 - fixed names
            rows[table] = cursor.fetchall()
    return rows


def decrypt_copy(rows: dict[str, list[tuple[Any, ...]]]) -> list[str]:
    """Everything the app's keys can still read from a copy."""
    readable = []
    for table, table_rows in rows.items():
        for row in table_rows:
            row_uuid = uuid.UUID(str(row[0]))
            for column, token in zip(ENCRYPTED_COLUMNS[table], row[1:], strict=True):
                try:
                    readable.append(
                        case_crypto.decrypt(token, context=f"{table}.{column}.{row_uuid}")
                    )
                except crypto.DecryptionError:
                    continue
    return readable


@pytest.mark.django_db
def test_raw_sql_sees_only_ciphertext(verified: Incident, family_support: User) -> None:
    case = _case(family_support, verified)
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT person_name, a_number, detained_place FROM cases_case WHERE id = %s",
            [case.pk],
        )
        name, a_number, place = cursor.fetchone()
        cursor.execute("SELECT phone, name FROM cases_familycontact WHERE case_id = %s", [case.pk])
        phone, contact_name = cursor.fetchone()
    for stored, plain in (
        (name, PERSON),
        (a_number, A_NUMBER),
        (place, "International"),
        (phone, "5550188"),
        (contact_name, "Rosa"),
    ):
        assert stored.startswith(f"rrc1.{case.key_ref}.")
        assert plain not in stored
    # The key itself is nowhere in the database: only its reference.
    key = keystore.load_key(case.key_ref)
    with connection.cursor() as cursor:
        cursor.execute("SELECT * FROM cases_case WHERE id = %s", [case.pk])
        row = " ".join(str(value) for value in cursor.fetchone())
    assert base64.b64encode(key).decode() not in row
    assert Case.objects.get(pk=case.pk).person_name == PERSON


@pytest.mark.django_db(transaction=True)
def test_the_sqlite_file_holds_no_plaintext(verified: Incident, family_support: User) -> None:
    if connection.vendor != "sqlite":
        pytest.skip("the file check is for SQLite; raw SQL covers PostgreSQL")
    case = _case(family_support, verified)
    name = Path(connection.settings_dict["NAME"])
    data = name.read_bytes() + Path(f"{name}-wal").read_bytes()
    # Committed: its ciphertext and the incident's own report text are in the file.
    assert case.key_ref.encode() in data
    for plain in (PERSON, A_NUMBER, "insulin", "+15105550188", "Rosa Cruz"):
        assert plain.encode() not in data


@pytest.mark.django_db
def test_ciphertext_copied_to_another_case_does_not_decrypt(
    verified: Incident, family_support: User
) -> None:
    first = _case(family_support, verified)
    second = open_case(
        actor=family_support, incident=verified, assigned_to=family_support, a_number="A999999999"
    )
    with connection.cursor() as cursor:
        cursor.execute("SELECT a_number FROM cases_case WHERE id = %s", [first.pk])
        (token,) = cursor.fetchone()
        cursor.execute("UPDATE cases_case SET a_number = %s WHERE id = %s", [token, second.pk])
    with pytest.raises(crypto.DecryptionError):
        _ = Case.objects.get(pk=second.pk).a_number
    # Also within one case: another column of the same row.
    with connection.cursor() as cursor:
        cursor.execute("UPDATE cases_case SET person_name = %s WHERE id = %s", [token, first.pk])
    with pytest.raises(crypto.DecryptionError):
        _ = Case.objects.get(pk=first.pk).person_name


@pytest.mark.django_db(transaction=True)
def test_a_backup_taken_before_the_purge_cannot_be_read_after_it(
    verified: Incident, family_support: User, tmp_path: Path
) -> None:
    case = _case(family_support, verified)
    # The backup: the rows as the database holds them, and on SQLite a copy of the
    # whole database file, the way a SQLite deployment is backed up.
    backup = copy_rows()
    sqlite_copy = None
    if connection.vendor == "sqlite":
        sqlite_copy = tmp_path / "backup.sqlite3"
        with connection.cursor() as cursor:
            cursor.execute("VACUUM INTO %s", [str(sqlite_copy)])
    # Before the purge, the backup opens with the app's keys: the check below can fail.
    secrets = {PERSON, A_NUMBER, "+15105550188", "Rosa says he takes insulin daily"}
    assert secrets <= set(decrypt_copy(backup))
    if sqlite_copy is not None:
        assert not any(s.encode() in sqlite_copy.read_bytes() for s in secrets)

    case = _close(family_support, case)
    assert case.closed_at is not None
    # Not yet: the period (90 days by default) has not run out.
    retention.purge(now=case.closed_at + timedelta(days=89))
    assert keystore.has_key(case.key_ref)

    outcomes = retention.purge(now=case.closed_at + timedelta(days=91))
    [outcome] = [o for o in outcomes if o.rule.key == "closed_cases"]
    assert outcome.counts == {"cases": 1}
    case.refresh_from_db()
    assert case.shredded
    assert not keystore.has_key(case.key_ref)
    assert not (Path(keystore.keystore_dir()) / f"{case.key_ref}.key").exists()

    # The backup still holds every ciphertext, and the app's keys open none of it.
    assert decrypt_copy(backup) == []
    for table_rows in backup.values():
        for row in table_rows:
            for token in row[1:]:
                with pytest.raises(keystore.CaseKeyMissing):
                    case_crypto.decrypt(token, context="any")
    # Nor does the field key, which only ever wrapped the case key.
    for table_rows in backup.values():
        for row in table_rows:
            for token in row[1:]:
                for field_key in crypto.field_keys():
                    with pytest.raises(crypto.DecryptionError):
                        crypto.decrypt(token.replace("rrc1.", "rr1.", 1), context=field_key.key_id)
    # Contacts and notes are gone from the live database; the case is only dates.
    assert not FamilyContact.objects.filter(case=case).exists()
    assert not Note.objects.filter(case=case).exists()
    assert AccessEvent.objects.filter(case=case, action=AccessAction.SHREDDED).count() == 1
    if sqlite_copy is not None:
        copy = sqlite3.connect(sqlite_copy)
        copied = {
            table: copy.execute(
                f"SELECT uuid, {', '.join(columns)} FROM {table}"  # noqa: S608 - fixed names
            ).fetchall()
            for table, columns in ENCRYPTED_COLUMNS.items()
        }
        copy.close()
        assert len(copied["cases_familycontact"]) == 1  # the copy predates the purge
        assert decrypt_copy(copied) == []
    # What the purged case reads as now: nothing, without an error.
    fresh = Case.objects.get(pk=case.pk)
    assert fresh.person_name == "" and fresh.a_number == ""


@pytest.mark.django_db
def test_the_purged_case_page_says_so_and_shows_nothing(
    verified: Incident, coordinator: User, client: Client
) -> None:
    case = _close(coordinator, _case(coordinator, verified))
    retention.purge(now=_closed(case) + timedelta(days=91))
    client.force_login(coordinator)
    list_page = client.get(reverse("cases:list")).content.decode()
    assert "(purged)" in list_page
    page = client.get(reverse("cases:detail", args=[case.uuid]))
    assert page.status_code == 200
    assert "its key was destroyed" in page.content.decode()
    assert client.get(reverse("cases:export", args=[case.uuid])).status_code == 404
    assert client.get(reverse("cases:edit-person", args=[case.uuid])).status_code == 404


@pytest.mark.django_db
def test_a_reopened_case_is_not_purged(verified: Incident, coordinator: User) -> None:
    case = _close(coordinator, _case(coordinator, verified))
    closed_at = case.closed_at
    actions.update_handling(
        actor=coordinator,
        case=case,
        legal_stage=case.legal_stage,  # type: ignore[arg-type]
        status=CaseStatus.OPEN,
        assigned_to=case.assigned_to,
        consulted_at=None,
    )
    retention.purge(now=_closed(case, closed_at) + timedelta(days=400))
    case.refresh_from_db()
    assert not case.shredded
    assert case.person_name == PERSON


@pytest.mark.django_db
def test_a_case_reopened_and_closed_again_during_the_purge_keeps_its_new_period(
    verified: Incident, coordinator: User, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The purge picks due cases, then shreds each under a row lock: a case reopened
    and closed again in between has a new closing date, and its clock starts again."""
    case = _close(coordinator, _case(coordinator, verified))
    now = _closed(case) + timedelta(days=91)
    real_shred = actions.shred_case

    def closed_again_meanwhile(**kwargs: Any) -> bool:
        Case.objects.filter(pk=case.pk).update(closed_at=now)
        return real_shred(**kwargs)

    monkeypatch.setattr(actions, "shred_case", closed_again_meanwhile)
    retention.purge(now=now)
    case.refresh_from_db()
    assert not case.shredded
    assert keystore.has_key(case.key_ref)
    assert case.person_name == PERSON


@pytest.mark.django_db
def test_coordinators_set_the_case_period_within_bounds(
    verified: Incident, coordinator: User
) -> None:
    with pytest.raises(retention.RetentionRefused):
        retention.set_period(actor=coordinator, rule="closed_cases", days=3)
    retention.set_period(actor=coordinator, rule="closed_cases", days=30)
    case = _close(coordinator, _case(coordinator, verified))
    retention.purge(now=_closed(case) + timedelta(days=31))
    case.refresh_from_db()
    assert case.shredded
    dry = retention.purge(dry_run=True)
    assert next(o for o in dry if o.rule.key == "closed_cases").counts == {}


@pytest.mark.django_db
def test_access_events_refuse_updates_from_any_client(
    verified: Incident, family_support: User
) -> None:
    case = _case(family_support, verified)
    event = AccessEvent.objects.filter(case=case).first()
    assert event is not None
    with pytest.raises(ValueError, match="append-only"):
        event.save()
    with pytest.raises(ValueError, match="append-only"):
        event.delete()
    with pytest.raises(DatabaseError), transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("UPDATE cases_accessevent SET action = 'viewed' WHERE id = %s", [event.pk])
    if connection.vendor == "postgresql":
        with pytest.raises(DatabaseError), transaction.atomic(), connection.cursor() as cursor:
            cursor.execute("DELETE FROM cases_accessevent WHERE id = %s", [event.pk])


@pytest.mark.django_db
def test_rotate_keys_wraps_case_keys_again_and_nothing_is_lost(
    verified: Incident, family_support: User, settings: Any
) -> None:
    case = _case(family_support, verified)
    old = settings.RR_FIELD_KEYS
    new_key = "t9:" + base64.b64encode(os.urandom(32)).decode()
    assert keystore.wrapping_key_id(case.key_ref) == "t1"
    settings.RR_FIELD_KEYS = f"{new_key},{old}"
    crypto.reset_key_cache()
    keystore.clear_cache()
    try:
        call_command("rotate_keys", "--dry-run", stdout=(dry := _Capture()))
        assert "case keys: 1 under older keys" in dry.text
        assert keystore.wrapping_key_id(case.key_ref) == "t1"
        call_command("rotate_keys", stdout=(done := _Capture()))
        assert "case keys: 1 wrapped again" in done.text
        assert keystore.wrapping_key_id(case.key_ref) == "t9"
        # The old key goes; the case still reads, through the same data key.
        settings.RR_FIELD_KEYS = new_key
        crypto.reset_key_cache()
        keystore.clear_cache()
        fresh = Case.objects.get(pk=case.pk)
        assert fresh.person_name == PERSON
        assert fresh.contacts.get().phone == "+15105550188"
        call_command("rotate_keys", stdout=(again := _Capture()))
        assert "case keys: 0 wrapped again" in again.text
    finally:
        settings.RR_FIELD_KEYS = old
        crypto.reset_key_cache()
        keystore.clear_cache()


@pytest.mark.django_db
def test_without_the_field_key_a_case_key_does_not_unwrap(
    verified: Incident, family_support: User, settings: Any
) -> None:
    case = _case(family_support, verified)
    old = settings.RR_FIELD_KEYS
    settings.RR_FIELD_KEYS = "t9:" + base64.b64encode(os.urandom(32)).decode()
    crypto.reset_key_cache()
    keystore.clear_cache()
    try:
        with pytest.raises(crypto.DecryptionError):
            _ = Case.objects.get(pk=case.pk).person_name
    finally:
        settings.RR_FIELD_KEYS = old
        crypto.reset_key_cache()
        keystore.clear_cache()


def test_a_key_file_is_private_and_destroying_it_is_final(settings: Any) -> None:
    key_ref = keystore.new_key()
    path = keystore.keystore_dir() / f"{key_ref}.key"
    assert path.stat().st_mode & 0o077 == 0
    assert len(keystore.load_key(key_ref)) == 32
    assert keystore.destroy_key(key_ref)
    assert not path.exists()
    assert not keystore.destroy_key(key_ref)
    with pytest.raises(keystore.CaseKeyMissing):
        keystore.load_key(key_ref)
    with pytest.raises(ValueError):
        keystore.load_key("../../etc/passwd")


class _Capture:
    def __init__(self) -> None:
        self.text = ""

    def write(self, value: str) -> None:
        self.text += value

    def flush(self) -> None:
        pass

    def isatty(self) -> bool:
        return False


def test_a_key_reference_with_a_trailing_newline_is_refused() -> None:
    key_ref = keystore.new_key()
    with pytest.raises(ValueError):
        keystore.load_key(key_ref + "\n")
    with pytest.raises(ValueError):
        keystore.destroy_key(key_ref + "\n")


def test_a_key_destroyed_while_it_is_being_rewrapped_stays_destroyed(
    settings: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """rotate_keys and the retention purge may run at once: the rewrap must not write
    back a key the purge has just destroyed."""
    key_ref = keystore.new_key()
    old = settings.RR_FIELD_KEYS
    settings.RR_FIELD_KEYS = "t9:" + base64.b64encode(os.urandom(32)).decode() + "," + old
    crypto.reset_key_cache()
    read = threading.Event()
    destroyed = threading.Event()
    real_decrypt = crypto.decrypt

    def slow_decrypt(token: str, *, context: str) -> str:
        value = real_decrypt(token, context=context)
        if threading.current_thread().name == "rewrap":
            read.set()
            # Without a lock the purge destroys the file here; with one it waits.
            destroyed.wait(timeout=1)
        return value

    monkeypatch.setattr(crypto, "decrypt", slow_decrypt)

    def purge() -> None:
        read.wait(timeout=5)
        keystore.destroy_key(key_ref)
        destroyed.set()

    try:
        rewrapping = threading.Thread(target=keystore.rewrap, args=[key_ref], name="rewrap")
        purging = threading.Thread(target=purge)
        rewrapping.start()
        purging.start()
        rewrapping.join(timeout=10)
        purging.join(timeout=10)
        assert not keystore.has_key(key_ref)
    finally:
        settings.RR_FIELD_KEYS = old
        crypto.reset_key_cache()
        keystore.clear_cache()
