"""ZIP codes people can subscribe by, loaded from a CSV: code,lat,lng[,radius_m].

A ZIP code stands for a circle around its centre (2 km unless the file says otherwise):
close enough for alerts, and no postal boundary files to license or ship."""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass

from django.db import transaction

from alerts.models import ZipCode
from core.geo import InvalidCoordinates, Point

DEFAULT_RADIUS_M = 2000


class InvalidZipFile(ValueError):
    pass


@dataclass(frozen=True)
class ZipRow:
    code: str
    point: Point
    radius_m: int


def parse_zip_csv(text: str) -> list[ZipRow]:
    reader = csv.DictReader(io.StringIO(text))
    missing = {"code", "lat", "lng"} - set(reader.fieldnames or [])
    if missing:
        raise InvalidZipFile(f"The header needs the columns {', '.join(sorted(missing))}.")
    rows: list[ZipRow] = []
    seen: set[str] = set()
    for line, row in enumerate(reader, start=2):
        code = (row.get("code") or "").strip()
        if not (code.isdigit() and len(code) == 5):
            raise InvalidZipFile(f"Line {line}: {code!r} is not a five-digit ZIP code.")
        if code in seen:
            raise InvalidZipFile(f"Line {line}: {code} appears twice.")
        seen.add(code)
        try:
            point = Point.parse(row.get("lat") or "", row.get("lng") or "")
        except InvalidCoordinates as exc:
            raise InvalidZipFile(f"Line {line}: the coordinates are not valid.") from exc
        radius_text = (row.get("radius_m") or "").strip()
        try:
            radius = int(radius_text) if radius_text else DEFAULT_RADIUS_M
        except ValueError as exc:
            raise InvalidZipFile(
                f"Line {line}: radius_m must be a whole number of metres."
            ) from exc
        if not 200 <= radius <= 20_000:
            raise InvalidZipFile(f"Line {line}: radius_m must be between 200 and 20000.")
        rows.append(ZipRow(code, point, radius))
    if not rows:
        raise InvalidZipFile("The file has no ZIP codes.")
    return rows


@transaction.atomic
def load_zip_codes(rows: list[ZipRow]) -> int:
    """Add or update each code; codes not in the file are kept (people subscribed by them)."""
    for row in rows:
        ZipCode.objects.update_or_create(
            code=row.code,
            defaults={"lat": row.point.lat, "lng": row.point.lng, "radius_m": row.radius_m},
        )
    return len(rows)
