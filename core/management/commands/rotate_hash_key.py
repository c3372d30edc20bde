"""Recompute every keyed-hash column under the current RR_HASH_KEY.

Before: move the old key to the front of RR_HASH_KEYS_PREVIOUS, set the new RR_HASH_KEY,
restart the processes. Then run this. Each column of ``core.hash_rotation.COLUMNS`` is
walked in primary-key batches; a row's number is decrypted, hashed under the current
key, and written with a compare-and-swap on the old hash (an edit made meanwhile is
never overwritten). Rows already under the current key are skipped, so a rerun resumes.
Opt-outs are carried forward from the numbers the other rows hold: the current-key
opt-out is added before any row of that number changes, the old one removed at the end.
Numbers are never printed.

When ``--dry-run`` reports 0 to change and no conflicts, the previous key can go, except
while opt-outs whose number is held nowhere must hold: those can only be found under the
key they were made with (see docs/SECURITY.md).
"""

from __future__ import annotations

from argparse import ArgumentParser
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from django.core.management.base import BaseCommand, CommandError
from django.db import IntegrityError, models, transaction

from core import crypto, phones
from core.hash_rotation import COLUMNS, OPT_OUT, HashColumn, column

BATCH_SIZE = 500


@dataclass
class Tally:
    changed: int = 0
    without_number: int = 0
    conflicts: list[Any] = field(default_factory=list)


@dataclass
class OptOuts:
    """Opt-outs found under a previous key of a number some row holds."""

    old: set[str] = field(default_factory=set)
    current: set[str] = field(default_factory=set)


class Rotation:
    def __init__(self, *, dry_run: bool, batch_size: int) -> None:
        self.dry_run = dry_run
        self.batch_size = batch_size
        self.optouts = OptOuts()
        self.opt_out_model = column(OPT_OUT).model

    def batches(self, spec: HashColumn) -> Iterator[list[models.Model]]:
        queryset = spec.model._base_manager.exclude(**{spec.column: ""}).order_by("pk")
        if spec.related:
            queryset = queryset.select_related(*spec.related)
        while True:
            batch = list(queryset[: self.batch_size])
            if not batch:
                return
            yield batch
            queryset = queryset.filter(pk__gt=batch[-1].pk)

    def carry_opt_outs(self, numbers: set[str]) -> None:
        """Add the current-key opt-out of each number that opted out under an old key."""
        old_to_new: dict[str, str] = {}
        for number in numbers:
            new = phones.phone_hash(number)
            for old in phones.previous_phone_hashes(number):
                old_to_new[old] = new
        manager = self.opt_out_model._base_manager
        found = set(manager.filter(phone_hash__in=old_to_new).values_list("phone_hash", flat=True))
        current = {phones.phone_hash(n) for n in numbers}
        self.optouts.current |= set(
            manager.filter(phone_hash__in=current).values_list("phone_hash", flat=True)
        )
        if not found:
            return
        self.optouts.old |= found
        if not self.dry_run:
            self.optouts.current |= {old_to_new[h] for h in found}
            manager.bulk_create(
                [self.opt_out_model(phone_hash=old_to_new[h]) for h in found],
                ignore_conflicts=True,
            )

    def batch(self, spec: HashColumn, rows: list[models.Model], tally: Tally) -> None:
        read = spec.number
        if read is None:
            return
        numbers = {row.pk: read(row) for row in rows}
        self.carry_opt_outs({n for n in numbers.values() if n})
        manager = spec.model._base_manager
        for row in rows:
            stored = getattr(row, spec.column)
            number = numbers[row.pk]
            if number is None:
                tally.without_number += 1
                continue
            new = phones.phone_hash(number)
            if stored == new:
                continue
            tally.changed += 1
            if self.dry_run:
                continue
            try:
                with transaction.atomic():
                    manager.filter(pk=row.pk, **{spec.column: stored}).update(**{spec.column: new})
            except IntegrityError:
                # Another row already holds the number under the current key.
                tally.changed -= 1
                tally.conflicts.append(row.pk)

    def finish_opt_outs(self) -> int:
        """Remove the old-key opt-outs now that their current-key rows exist."""
        if self.dry_run or not self.optouts.old:
            return len(self.optouts.old)
        manager = self.opt_out_model._base_manager
        removed = 0
        old = sorted(self.optouts.old)
        for start in range(0, len(old), self.batch_size):
            chunk = old[start : start + self.batch_size]
            removed += manager.filter(phone_hash__in=chunk).delete()[0]
        return removed

    def opt_outs_without_number(self) -> int:
        """Opt-outs no held number accounts for: left under the key they were made with
        (some may be current already, e.g. made after the rotation began)."""
        total = self.opt_out_model._base_manager.count()
        accounted = self.optouts.current | (self.optouts.old if self.dry_run else set())
        return max(0, total - len(accounted))


class Command(BaseCommand):
    help = (
        "Recompute every keyed-hash column under the current RR_HASH_KEY from the "
        "decrypted numbers (after moving the old key to RR_HASH_KEYS_PREVIOUS). Safe to "
        "run again: rows already under the current key are skipped."
    )

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument("--dry-run", action="store_true", help="count, change nothing")
        parser.add_argument(
            "--batch-size", type=int, default=BATCH_SIZE, help=f"default {BATCH_SIZE}"
        )

    def handle(self, *args: Any, **options: Any) -> None:
        rotation = Rotation(
            dry_run=bool(options["dry_run"]), batch_size=max(1, int(options["batch_size"]))
        )
        previous = len(crypto.previous_hash_keys())
        self.stdout.write(f"Previous hash keys: {previous}")
        if not previous:
            self.stdout.write("RR_HASH_KEYS_PREVIOUS is empty: checking only.")
        verb = "to change" if rotation.dry_run else "recomputed"
        conflicts = 0
        total_changed = 0
        for spec in COLUMNS:
            if spec.number is None:
                continue
            tally = Tally()
            name = f"{spec.label}.{spec.column}"
            total = spec.model._base_manager.exclude(**{spec.column: ""}).count()
            done = 0
            for rows in rotation.batches(spec):
                rotation.batch(spec, rows, tally)
                done += len(rows)
                self.stdout.write(f"{name}: {done}/{total}")
            total_changed += tally.changed
            line = f"{name}: {tally.changed} {verb}"
            if tally.without_number:
                line += f", {tally.without_number} without a stored number (left as they are)"
            self.stdout.write(line)
            for pk in tally.conflicts:
                conflicts += 1
                self.stderr.write(
                    f"conflict: {spec.label} pk={pk} {spec.column}: another row holds the "
                    "same number under the current key; merge or remove one, run again."
                )
        carried = rotation.finish_opt_outs()
        self.stdout.write(
            f"{OPT_OUT}.phone_hash: {carried} {verb} from the numbers held; "
            f"{rotation.opt_outs_without_number()} not accounted for by any held number "
            "(found only under the key they were made with)"
        )
        summary = f"{total_changed + carried} hashes {verb} in all."
        if conflicts:
            summary += f" {conflicts} conflicts (listed above)."
        self.stdout.write(self.style.SUCCESS(summary))
        if conflicts and not rotation.dry_run:
            raise CommandError("Some rows could not be recomputed; see the conflicts above.")
