"""Re-encrypt personal data under the current field key (the first in RR_FIELD_KEYS).

Every ``EncryptedTextField`` of every model, and the encrypted files (web-form photos,
evidence originals and shared copies), are walked in primary-key batches; the keys of
family-support cases (``cases.keystore``) are wrapped again under the current key. A value whose
token names another key id is decrypted and sealed again under the current key; values
already under it are skipped, so the command is idempotent and resumes where an
interrupted run stopped. Each row is written with a compare-and-swap on the old token
(a ``Sealed`` value, the lower-level form the field accepts), so an edit made while the
command runs is never overwritten. Content is never printed: problems are named by
model, primary key and field only.
"""

from __future__ import annotations

from argparse import ArgumentParser
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from django.apps import apps
from django.core.files.base import ContentFile
from django.core.management.base import BaseCommand, CommandError
from django.db import models

from core import crypto
from core.fields import EncryptedTextField, Sealed

BATCH_SIZE = 500
HEADER_BYTES = 64  # enough for "rr1.<key id up to 16>."


@dataclass(frozen=True)
class FileField:
    """A FileField whose files hold ``crypto.encrypt_bytes`` output."""

    name: str
    context: Callable[[Any], str]


def file_fields() -> dict[str, list[FileField]]:
    """Encrypted files by model label; new users of encrypt_bytes belong here."""
    from dispatch.evidence import context as evidence_context
    from intake.actions import photo_context

    return {
        "intake.ReportPhoto": [FileField("file", photo_context)],
        "dispatch.Evidence": [
            FileField("original", lambda e: evidence_context(e.uuid, "original")),
            FileField("shared", lambda e: evidence_context(e.uuid, "shared")),
        ],
    }


@dataclass
class Target:
    model: type[models.Model]
    fields: list[EncryptedTextField] = field(default_factory=list)
    files: list[FileField] = field(default_factory=list)

    @property
    def label(self) -> str:
        return self.model._meta.label


def targets() -> list[Target]:
    found: dict[str, Target] = {}
    for model in apps.get_models():
        if model._meta.proxy:
            continue
        encrypted = [
            f for f in model._meta.local_concrete_fields if isinstance(f, EncryptedTextField)
        ]
        if encrypted:
            found[model._meta.label] = Target(model, fields=encrypted)
    for label, specs in file_fields().items():
        model = apps.get_model(label)
        found.setdefault(label, Target(model)).files.extend(specs)
    return [found[label] for label in sorted(found)]


@dataclass(frozen=True)
class Problem:
    label: str
    pk: Any
    field: str


class Undecryptable(Exception):
    def __init__(self, problem: Problem) -> None:
        super().__init__(problem)
        self.problem = problem


def _file_key_id(header: bytes) -> str:
    version, _, rest = header.partition(b".")
    key_id, sep, _ = rest.partition(b".")
    if version.decode("ascii", "replace") != crypto.TOKEN_VERSION or not sep:
        raise crypto.DecryptionError("Not an encrypted file.")
    return key_id.decode("ascii", "replace")


class Rotation:
    def __init__(self, *, dry_run: bool, skip: bool, batch_size: int) -> None:
        self.dry_run = dry_run
        self.skip = skip
        self.batch_size = batch_size
        self.current = crypto.field_keys()[0].key_id
        self.problems: list[Problem] = []

    def _problem(self, target: Target, pk: Any, name: str) -> None:
        problem = Problem(target.label, pk, name)
        if not self.skip:
            raise Undecryptable(problem)
        self.problems.append(problem)

    def rows(self, target: Target, after_pk: Any) -> Iterator[list[models.Model]]:
        manager = target.model._base_manager
        names = [f.attname for f in target.fields] + [spec.name for spec in target.files]
        row_keys = {f.row_key for f in target.fields} | ({"uuid"} if target.files else set())
        queryset = manager.only(*names, *row_keys).order_by("pk")
        if after_pk is not None:
            queryset = queryset.filter(pk__gt=after_pk)
        while True:
            batch = list(queryset[: self.batch_size])
            if not batch:
                return
            yield batch
            queryset = queryset.filter(pk__gt=batch[-1].pk)

    def row(self, target: Target, instance: models.Model) -> bool:
        """Rotate one row; True when it was (or, in a dry run, would be) changed."""
        old: dict[str, Sealed] = {}
        new: dict[str, Sealed] = {}
        for encrypted in target.fields:
            sealed = instance.__dict__.get(encrypted.attname)
            if not isinstance(sealed, Sealed):
                continue
            try:
                if crypto.token_key_id(sealed.token) == self.current:
                    continue
                context = encrypted.context_for(instance)
                plaintext = crypto.decrypt(sealed.token, context=context)
            except crypto.DecryptionError:
                self._problem(target, instance.pk, encrypted.name)
                continue
            old[encrypted.attname] = sealed
            if not self.dry_run:
                new[encrypted.attname] = Sealed(crypto.encrypt(plaintext, context=context))
        changed = bool(old)
        if new:
            target.model._base_manager.filter(pk=instance.pk, **old).update(**new)
        for spec in target.files:
            changed = self.file(target, instance, spec) or changed
        return changed

    def file(self, target: Target, instance: models.Model, spec: FileField) -> bool:
        stored = getattr(instance, spec.name)
        if not stored:
            return False
        context = spec.context(instance)
        try:
            with stored.open("rb") as handle:
                if _file_key_id(handle.read(HEADER_BYTES)) == self.current:
                    return False
                handle.seek(0)
                data = crypto.decrypt_bytes(handle.read(), context=context)
        except (crypto.DecryptionError, OSError):
            self._problem(target, instance.pk, spec.name)
            return False
        if self.dry_run:
            return True
        # Write the new file first, point the row at it (only if it still names the
        # old one), then remove the old: an interruption leaves at worst an orphan.
        old_name = stored.name
        storage = stored.storage
        new_name = storage.save(old_name, ContentFile(crypto.encrypt_bytes(data, context=context)))
        moved = (
            target.model._base_manager.filter(pk=instance.pk, **{spec.name: old_name}).update(
                **{spec.name: new_name}
            )
            == 1
        )
        storage.delete(old_name if moved else new_name)
        return moved


