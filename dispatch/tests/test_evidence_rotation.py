"""R19: rotate_keys re-encrypts evidence files (originals and shared copies)."""

from __future__ import annotations

import hashlib
import io
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from django.core.files.storage import default_storage
from django.core.management import call_command

from accounts.models import User
from core import crypto
from dispatch import evidence
from dispatch.models import Evidence, FieldReport, Finding
from dispatch.tests.test_field import accepted_offer, jpeg_with_gps, mp4_with_location

pytestmark = pytest.mark.django_db

K1 = crypto.generate_key()
K2 = crypto.generate_key()


def use_keys(settings: Any, value: str) -> None:
    settings.RR_FIELD_KEYS = value
    crypto.reset_key_cache()


@pytest.fixture
def under_k1(settings: Any) -> Iterator[Any]:
    original = settings.RR_FIELD_KEYS
    use_keys(settings, f"k1:{K1}")
    yield settings
    use_keys(settings, original)


@pytest.fixture
def items(under_k1: Any, dispatcher: User) -> Iterator[dict[int, bytes]]:
    """A photo and a video, sealed under k1: each Evidence pk with its original bytes."""
    report = FieldReport.objects.create(offer=accepted_offer(dispatcher), finding=Finding.VERIFIED)
    made: dict[int, bytes] = {}
    for name, raw in (("scene.jpg", jpeg_with_gps()), ("scene.mp4", mp4_with_location())):
        sealed = evidence.seal(evidence.prepare(name, raw))
        item = evidence.record(report=report, responder=report.offer.responder, sealed=sealed)
        made[item.pk] = raw
    yield made
    for item in Evidence.objects.all():
        item.original.delete(save=False)
        item.shared.delete(save=False)


def headers() -> list[bytes]:
    """The first bytes of every file on disk of these evidence rows (orphans included:
    storage names start with the row's uuid)."""
    root = Path(default_storage.path("evidence"))
    return [
        path.read_bytes()[:8]
        for item in Evidence.objects.all()
        for path in root.rglob(f"{item.uuid}*")
        if path.is_file()
    ]


def rotate(*args: str) -> str:
    out = io.StringIO()
    call_command("rotate_keys", *args, stdout=out, stderr=io.StringIO())
    return out.getvalue()


def test_rotation_re_encrypts_evidence_files(items: dict[int, bytes], under_k1: Any) -> None:
    shared_before = {pk: evidence.read(Evidence.objects.get(pk=pk), "shared") for pk in items}
    names_before = {(e.original.name, e.shared.name) for e in Evidence.objects.all()}
    assert sum(h.startswith(b"rr1.k1.") for h in headers()) == 4

    use_keys(under_k1, f"k2:{K2},k1:{K1}")
    assert "dispatch.Evidence: 2 under older keys" in rotate("--dry-run")
    assert "dispatch.Evidence: 2 re-encrypted" in rotate()
    assert "dispatch.Evidence: 0 re-encrypted" in rotate()  # nothing left under k1

    use_keys(under_k1, f"k2:{K2}")  # k1 is gone
    for pk, raw in items.items():
        item = Evidence.objects.get(pk=pk)
        original = evidence.read(item, "original")
        assert original == raw
        # The chain of custody still holds: the hash recorded at upload matches.
        assert hashlib.sha256(original).hexdigest() == item.original_sha256
        assert evidence.read(item, "shared") == shared_before[pk]
        assert hashlib.sha256(shared_before[pk]).hexdigest() == item.shared_sha256
    # New files replaced the old ones, which were removed: no k1 file is left anywhere.
    assert {(e.original.name, e.shared.name) for e in Evidence.objects.all()}.isdisjoint(
        names_before
    )
    assert not any(default_storage.exists(name) for pair in names_before for name in pair)
    found = headers()
    assert len(found) == 4
    assert all(h.startswith(b"rr1.k2.") for h in found)
