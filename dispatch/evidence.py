"""Evidence from the field: chain of custody, an encrypted original, a shared copy
without location metadata.

- Photos: the shared copy is re-encoded from the pixels (no EXIF, no GPS).
- Videos (MP4, MOV, 3GP): the shared copy is the same file with its metadata boxes
  (``udta``, ``meta``, top-level ``uuid``/XMP, where phones write GPS position and
  device) turned into ``free`` boxes of the same size, zero-filled. Nothing moves, so the
  sample offsets stay valid and the video plays as before, without re-encoding.

Both files are encrypted at rest, bound to the evidence row; the SHA-256 of the
original is taken before anything else touches the bytes.
"""

from __future__ import annotations

import hashlib
import io
import struct
import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING

from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.utils import timezone
from django.utils.translation import gettext as _
from PIL import UnidentifiedImageError

from core import crypto
from intake.photos import InvalidPhoto, clean_image

if TYPE_CHECKING:
    from dispatch.actions import StoredUpload
    from dispatch.models import Evidence, FieldReport, Responder

VIDEO_BRANDS = {b"ftyp"}
METADATA_BOXES = {b"udta", b"meta", b"uuid"}
CONTAINERS = {b"moov", b"trak"}
MAX_DEPTH = 8


class InvalidEvidence(ValueError):
    pass


def _boxes(data: bytearray, start: int, end: int) -> list[tuple[int, int, bytes, int]]:
    """(offset, size, type, header length) of the boxes between start and end."""
    found = []
    offset = start
    while offset + 8 <= end:
        size, kind = struct.unpack(">I4s", data[offset : offset + 8])
        header = 8
        if size == 1:
            if offset + 16 > end:
                raise InvalidEvidence("truncated box")
            size = struct.unpack(">Q", data[offset + 8 : offset + 16])[0]
            header = 16
        elif size == 0:
            size = end - offset
        if size < header or offset + size > end:
            raise InvalidEvidence("malformed box")
        found.append((offset, size, bytes(kind), header))
        offset += size
    return found


def strip_video_metadata(data: bytes) -> bytes:
    """The same MP4/MOV file with every metadata box blanked in place."""
    buffer = bytearray(data)
    top = _boxes(buffer, 0, len(buffer))
    if not top or top[0][2] not in VIDEO_BRANDS:
        raise InvalidEvidence("not an MP4 or QuickTime file")

    def blank(offset: int, size: int, header: int) -> None:
        buffer[offset + 4 : offset + 8] = b"free"
        buffer[offset + header : offset + size] = bytes(size - header)

    def walk(start: int, end: int, depth: int) -> None:
        if depth > MAX_DEPTH:
            raise InvalidEvidence("boxes nested too deeply")
        for offset, size, kind, header in _boxes(buffer, start, end):
            if kind in CONTAINERS:
                walk(offset + header, offset + size, depth + 1)
            elif kind in METADATA_BOXES:
                blank(offset, size, header)

    walk(0, len(buffer), 0)
    return bytes(buffer)


# ISO base media brands of videos; HEIC and AVIF photos use the same container and are
# refused rather than stripped as if they were videos.
VIDEO_BRANDS_ALLOWED = {
    b"isom",
    b"iso2",
    b"iso3",
    b"iso4",
    b"iso5",
    b"iso6",
    b"mp41",
    b"mp42",
    b"avc1",
    b"qt  ",
    b"M4V ",
    b"M4VP",
    b"3gp4",
    b"3gp5",
    b"3gp6",
    b"3g2a",
    b"MSNV",
    b"dash",
    b"mp71",
}
IMAGE_BRANDS = {b"heic", b"heix", b"heim", b"heis", b"hevc", b"mif1", b"msf1", b"avif", b"avis"}


def prepare(name: str, data: bytes) -> StoredUpload:
    """Check an upload and make its shared copy. Raises InvalidEvidence."""
    from dispatch.actions import StoredUpload
    from dispatch.models import EvidenceKind

    if data[4:8] == b"ftyp":
        brand = data[8:12]
        if brand in IMAGE_BRANDS:
            raise InvalidEvidence(
                _(
                    "%(name)s is a HEIC or AVIF photo: set the camera to “Most compatible” "
                    "(JPEG) or send a screenshot of it."
                )
                % {"name": name}
            )
        if brand not in VIDEO_BRANDS_ALLOWED:
            raise InvalidEvidence(_("%(name)s is not a video we can read.") % {"name": name})
        try:
            shared = strip_video_metadata(data)
        except (InvalidEvidence, struct.error, RecursionError) as exc:
            raise InvalidEvidence(
                _("%(name)s is not a video we can read.") % {"name": name}
            ) from exc
        content_type = "video/quicktime" if brand == b"qt  " else "video/mp4"
        return StoredUpload(EvidenceKind.VIDEO, content_type, data, shared)
    try:
        clean = clean_image(io.BytesIO(data))
    except (InvalidPhoto, UnidentifiedImageError) as exc:
        raise InvalidEvidence(
            _("%(name)s is not a photo (JPEG, PNG, WebP) or video (MP4, MOV) we can read.")
            % {"name": name}
        ) from exc
    return StoredUpload(EvidenceKind.PHOTO, clean.content_type, data, clean.data)


def context(evidence_uuid: uuid.UUID, which: str) -> str:
    return f"dispatch_evidence.{which}.{evidence_uuid}"


@dataclass(frozen=True)
class SealedEvidence:
    """An upload encrypted and written to storage, ready for its row."""

    uuid: uuid.UUID
    upload: StoredUpload
    original_name: str
    shared_name: str
    original_sha256: str
    shared_sha256: str


def seal(upload: StoredUpload) -> SealedEvidence:
    """Hash, encrypt and write both files. Slow for a video, so it runs before the
    transaction that records the evidence, holding no lock."""
    evidence_uuid = uuid.uuid4()
    storage = default_storage
    month = timezone.now().strftime("%Y/%m")
    original_name = storage.save(
        f"evidence/original/{month}/{evidence_uuid}.bin",
        ContentFile(
            crypto.encrypt_bytes(upload.original, context=context(evidence_uuid, "original"))
        ),
    )
    shared_name = storage.save(
        f"evidence/shared/{month}/{evidence_uuid}.bin",
        ContentFile(crypto.encrypt_bytes(upload.shared, context=context(evidence_uuid, "shared"))),
    )
    return SealedEvidence(
        uuid=evidence_uuid,
        upload=upload,
        original_name=original_name,
        shared_name=shared_name,
        original_sha256=hashlib.sha256(upload.original).hexdigest(),
        shared_sha256=hashlib.sha256(upload.shared).hexdigest(),
    )


def record(*, report: FieldReport, responder: Responder, sealed: SealedEvidence) -> Evidence:
    from dispatch.models import Evidence

    return Evidence.objects.create(
        uuid=sealed.uuid,
        field_report=report,
        kind=sealed.upload.kind,
        content_type=sealed.upload.content_type,
        original=sealed.original_name,
        original_sha256=sealed.original_sha256,
        original_size=len(sealed.upload.original),
        shared=sealed.shared_name,
        shared_sha256=sealed.shared_sha256,
        uploaded_by=responder,
    )


def read(evidence: Evidence, which: str) -> bytes:
    field = evidence.original if which == "original" else evidence.shared
    with field.open("rb") as handle:
        return crypto.decrypt_bytes(handle.read(), context=context(evidence.uuid, which))