class Command(BaseCommand):
    help = (
        "Re-encrypt every encrypted value and file under the current key (the first in "
        "RR_FIELD_KEYS). Safe to run again after an interruption: values already under "
        "the current key are skipped. --dry-run counts what is under older keys."
    )

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument(
            "--dry-run", action="store_true", help="count rows under older keys, change nothing"
        )
        parser.add_argument(
            "--skip-undecryptable",
            action="store_true",
            help="list values no configured key decrypts (model, pk, field) and go on",
        )
        parser.add_argument(
            "--batch-size", type=int, default=BATCH_SIZE, help=f"default {BATCH_SIZE}"
        )
        parser.add_argument(
            "--start-model", help="resume at this model (app_label.ModelName), skipping earlier"
        )
        parser.add_argument("--after-pk", help="with --start-model: resume after this pk")

    def handle(self, *args: Any, **options: Any) -> None:
        rotation = Rotation(
            dry_run=bool(options["dry_run"]),
            skip=bool(options["skip_undecryptable"]),
            batch_size=max(1, int(options["batch_size"])),
        )
        found = targets()
        start = options.get("start_model")
        after_pk = options.get("after_pk")
        if after_pk is not None and not start:
            raise CommandError("--after-pk needs --start-model.")
        if start:
            labels = [t.label.lower() for t in found]
            if start.lower() not in labels:
                raise CommandError(f"No model with encrypted data is called {start!r}.")
            found = found[labels.index(start.lower()) :]
        verb = "under older keys" if rotation.dry_run else "re-encrypted"
        self.stdout.write(f"Current key: {rotation.current}")
        total_changed = 0
        for index, target in enumerate(found):
            resume_after = after_pk if index == 0 else None
            changed = self.rotate(rotation, target, resume_after)
            total_changed += changed
            self.stdout.write(f"{target.label}: {changed} {verb}")
        total_changed += self.rotate_mfa(rotation, verb)
        if not start:
            total_changed += self.rotate_case_keys(rotation)
        for problem in rotation.problems:
            self.stderr.write(
                f"could not decrypt: {problem.label} pk={problem.pk} field={problem.field}"
            )
        summary = f"{total_changed} rows {verb} in all."
        if rotation.problems:
            summary += f" {len(rotation.problems)} values could not be decrypted (listed above)."
        self.stdout.write(self.style.SUCCESS(summary))

    def rotate_mfa(self, rotation: Rotation, verb: str) -> int:
        """allauth's MFA secrets live in a JSON column (``accounts.keys``)."""
        from accounts.keys import rotate_mfa_secrets

        result = rotate_mfa_secrets(current=rotation.current, dry_run=rotation.dry_run)
        for pk in result.undecryptable:
            problem = Problem("allauth MFA secret", pk, "data")
            if not rotation.skip:
                raise CommandError(
                    f"{problem.label} pk={pk} cannot be decrypted with the configured keys."
                )
            rotation.problems.append(problem)
        self.stdout.write(f"MFA secrets: {result.changed} {verb}")
        return result.changed

    def rotate_case_keys(self, rotation: Rotation) -> int:
        """Family-support cases keep their data under their own keys, which live in the
        case key store wrapped by the field key: only the wrapping is renewed."""
        from cases import keystore

        changed, unreadable = keystore.rewrap_all(dry_run=rotation.dry_run)
        verb = "under older keys" if rotation.dry_run else "wrapped again"
        self.stdout.write(f"case keys: {changed} {verb}")
        for key_ref in unreadable:
            if not rotation.skip:
                raise CommandError(
                    f"case key {key_ref} cannot be unwrapped with any configured key; stopped "
                    "there. Add the missing key and run again, or rerun with "
                    "--skip-undecryptable to list such keys and go on."
                )
            rotation.problems.append(Problem("case key", key_ref, "wrapping"))
        return changed

    def rotate(self, rotation: Rotation, target: Target, after_pk: Any) -> int:
        queryset = target.model._base_manager.all()
        total = queryset.count()
        done = queryset.filter(pk__lte=after_pk).count() if after_pk is not None else 0
        changed = 0
        tty = self.stdout.isatty()
        self.progress(target, done, total, tty)
        for batch in rotation.rows(target, after_pk):
            for instance in batch:
                try:
                    changed += rotation.row(target, instance)
                except Undecryptable as exc:
                    problem = exc.problem
                    if tty:
                        self.stdout.write("")
                    raise CommandError(
                        f"{problem.label} pk={problem.pk} field={problem.field} cannot be "
                        "decrypted with any configured key; stopped there. Add the missing "
                        "key and run again (rotated rows are skipped), or rerun with "
                        "--skip-undecryptable to list such values and go on."
                    ) from None
            done += len(batch)
            self.progress(target, done, total, tty)
        if tty:
            self.stdout.write("")
        return changed

    def progress(self, target: Target, done: int, total: int, tty: bool) -> None:
        if tty:
            width = 30
            filled = width * done // total if total else width
            bar = "#" * filled + "-" * (width - filled)
            self.stdout.write(f"\r{target.label}: [{bar}] {done}/{total}", ending="")
            self.stdout.flush()
        else:
            self.stdout.write(f"{target.label}: {done}/{total}")
