"""R19: key rotation loses nothing (manage.py rotate_keys)."""

from __future__ import annotations

import io
import uuid
from collections.abc import Iterator
from typing import Any, cast
from unittest import mock

import pytest
from django.core.files.base import ContentFile
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection

from calls.models import Call, CallState
from core import crypto, phones
from core.fields import Sealed
from core.management.commands.rotate_keys import targets
from dispatch.models import Responder
from intake.actions import photo_context
from intake.models import Channel, Report, ReportPhoto

pytestmark = pytest.mark.django_db

K1 = crypto.generate_key()
K2 = crypto.generate_key()
CALLER = "+15105550142"
ROWS = 1000


@pytest.fixture
def keys(settings: Any) -> Iterator[Any]:
    """Start under k1 alone; put the original keys back (and forget ours) afterwards."""
    original = settings.RR_FIELD_KEYS
    settings.RR_FIELD_KEYS = f"k1:{K1}"
    crypto.reset_key_cache()
    yield settings
    settings.RR_FIELD_KEYS = original
    crypto.reset_key_cache()


def use_keys(settings: Any, value: str) -> None:
    settings.RR_FIELD_KEYS = value
    crypto.reset_key_cache()


@pytest.fixture
def data(keys: Any) -> Iterator[dict[str, Any]]:
    Report.objects.bulk_create(
        Report(
            channel=Channel.WEB,
            language="en",
            text=f"report {n} names someone",
            reporter_contact=CALLER,
        )
        for n in range(ROWS)
    )
    responder = Responder.objects.create(
        name="Rosa", phone="+15105550301", phone_hash=phones.phone_hash("+15105550301")
    )
    call = Call.objects.create(
        provider="twilio",
        provider_sid="CA" + uuid.uuid4().hex,
        caller=CALLER,
        caller_hash=phones.phone_hash(CALLER),
        state=CallState.ENDED,
        transcript="my name is Ana",
    )
    photo = ReportPhoto(
        report=Report.objects.first(), content_type="image/jpeg", sha256="0" * 64, width=1, height=1
    )
    photo.file.save(
        f"{photo.uuid}.bin",
        ContentFile(crypto.encrypt_bytes(b"pixels", context=photo_context(photo))),
        save=False,
    )
    photo.save()
    yield {"responder": responder, "call": call, "photo": photo}
    ReportPhoto.objects.get(pk=photo.pk).file.delete(save=False)


def rotate(*args: str) -> str:
    out = io.StringIO()
    call_command("rotate_keys", *args, "--batch-size", "300", stdout=out, stderr=io.StringIO())
    return out.getvalue()


def tokens() -> list[str]:
    """Every encrypted column, read raw."""
    found: list[str] = []
    with connection.cursor() as cursor:
        for target in targets():
            for field in target.fields:
                table = connection.ops.quote_name(target.model._meta.db_table)
                column = connection.ops.quote_name(field.column)
                cursor.execute(f"SELECT {column} FROM {table} WHERE {column} IS NOT NULL")  # noqa: S608
                found.extend(row[0] for row in cursor.fetchall())
    return found


def photo_header(photo: ReportPhoto) -> bytes:
    with ReportPhoto.objects.get(pk=photo.pk).file.open("rb") as handle:
        return bytes(handle.read(8))


def assert_all_readable_under_k2_alone(data: dict[str, Any], settings: Any) -> None:
    use_keys(settings, f"k2:{K2}")
    assert {crypto.token_key_id(t) for t in tokens()} == {"k2"}
    assert not any(t.startswith("rr1.k1.") for t in tokens())
    assert sorted(r.text for r in Report.objects.all()) == sorted(
        f"report {n} names someone" for n in range(ROWS)
    )
    assert {r.reporter_contact for r in Report.objects.all()} == {CALLER}
    responder = Responder.objects.get(pk=data["responder"].pk)
    assert (responder.name, responder.phone) == ("Rosa", "+15105550301")
    call = Call.objects.get(pk=data["call"].pk)
    assert (call.caller, call.transcript) == (CALLER, "my name is Ana")
    photo = ReportPhoto.objects.get(pk=data["photo"].pk)
    with photo.file.open("rb") as handle:
        assert crypto.decrypt_bytes(handle.read(), context=photo_context(photo)) == b"pixels"


