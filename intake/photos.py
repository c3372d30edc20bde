"""Photos from the public form: checked, stripped of metadata, encrypted at rest."""

from __future__ import annotations

import hashlib
import io
from dataclasses import dataclass
from typing import IO

from django.conf import settings
from django.core.files.uploadedfile import UploadedFile
from django.utils.translation import gettext as _
from PIL import Image, ImageOps, UnidentifiedImageError

ACCEPTED_FORMATS = {"JPEG": "image/jpeg", "PNG": "image/png", "WEBP": "image/webp"}
MAX_PIXELS = 40_000_000
MAX_EDGE = 2560


class InvalidPhoto(ValueError):
    pass


@dataclass(frozen=True)
class CleanPhoto:
    data: bytes
    content_type: str
    width: int
    height: int
    sha256: str


def clean_photo(upload: UploadedFile) -> CleanPhoto:
    """Re-encode the image from its pixels alone, so EXIF (GPS position, device, time)
    and any other embedded data never reach storage."""
    if upload.size is None or upload.size > settings.RR_MAX_PHOTO_BYTES:
        raise InvalidPhoto(
            _("The photo is larger than %(mb)d MB.")
            % {"mb": settings.RR_MAX_PHOTO_BYTES // (1024 * 1024)}
        )
    return clean_image(upload)


def clean_image(source: IO[bytes] | UploadedFile) -> CleanPhoto:
    """The pixels of a JPEG, PNG or WebP image, re-encoded with no metadata at all."""
    Image.MAX_IMAGE_PIXELS = MAX_PIXELS
    try:
        with Image.open(source) as image:
            source_format = image.format or ""
            if source_format not in ACCEPTED_FORMATS:
                raise InvalidPhoto(_("Send a JPEG, PNG or WebP photo."))
            image.load()
            oriented = ImageOps.exif_transpose(image)
    except (UnidentifiedImageError, Image.DecompressionBombError, OSError, SyntaxError) as exc:
        raise InvalidPhoto(_("That file is not a photo we can read.")) from exc
    oriented.thumbnail((MAX_EDGE, MAX_EDGE))
    has_alpha = oriented.mode in {"RGBA", "LA", "P"}
    pixels = oriented.convert("RGBA" if has_alpha else "RGB")
    clean = Image.new(pixels.mode, pixels.size)
    clean.paste(pixels)
    out = io.BytesIO()
    if has_alpha:
        clean.save(out, format="PNG", optimize=True)
        content_type = "image/png"
    else:
        clean.save(out, format="JPEG", quality=85)
        content_type = "image/jpeg"
    data = out.getvalue()
    return CleanPhoto(
        data=data,
        content_type=content_type,
        width=clean.width,
        height=clean.height,
        sha256=hashlib.sha256(data).hexdigest(),
    )
