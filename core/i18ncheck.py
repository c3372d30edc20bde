"""Keep translations complete: ``python -m core.i18ncheck [--write]``.

Without ``--write`` it fails (exit 1) when the committed .po files are stale (a string
was added, changed or removed in the code), when any entry is untranslated or fuzzy,
or when a .mo file is not the compiled form of its .po. With ``--write`` it refreshes
the .po files and compiles them; translators then fill in what is new.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import django

ROOT = Path(__file__).resolve().parent.parent
LOCALE = ROOT / "locale"
IGNORE = ["var/*", "static/vendor/*", "bench/*", "*/tests/*", "tests/*", "conftest.py"]
HEADER_DATE = re.compile(r'^"(POT-Creation-Date|PO-Revision-Date): .*\\n"$', re.MULTILINE)


def translated_languages() -> list[str]:
    from django.conf import settings

    return [code for code in settings.RR_LANGUAGES if code != "en"]


def make_messages(project: Path, languages: list[str]) -> None:
    """Run makemessages in ``project``: it writes into ``project/locale``, and nowhere
    else, because it picks the locale folder from the files' own location."""
    from django.core.management import call_command
    from django.test.utils import override_settings

    previous = Path.cwd()
    os.chdir(project)
    try:
        with override_settings(LOCALE_PATHS=[str(project / "locale")]):
            call_command(
                "makemessages",
                locale=languages,
                no_obsolete=True,
                no_location=True,
                ignore_patterns=IGNORE,
                verbosity=0,
            )
    finally:
        os.chdir(previous)


def copy_sources(destination: Path) -> None:
    """The translatable sources and the committed catalogs, for a dry run."""
    skip = shutil.ignore_patterns(".*", "__pycache__", "var", "vendor", "*.pyc", "*.sqlite3")
    for item in ROOT.iterdir():
        if item.name.startswith(".") or item.name in {"var", "requirements"}:
            continue
        if item.is_dir():
            shutil.copytree(item, destination / item.name, ignore=skip)
        elif item.suffix in {".py", ".html", ".txt"}:
            shutil.copy2(item, destination / item.name)


def compile_po(po: Path, mo: Path) -> None:
    subprocess.run(["msgfmt", "--check", "-o", str(mo), str(po)], check=True)  # noqa: S603,S607


def problems_in(po: Path) -> list[str]:
    """Untranslated and fuzzy entries, counted by msgfmt."""
    result = subprocess.run(  # noqa: S603
        ["msgfmt", "--check", "--statistics", "-o", os.devnull, str(po)],  # noqa: S607
        capture_output=True,
        text=True,
        check=False,
    )
    report = result.stderr.strip()
    issues = []
    if result.returncode != 0:
        issues.append(f"{po}: msgfmt failed: {report}")
    if "untranslated" in report or "fuzzy" in report:
        issues.append(f"{po}: {report}")
    return issues


def normalised(po: Path) -> str:
    return HEADER_DATE.sub("", po.read_text(encoding="utf-8"))


def check() -> list[str]:
    issues: list[str] = []
    languages = translated_languages()
    with tempfile.TemporaryDirectory() as tmp:
        project = Path(tmp) / "project"
        project.mkdir()
        copy_sources(project)
        (project / "locale").mkdir(exist_ok=True)
        make_messages(project, languages)
        for language in languages:
            committed = LOCALE / language / "LC_MESSAGES" / "django.po"
            regenerated = project / "locale" / language / "LC_MESSAGES" / "django.po"
            if not committed.exists():
                issues.append(f"{committed} is missing: run `make translations`.")
                continue
            if normalised(committed) != normalised(regenerated):
                issues.append(
                    f"{committed} is out of date with the code: run `make translations` and "
                    "translate the new entries."
                )
            issues.extend(problems_in(committed))
            compiled = Path(tmp) / f"{language}.mo"
            compile_po(committed, compiled)
            mo = committed.with_suffix(".mo")
            if not mo.exists() or mo.read_bytes() != compiled.read_bytes():
                issues.append(f"{mo} is not compiled from its .po: run `make translations`.")
    return issues


def write() -> None:
    languages = translated_languages()
    LOCALE.mkdir(exist_ok=True)
    make_messages(ROOT, languages)
    for language in languages:
        po = LOCALE / language / "LC_MESSAGES" / "django.po"
        compile_po(po, po.with_suffix(".mo"))
        for issue in problems_in(po):
            print(issue)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--write", action="store_true", help="refresh and compile the catalogs")
    args = parser.parse_args()
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "rapidresponse.test_settings")
    django.setup()
    if args.write:
        write()
        return 0
    issues = check()
    for issue in issues:
        print(issue, file=sys.stderr)
    if not issues:
        print("Translations are complete and compiled.")
    return 1 if issues else 0


if __name__ == "__main__":
    sys.exit(main())