def test_rotation_loses_nothing(data: dict[str, Any], keys: Any) -> None:
    use_keys(keys, f"k2:{K2},k1:{K1}")
    out = rotate()
    assert f"intake.Report: {ROWS}/{ROWS}" in out
    assert f"intake.Report: {ROWS} re-encrypted" in out
    assert "dispatch.Responder: 1 re-encrypted" in out
    assert "intake.ReportPhoto: 1 re-encrypted" in out
    assert photo_header(data["photo"]).startswith(b"rr1.k2.")
    assert "0 rows re-encrypted in all" in rotate()  # idempotent
    assert_all_readable_under_k2_alone(data, keys)


def test_an_interrupted_rotation_resumes(data: dict[str, Any], keys: Any) -> None:
    use_keys(keys, f"k2:{K2},k1:{K1}")
    real = crypto.encrypt
    calls = 0

    def flaky(plaintext: str, *, context: str) -> str:
        nonlocal calls
        calls += 1
        if calls > 450:
            raise RuntimeError("power cut")
        return real(plaintext, context=context)

    with mock.patch.object(crypto, "encrypt", flaky), pytest.raises(RuntimeError):
        rotate()
    under_k1 = [t for t in tokens() if t.startswith("rr1.k1.")]
    assert under_k1 and len(under_k1) < len(tokens())
    out = rotate()
    assert f"intake.Report: {ROWS}/{ROWS}" in out
    assert_all_readable_under_k2_alone(data, keys)


def test_resume_from_a_model_and_pk(data: dict[str, Any], keys: Any) -> None:
    use_keys(keys, f"k2:{K2},k1:{K1}")
    middle = Report.objects.order_by("pk").values_list("pk", flat=True)[ROWS // 2 - 1]
    out = rotate("--start-model", "intake.report", "--after-pk", str(middle))
    assert f"intake.Report: {ROWS // 2} re-encrypted" in out
    assert "calls.Call" not in out  # sorted before intake.Report, so skipped
    assert f"intake.Report: {ROWS // 2} re-encrypted" in rotate()  # the first half
    assert_all_readable_under_k2_alone(data, keys)


def test_a_dry_run_counts_and_changes_nothing(data: dict[str, Any], keys: Any) -> None:
    use_keys(keys, f"k2:{K2},k1:{K1}")
    before = tokens()
    header = photo_header(data["photo"])
    out = rotate("--dry-run")
    assert f"intake.Report: {ROWS} under older keys" in out
    assert "intake.ReportPhoto: 1 under older keys" in out
    assert tokens() == before and photo_header(data["photo"]) == header


def test_undecryptable_values_stop_the_run_or_are_listed(data: dict[str, Any], keys: Any) -> None:
    use_keys(keys, f"k2:{K2},k1:{K1}")
    responder = data["responder"]
    # A token under a key that is no longer configured.
    Responder.objects.filter(pk=responder.pk).update(notes=Sealed("rr1.k0.c2VjcmV0IG5vdGUgYm9keQ"))
    with pytest.raises(CommandError, match=rf"dispatch.Responder pk={responder.pk} field=notes"):
        rotate()
    err = io.StringIO()
    call_command("rotate_keys", "--skip-undecryptable", stdout=io.StringIO(), stderr=err)
    assert f"dispatch.Responder pk={responder.pk} field=notes" in err.getvalue()
    assert "c2VjcmV0" not in err.getvalue()
    row = Responder.objects.filter(pk=responder.pk).values_list("name", "phone").get()
    assert {crypto.token_key_id(cast(Sealed, value).token) for value in row} == {"k2"}
