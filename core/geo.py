"""Geography without PostGIS: latitude/longitude, H3 cells and exact distances.

Lookups go through indexed H3 cell columns (``cells_within``) and are then checked
exactly with the haversine distance, so no query ever scans every row.
"""

from __future__ import annotations

import functools
import math
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import h3
from django.conf import settings
from h3.api import basic_int as h3_int  # cells as integers, as the indexed columns hold them

EARTH_RADIUS_METERS = 6_371_008.8
Ring = Sequence[Sequence[float]]  # GeoJSON order: [longitude, latitude]


class InvalidCoordinates(ValueError):
    """Coordinates that cannot describe a place on Earth."""


@dataclass(frozen=True, slots=True)
class Point:
    lat: float
    lng: float

    def __post_init__(self) -> None:
        for value in (self.lat, self.lng):
            if not isinstance(value, int | float) or not math.isfinite(value):
                raise InvalidCoordinates("Coordinates must be finite numbers.")
        if not -90.0 <= self.lat <= 90.0:
            raise InvalidCoordinates("Latitude must be between -90 and 90.")
        if not -180.0 <= self.lng <= 180.0:
            raise InvalidCoordinates("Longitude must be between -180 and 180.")

    @classmethod
    def parse(cls, lat: object, lng: object) -> Point:
        try:
            lat_f = float(str(lat).strip())
            lng_f = float(str(lng).strip())
        except ValueError as exc:
            raise InvalidCoordinates("Coordinates must be numbers.") from exc
        return cls(lat_f, lng_f)

    def cell(self, resolution: int | None = None) -> int:
        res = settings.RR_H3_RESOLUTION if resolution is None else resolution
        return int(h3_int.latlng_to_cell(self.lat, self.lng, res))


def distance_meters(a: Point, b: Point) -> float:
    """Great-circle distance (haversine)."""
    phi1, phi2 = math.radians(a.lat), math.radians(b.lat)
    dphi = phi2 - phi1
    dlmb = math.radians(b.lng - a.lng)
    h = math.sin(dphi / 2) ** 2 + math.cos(phi1) * math.cos(phi2) * math.sin(dlmb / 2) ** 2
    return 2 * EARTH_RADIUS_METERS * math.asin(min(1.0, math.sqrt(h)))


def distances_from(origin: Point) -> Callable[[float, float], float]:
    """The haversine distance from ``origin`` to a bare latitude and longitude, equal to
    ``distance_meters`` to the last bit: for loops over many rows, where building and
    checking a Point for each cost more than the arithmetic (bench B4)."""
    phi1 = math.radians(origin.lat)
    cos_phi1 = math.cos(phi1)
    lng1 = origin.lng

    def to(lat: float, lng: float) -> float:
        phi2 = math.radians(lat)
        dphi = phi2 - phi1
        dlmb = math.radians(lng - lng1)
        h = math.sin(dphi / 2) ** 2 + cos_phi1 * math.cos(phi2) * math.sin(dlmb / 2) ** 2
        return 2 * EARTH_RADIUS_METERS * math.asin(min(1.0, math.sqrt(h)))

    return to


def ring_count(distance_m: float, resolution: int) -> int:
    """How many grid rings around a cell cover every point within ``distance_m``.

    Neighbouring H3 centres are about sqrt(3) edge lengths apart; cell sizes vary across
    the globe by up to about a factor of two, so the average edge is discounted to 60 %
    and one ring is added for the point's offset inside its own cell.
    """
    return math.ceil(distance_m / (math.sqrt(3) * _edge_m(resolution) * 0.6)) + 1


@functools.cache
def _edge_m(resolution: int) -> float:
    return float(h3.average_hexagon_edge_length(resolution, unit="m"))


def cells_within(point: Point, distance_m: float, resolution: int | None = None) -> list[int]:
    """Every cell that can hold a point within ``distance_m`` of ``point``."""
    res = settings.RR_H3_RESOLUTION if resolution is None else resolution
    origin = h3_int.latlng_to_cell(point.lat, point.lng, res)
    return [int(c) for c in h3_int.grid_disk(origin, ring_count(distance_m, res))]


