from __future__ import annotations

import json
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

from conftest import DEMO_AREA, DOWNTOWN, FRUITVALE, OUTSIDE_AREA
from core import areas
from core.geo import Point, point_in_geometry
from core.models import Neighbourhood, ServiceArea


@pytest.mark.django_db
def test_loading_names_where_points_are(service_area: ServiceArea) -> None:
    assert service_area.neighbourhoods.count() == 6
    hood = areas.neighbourhood_at(Point(*FRUITVALE))
    assert hood is not None and hood.name == "Fruitvale"
    assert areas.locate(Point(*DOWNTOWN)).name == "Downtown"  # type: ignore[union-attr]


@pytest.mark.django_db
def test_points_outside_the_area_are_refused_once_an_area_exists() -> None:
    assert areas.locate(Point(*OUTSIDE_AREA)) is None  # no area loaded: nothing to check
    areas.load_service_area("A", areas.parse_geojson(DEMO_AREA.read_text()))
    with pytest.raises(areas.OutsideServiceArea):
        areas.locate(Point(*OUTSIDE_AREA))


@pytest.mark.django_db
def test_label_points_lie_inside_their_neighbourhood(service_area: ServiceArea) -> None:
    for hood in Neighbourhood.objects.all():
        assert point_in_geometry(Point(hood.label_lat, hood.label_lng), hood.geometry), hood.name


@pytest.mark.django_db
def test_reloading_replaces_the_neighbourhoods(tmp_path: Path) -> None:
    path = tmp_path / "area.geojson"
    path.write_text(DEMO_AREA.read_text())
    call_command("load_service_area", str(path), "--name", "Net")
    data = json.loads(path.read_text())
    data["features"] = data["features"][:2]
    path.write_text(json.dumps(data))
    call_command("load_service_area", str(path), "--name", "Net")
    assert ServiceArea.objects.count() == 1
    assert Neighbourhood.objects.count() == 2


@pytest.mark.django_db
def test_reloading_keeps_the_links_of_neighbourhoods_that_remain(tmp_path: Path) -> None:
    from intake.tests.factories import web_report

    path = tmp_path / "area.geojson"
    path.write_text(DEMO_AREA.read_text())
    call_command("load_service_area", str(path), "--name", "Net")
    report = web_report(at=FRUITVALE)
    call_command("load_service_area", str(path), "--name", "Net")
    report.refresh_from_db()
    assert report.neighbourhood is not None and report.neighbourhood.name == "Fruitvale"
    assert report.incident is not None
    report.incident.refresh_from_db()
    assert report.incident.neighbourhood == report.neighbourhood


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("not json", "Not valid JSON"),
        ('{"type": "Feature"}', "FeatureCollection"),
        ('{"type": "FeatureCollection", "features": []}', "no neighbourhoods"),
        (
            '{"type": "FeatureCollection", "features": [{"type": "Feature", "properties": {}, '
            '"geometry": {"type": "Polygon", "coordinates": [[[0,0],[1,0],[1,1],[0,0]]]}}]}',
            "properties.name",
        ),
        (
            '{"type": "FeatureCollection", "features": [{"type": "Feature", '
            '"properties": {"name": "A"}, '
            '"geometry": {"type": "Point", "coordinates": [0, 0]}}]}',
            "Polygon or MultiPolygon",
        ),
        (
            '{"type": "FeatureCollection", "features": [{"type": "Feature", '
            '"properties": {"name": "A"}, '
            '"geometry": {"type": "Polygon", "coordinates": [[[0,0],[1,0],[1,1],[0,2]]]}}]}',
            "end where it starts",
        ),
        (
            '{"type": "FeatureCollection", "features": [{"type": "Feature", '
            '"properties": {"name": "A"}, '
            '"geometry": {"type": "Polygon", "coordinates": [[[0,0],[1,0],[1,100],[0,0]]]}}]}',
            "Latitude",
        ),
    ],
)
def test_bad_geojson_is_refused_with_a_reason(text: str, message: str) -> None:
    with pytest.raises(areas.InvalidServiceArea, match=message):
        areas.parse_geojson(text)


@pytest.mark.django_db
def test_the_command_reports_bad_files_and_changes_nothing(tmp_path: Path) -> None:
    bad = tmp_path / "bad.geojson"
    bad.write_text('{"type": "FeatureCollection", "features": []}')
    with pytest.raises(CommandError, match="no neighbourhoods"):
        call_command("load_service_area", str(bad), "--name", "Net")
    with pytest.raises(CommandError, match="Cannot read"):
        call_command("load_service_area", str(tmp_path / "missing.geojson"), "--name", "Net")
    assert not ServiceArea.objects.exists()
