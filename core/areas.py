"""Loading the service area and naming where a point lies."""

from __future__ import annotations

import json
import math
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from django.db import transaction
from django.utils import timezone
from django.utils.text import slugify

from core.geo import InvalidCoordinates, Point, bounding_box, centroid, point_in_geometry
from core.models import Neighbourhood, ServiceArea


class InvalidServiceArea(ValueError):
    """The GeoJSON does not describe usable neighbourhood polygons."""


@dataclass(frozen=True)
class NeighbourhoodShape:
    name: str
    geometry: dict[str, Any]


def _check_ring(ring: Any, where: str) -> None:
    if not isinstance(ring, list) or len(ring) < 4:
        raise InvalidServiceArea(f"{where}: a ring needs at least four positions.")
    for position in ring:
        if (
            not isinstance(position, list)
            or len(position) < 2
            or not all(isinstance(v, int | float) for v in position[:2])
        ):
            raise InvalidServiceArea(f"{where}: positions are [longitude, latitude] numbers.")
        lng, lat = position[0], position[1]
        try:
            Point(float(lat), float(lng))
        except InvalidCoordinates as exc:
            raise InvalidServiceArea(f"{where}: {exc}") from exc
    if ring[0][:2] != ring[-1][:2]:
        raise InvalidServiceArea(f"{where}: a ring must end where it starts.")


def _check_geometry(geometry: Any, where: str) -> dict[str, Any]:
    if not isinstance(geometry, dict) or geometry.get("type") not in {"Polygon", "MultiPolygon"}:
        raise InvalidServiceArea(f"{where}: the geometry must be a Polygon or MultiPolygon.")
    coords = geometry.get("coordinates")
    polygons = [coords] if geometry["type"] == "Polygon" else coords
    if not isinstance(polygons, list) or not polygons:
        raise InvalidServiceArea(f"{where}: the geometry has no coordinates.")
    for polygon in polygons:
        if not isinstance(polygon, list) or not polygon:
            raise InvalidServiceArea(f"{where}: a polygon needs an outer ring.")
        for ring in polygon:
            _check_ring(ring, where)
    return {"type": geometry["type"], "coordinates": coords}


def parse_geojson(text: str) -> list[NeighbourhoodShape]:
    """Neighbourhoods from a FeatureCollection whose features carry ``properties.name``."""
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InvalidServiceArea(f"Not valid JSON: {exc.msg} (line {exc.lineno}).") from exc
    if not isinstance(data, dict) or data.get("type") != "FeatureCollection":
        raise InvalidServiceArea("Expected a GeoJSON FeatureCollection.")
    shapes: list[NeighbourhoodShape] = []
    seen: set[str] = set()
    for index, feature in enumerate(data.get("features") or [], start=1):
        where = f"feature {index}"
        if not isinstance(feature, dict):
            raise InvalidServiceArea(f"{where}: not a GeoJSON feature.")
        name = str((feature.get("properties") or {}).get("name") or "").strip()
        if not name:
            raise InvalidServiceArea(f"{where}: properties.name is required.")
        slug = slugify(name)
        if not slug or slug in seen:
            raise InvalidServiceArea(f"{where}: the name {name!r} is empty or used twice.")
        seen.add(slug)
        shapes.append(NeighbourhoodShape(name, _check_geometry(feature.get("geometry"), where)))
    if not shapes:
        raise InvalidServiceArea("The collection has no neighbourhoods.")
    return shapes


def _label_point(geometry: dict[str, Any]) -> Point:
    """A point inside the polygon for labels and for placing a report by neighbourhood."""
    guess = centroid(geometry)
    if point_in_geometry(guess, geometry):
        return guess
    min_lat, min_lng, max_lat, max_lng = bounding_box(geometry)
    steps = 24
    candidates = (
        Point(
            min_lat + (max_lat - min_lat) * (i + 0.5) / steps,
            min_lng + (max_lng - min_lng) * (j + 0.5) / steps,
        )
        for i in range(steps)
        for j in range(steps)
    )
    inside = [p for p in candidates if point_in_geometry(p, geometry)]
    if not inside:
        return guess
    return min(inside, key=lambda p: math.hypot(p.lat - guess.lat, p.lng - guess.lng))


@transaction.atomic
def load_service_area(name: str, shapes: Iterable[NeighbourhoodShape]) -> ServiceArea:
    """Create or update the named area with these neighbourhoods.

    Neighbourhoods are matched by their slug and updated in place, so the reports and
    incidents that name them keep their link; only those missing from the new file go.
    """
    area, _ = ServiceArea.objects.update_or_create(
        name=name, defaults={"loaded_at": timezone.now()}
    )
    kept: list[str] = []
    for shape in shapes:
        min_lat, min_lng, max_lat, max_lng = bounding_box(shape.geometry)
        label = _label_point(shape.geometry)
        slug = slugify(shape.name)
        kept.append(slug)
        Neighbourhood.objects.update_or_create(
            area=area,
            slug=slug,
            defaults={
                "name": shape.name,
                "geometry": shape.geometry,
                "min_lat": min_lat,
                "min_lng": min_lng,
                "max_lat": max_lat,
                "max_lng": max_lng,
                "label_lat": label.lat,
                "label_lng": label.lng,
            },
        )
    area.neighbourhoods.exclude(slug__in=kept).delete()
    return area


def has_service_area() -> bool:
    return Neighbourhood.objects.exists()


def neighbourhood_at(point: Point) -> Neighbourhood | None:
    """The neighbourhood containing ``point``, reading only polygons whose box holds it."""
    candidates = Neighbourhood.objects.filter(
        min_lat__lte=point.lat,
        max_lat__gte=point.lat,
        min_lng__lte=point.lng,
        max_lng__gte=point.lng,
    ).order_by("pk")
    for hood in candidates:
        if point_in_geometry(point, hood.geometry):
            return hood
    return None


class OutsideServiceArea(ValueError):
    """The point lies outside every neighbourhood of the network."""


def locate(point: Point) -> Neighbourhood | None:
    """The neighbourhood of ``point``; OutsideServiceArea when an area is loaded and the
    point is in none of it. With no area loaded, every valid point is accepted."""
    hood = neighbourhood_at(point)
    if hood is None and has_service_area():
        raise OutsideServiceArea("That location is outside the area this network covers.")
    return hood


def as_feature_collection(neighbourhoods: Iterable[Neighbourhood]) -> dict[str, Any]:
    return {
        "type": "FeatureCollection",
        "features": [
            {
                "type": "Feature",
                "properties": {"name": hood.name, "slug": hood.slug},
                "geometry": hood.geometry,
            }
            for hood in neighbourhoods
        ],
    }