def cells_touching(point: Point, distance_m: float, resolution: int | None = None) -> list[int]:
    """The cells that a circle of ``distance_m`` around ``point`` reaches into: tighter
    than ``cells_within``, for areas stored as cells (subscriptions) where no exact
    distance is checked afterwards. A cell is kept when its centre is within the
    distance plus the cell's own radius (centre to farthest corner, measured here, as
    cell sizes vary across the globe)."""
    res = settings.RR_H3_RESOLUTION if resolution is None else resolution
    origin = h3_int.latlng_to_cell(point.lat, point.lng, res)
    centre = Point(*h3_int.cell_to_latlng(origin))
    cell_radius = max(distance_meters(centre, Point(*v)) for v in h3_int.cell_to_boundary(origin))
    reach = distance_m + cell_radius * 1.05
    return [
        int(cell)
        for cell in h3_int.grid_disk(origin, ring_count(distance_m, res))
        if distance_meters(point, Point(*h3_int.cell_to_latlng(cell))) <= reach
    ]


def point_in_ring(point: Point, ring: Ring) -> bool:
    """Ray casting on a GeoJSON linear ring (planar; fine at neighbourhood scale)."""
    inside = False
    x, y = point.lng, point.lat
    count = len(ring)
    j = count - 1
    for i in range(count):
        xi, yi = ring[i][0], ring[i][1]
        xj, yj = ring[j][0], ring[j][1]
        if (yi > y) != (yj > y) and x < (xj - xi) * (y - yi) / (yj - yi) + xi:
            inside = not inside
        j = i
    return inside


def point_in_polygon(point: Point, polygon: Sequence[Ring]) -> bool:
    """A GeoJSON Polygon: the outer ring, minus any holes."""
    if not polygon or not point_in_ring(point, polygon[0]):
        return False
    return not any(point_in_ring(point, hole) for hole in polygon[1:])


def polygons_of(geometry: Mapping[str, Any]) -> list[Sequence[Ring]]:
    """The polygons of a GeoJSON Polygon or MultiPolygon (already validated)."""
    kind = geometry.get("type")
    coords = geometry.get("coordinates") or []
    if kind == "Polygon":
        return [coords]
    if kind == "MultiPolygon":
        return list(coords)
    return []


def point_in_geometry(point: Point, geometry: Mapping[str, Any]) -> bool:
    return any(point_in_polygon(point, polygon) for polygon in polygons_of(geometry))


def bounding_box(geometry: Mapping[str, Any]) -> tuple[float, float, float, float]:
    """(min_lat, min_lng, max_lat, max_lng) of a Polygon or MultiPolygon."""
    lats: list[float] = []
    lngs: list[float] = []
    for polygon in polygons_of(geometry):
        for ring in polygon:
            for position in ring:
                lngs.append(float(position[0]))
                lats.append(float(position[1]))
    return min(lats), min(lngs), max(lats), max(lngs)


def centroid(geometry: Mapping[str, Any]) -> Point:
    """Centre of the first outer ring's vertices: a first guess for a label point."""
    ring = list(polygons_of(geometry)[0][0])
    points = ring[:-1] if len(ring) > 1 and list(ring[0]) == list(ring[-1]) else ring
    lat = sum(p[1] for p in points) / len(points)
    lng = sum(p[0] for p in points) / len(points)
    return Point(lat, lng)


_COORDINATE_PATTERNS = (
    # geo:37.78,-122.41 and map links: ?q=37.78,-122.41 / @37.78,-122.41 / ll=37.78,-122.41
    re.compile(r"(?:geo:|[?&](?:q|ll|query)=|@)(-?\d{1,2}\.\d{3,})\s*,\s*(-?\d{1,3}\.\d{3,})"),
    # a bare pair with at least three decimals each: "37.7812, -122.4101"
    re.compile(r"(?<![\d.])(-?\d{1,2}\.\d{3,})\s*,\s*(-?\d{1,3}\.\d{3,})(?![\d.])"),
)


def find_coordinates(text: str) -> Point | None:
    """The first latitude/longitude written in ``text`` (a shared map link or pin)."""
    for pattern in _COORDINATE_PATTERNS:
        for found in pattern.finditer(text):
            try:
                return Point.parse(found.group(1), found.group(2))
            except InvalidCoordinates:
                continue
    return None
