from __future__ import annotations

from argparse import ArgumentParser
from typing import Any

from django.core.management.base import BaseCommand, CommandError

from messaging import accepted, spool


class Command(BaseCommand):
    help = (
        "Store the inbound SMS kept in the spool while the database was unreachable, in "
        "arrival order. The web process and the worker do this on their own; this is for "
        "an operator who wants it now or after fixing a key."
    )

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument(
            "--release-quarantined",
            action="store_true",
            help="first put files set aside as unreadable or failed back in the queue",
        )
        parser.add_argument(
            "--release-held",
            action="store_true",
            help=(
                "put accepted texts the worker held after failing to store them back in "
                "its queue (RR_SMS_ACCEPT_FIRST), then stop"
            ),
        )

    def handle(self, *args: Any, **options: Any) -> None:
        if options["release_held"]:
            self.stdout.write(f"{accepted.release_held()} held accepted texts released.")
            return
        if options["release_quarantined"]:
            self.stdout.write(f"{spool.release_quarantined()} quarantined files released.")
        result = spool.replay()
        if result is None:
            raise CommandError("Another process is replaying the spool; try again shortly.")
        self.stdout.write(
            f"{result.stored} stored, {result.duplicates} already stored, "
            f"{result.corrupt} set aside in {spool.directory() / spool.CORRUPT_DIR}, "
            f"{result.remaining} waiting."
        )
        if result.reserved:
            raise CommandError("A web process is still writing a spooled text; run it again.")
        if result.remaining:
            raise CommandError("The database is unreachable; messages still wait.")
