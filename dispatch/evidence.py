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
from typing import TYPE_CHECKING

from django.core.files.base import ContentFile
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

    def walk(start: int, end: int) -> None:
        for offset, size, kind, header in _boxes(buffer, start, end):
            if kind in CONTAINERS:
                walk(offset + header, offset + size)
            elif kind in METADATA_BOXES:
                blank(offset, size, header)

    walk(0, len(buffer))
    return bytes(buffer)


def prepare(name: str, data: bytes) -> StoredUpload:
    """Check an upload and make its shared copy. Raises InvalidEvidence."""
    from dispatch.actions import StoredUpload
    from dispatch.models import EvidenceKind

    if data[4:8] == b"ftyp":
        try:
            shared = strip_video_metadata(data)
        except (InvalidEvidence, struct.error) as exc:
            raise InvalidEvidence(
                _("%(name)s is not a video we can read.") % {"name": name}
            ) from exc
        brand = data[8:12]
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


def context(evidence: Evidence, which: str) -> str:
    return f"dispatch_evidence.{which}.{evidence.uuid}"


def store(*, report: FieldReport, responder: Responder, upload: StoredUpload) -> Evidence:
    from dispatch.models import Evidence

    evidence = Evidence(
        field_report=report,
        kind=upload.kind,
        content_type=upload.content_type,
        original_sha256=hashlib.sha256(upload.original).hexdigest(),
        original_size=len(upload.original),
        shared_sha256=hashlib.sha256(upload.shared).hexdigest(),
        uploaded_by=responder,
    )
    evidence.original.save(
        f"{evidence.uuid}.bin",
        ContentFile(crypto.encrypt_bytes(upload.original, context=context(evidence, "original"))),
        save=False,
    )
    evidence.shared.save(
        f"{evidence.uuid}.bin",
        ContentFile(crypto.encrypt_bytes(upload.shared, context=context(evidence, "shared"))),
        save=False,
    )
    evidence.save()
    return evidence


def read(evidence: Evidence, which: str) -> bytes:
    field = evidence.original if which == "original" else evidence.shared
    with field.open("rb") as handle:
        return crypto.decrypt_bytes(handle.read(), context=context(evidence, which))
