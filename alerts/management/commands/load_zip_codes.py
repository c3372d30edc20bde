from __future__ import annotations

from argparse import ArgumentParser
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError

from alerts.zipcodes import InvalidZipFile, load_zip_codes, parse_zip_csv


class Command(BaseCommand):
    help = "Load the ZIP codes people can subscribe by, from a CSV with code,lat,lng[,radius_m]."

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument("path", type=Path, help="CSV file")

    def handle(self, *args: Any, **options: Any) -> None:
        path: Path = options["path"]
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise CommandError(f"Cannot read {path}: {exc.strerror}.") from exc
        try:
            count = load_zip_codes(parse_zip_csv(text))
        except InvalidZipFile as exc:
            raise CommandError(f"{path}: {exc}") from exc
        self.stdout.write(self.style.SUCCESS(f"Loaded {count} ZIP codes."))
