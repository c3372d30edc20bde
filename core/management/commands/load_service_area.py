from __future__ import annotations

from argparse import ArgumentParser
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError

from core.areas import InvalidServiceArea, load_service_area, parse_geojson


class Command(BaseCommand):
    help = (
        "Load the network's service area from a GeoJSON FeatureCollection of neighbourhood "
        "polygons (each feature needs properties.name). Replaces an area of the same name."
    )

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument("path", type=Path, help="GeoJSON file")
        parser.add_argument("--name", required=True, help="name of the service area")

    def handle(self, *args: Any, **options: Any) -> None:
        path: Path = options["path"]
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise CommandError(f"Cannot read {path}: {exc.strerror}.") from exc
        try:
            shapes = parse_geojson(text)
        except InvalidServiceArea as exc:
            raise CommandError(f"{path}: {exc}") from exc
        area = load_service_area(options["name"], shapes)
        self.stdout.write(
            self.style.SUCCESS(f"Loaded {len(shapes)} neighbourhoods into “{area.name}”.")
        )
