from __future__ import annotations

import math

import h3
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from core import geo
from core.geo import InvalidCoordinates, Point


@pytest.mark.parametrize(
    ("lat", "lng"),
    [(91, 0), (-90.5, 0), (0, 180.01), (0, -181), (math.nan, 0), (0, math.inf), ("x", 1), ("", "")],
)
def test_impossible_coordinates_are_refused(lat: object, lng: object) -> None:
    with pytest.raises(InvalidCoordinates):
        Point.parse(lat, lng)


def test_distance_matches_a_known_value() -> None:
    # One degree of latitude is about 111.2 km.
    assert geo.distance_meters(Point(0, 0), Point(1, 0)) == pytest.approx(111_195, rel=1e-3)


@settings(max_examples=300, deadline=None)
@given(
    lat=st.floats(min_value=-80, max_value=80),
    lng=st.floats(min_value=-179, max_value=179),
    bearing=st.floats(min_value=0, max_value=2 * math.pi),
    fraction=st.floats(min_value=0, max_value=1),
    distance=st.sampled_from([100.0, 500.0, 1500.0, 5000.0]),
    resolution=st.sampled_from([7, 8, 9]),
)
def test_cells_within_cover_every_point_within_the_distance(  # noqa: PLR0917 - Hypothesis
    lat: float, lng: float, bearing: float, fraction: float, distance: float, resolution: int
) -> None:
    origin = Point(lat, lng)
    d = distance * fraction
    # Walk d metres from the origin along the bearing (spherical destination formula).
    delta = d / geo.EARTH_RADIUS_METERS
    phi1, lmb1 = math.radians(lat), math.radians(lng)
    phi2 = math.asin(
        math.sin(phi1) * math.cos(delta) + math.cos(phi1) * math.sin(delta) * math.cos(bearing)
    )
    lmb2 = lmb1 + math.atan2(
        math.sin(bearing) * math.sin(delta) * math.cos(phi1),
        math.cos(delta) - math.sin(phi1) * math.sin(phi2),
    )
    target = Point(math.degrees(phi2), (math.degrees(lmb2) + 540) % 360 - 180)
    assert geo.distance_meters(origin, target) <= distance + 1e-6
    cells = set(geo.cells_within(origin, distance, resolution))
    assert target.cell(resolution) in cells


def test_cells_are_h3_integers_at_the_configured_resolution() -> None:
    cell = Point(37.7766, -122.2265).cell()
    assert h3.get_resolution(h3.int_to_str(cell)) == 8


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("ICE here 37.7768,-122.2262 now", (37.7768, -122.2262)),
        ("pin: 37.77680, -122.22620", (37.7768, -122.2262)),
        ("https://maps.google.com/?q=37.7768,-122.2262", (37.7768, -122.2262)),
        ("https://www.google.com/maps/@37.7768,-122.2262,17z", (37.7768, -122.2262)),
        ("geo:37.7768,-122.2262", (37.7768, -122.2262)),
    ],
)
def test_coordinates_are_found_in_messages(text: str, expected: tuple[float, float]) -> None:
    found = geo.find_coordinates(text)
    assert found is not None
    assert (found.lat, found.lng) == pytest.approx(expected)


@pytest.mark.parametrize(
    "text",
    ["at 35th and International", "3 vans, 2.5 hours", "99.1234, 10.1234", "call 510.555.0123"],
)
def test_text_without_coordinates_gives_none(text: str) -> None:
    assert geo.find_coordinates(text) is None


SQUARE = {
    "type": "Polygon",
    "coordinates": [
        [[0, 0], [10, 0], [10, 10], [0, 10], [0, 0]],
        [[4, 4], [6, 4], [6, 6], [4, 6], [4, 4]],
    ],
}


@pytest.mark.parametrize(
    ("lat", "lng", "inside"), [(1, 1, True), (5, 5, False), (11, 5, False), (9.9, 9.9, True)]
)
def test_point_in_polygon_respects_holes(lat: float, lng: float, inside: bool) -> None:
    assert geo.point_in_geometry(Point(lat, lng), SQUARE) is inside


def test_multipolygons_and_bounding_boxes() -> None:
    multi = {
        "type": "MultiPolygon",
        "coordinates": [
            [[[0, 0], [1, 0], [1, 1], [0, 1], [0, 0]]],
            [[[5, 5], [6, 5], [6, 6], [5, 6], [5, 5]]],
        ],
    }
    assert geo.point_in_geometry(Point(5.5, 5.5), multi)
    assert not geo.point_in_geometry(Point(3, 3), multi)
    assert geo.bounding_box(multi) == (0, 0, 6, 6)


@pytest.mark.parametrize("distance", [100, 500, 2000, 8000])
def test_cells_touching_a_circle_cover_it_and_little_more(distance: int) -> None:
    centre = Point(37.7766, -122.2265)
    touching = set(geo.cells_touching(centre, distance, 8))
    # Every point inside the circle falls in a kept cell...
    for bearing in range(0, 360, 15):
        for fraction in (0.0, 0.5, 0.99):
            d = distance * fraction
            lat = centre.lat + d * math.cos(math.radians(bearing)) / 111_320
            lng = centre.lng + d * math.sin(math.radians(bearing)) / (
                111_320 * math.cos(math.radians(centre.lat))
            )
            assert Point(lat, lng).cell(8) in touching
    # ...and no kept cell lies wholly outside it: its centre is within reach.
    edge = h3.average_hexagon_edge_length(8, unit="m")
    for cell in touching:
        middle = Point(*h3.cell_to_latlng(h3.int_to_str(cell)))
        assert geo.distance_meters(centre, middle) <= distance + 1.3 * edge


@settings(max_examples=300, deadline=None)
@given(
    a=st.tuples(st.floats(-90, 90), st.floats(-180, 180)),
    b=st.tuples(st.floats(-90, 90), st.floats(-180, 180)),
)
def test_distances_from_one_origin_equal_distance_meters_exactly(
    a: tuple[float, float], b: tuple[float, float]
) -> None:
    # Bitwise equal: matching compares these distances with the ORM rule's.
    assert geo.distances_from(Point(*a))(*b) == geo.distance_meters(Point(*a), Point(*b))
