from __future__ import annotations

from argparse import ArgumentParser
from typing import Any

from django.core.management.base import BaseCommand, CommandError

from core import retention


class Command(BaseCommand):
    help = (
        "Purge personal data that is past its retention period, one rule at a time "
        "(the worker runs this every hour). --dry-run counts what is due and changes "
        "nothing."
    )

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument(
            "--dry-run", action="store_true", help="count what each rule would remove"
        )
        parser.add_argument(
            "--batch-size",
            type=int,
            default=retention.BATCH_SIZE,
            help=f"rows per batch (default {retention.BATCH_SIZE})",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        dry_run = bool(options["dry_run"])
        verb = "due" if dry_run else "removed"

        def progress(outcome: retention.Outcome) -> None:
            detail = ", ".join(f"{key} {value}" for key, value in sorted(outcome.counts.items()))
            period = f"{outcome.days} day" + ("" if outcome.days == 1 else "s")
            self.stdout.write(
                f"{outcome.rule.key} ({period}): {outcome.total} {verb}"
                + (f" ({detail})" if detail else "")
            )

        batch_size = max(1, int(options["batch_size"]))
        if dry_run:
            outcomes = retention.purge(dry_run=True, batch_size=batch_size, progress=progress)
        else:
            found = retention.purge_exclusively(batch_size=batch_size, progress=progress)
            if found is None:
                raise CommandError("Another purge is running; nothing was done.")
            outcomes = found
        total = sum(outcome.total for outcome in outcomes)
        self.stdout.write(self.style.SUCCESS(f"{total} {verb} in all."))
