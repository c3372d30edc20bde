"""The local semgrep rules (.semgrep/django.yml) catch what their samples say they do.

Each ``ruleid: <rule>`` comment in .semgrep/django.py and .semgrep/django.html marks a
line the rule must flag, each ``ok: <rule>`` one it must leave alone: a rule that stops
matching (a semgrep upgrade, a careless edit) fails here rather than passing CI quietly.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SEMGREP = ROOT / ".venv" / "bin" / "semgrep"
SAMPLES = [ROOT / ".semgrep" / "django.py", ROOT / ".semgrep" / "django.html"]
MARK = re.compile(r"(ruleid|ok): ([\w-]+)")


def expected() -> tuple[set[tuple[str, int, str]], set[tuple[str, int, str]]]:
    flagged: set[tuple[str, int, str]] = set()
    clean: set[tuple[str, int, str]] = set()
    for sample in SAMPLES:
        for number, line in enumerate(sample.read_text().splitlines(), start=1):
            match = MARK.search(line)
            if match:
                # The annotation sits on the line before the code it describes.
                target = (sample.name, number + 1, match.group(2))
                (flagged if match.group(1) == "ruleid" else clean).add(target)
    return flagged, clean


def test_every_rule_flags_its_samples_and_nothing_else() -> None:
    if not SEMGREP.exists() and shutil.which("semgrep") is None:
        pytest.skip("semgrep is not installed (pip install -e '.[dev]')")
    binary = str(SEMGREP) if SEMGREP.exists() else "semgrep"
    result = subprocess.run(  # noqa: S603 - our own venv's semgrep on our own files
        [
            binary,
            "scan",
            "--config",
            str(ROOT / ".semgrep" / "django.yml"),
            "--metrics=off",
            "--disable-version-check",
            "--json",
            "--quiet",
            *map(str, SAMPLES),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    report = json.loads(result.stdout)
    assert report["errors"] == []
    found = {
        (Path(r["path"]).name, r["start"]["line"], r["check_id"].rsplit(".", 1)[-1])
        for r in report["results"]
    }
    flagged, clean = expected()
    assert flagged, "the samples carry no ruleid annotations"
    assert flagged <= found
    assert not (found & clean)
    # Every rule has at least one sample it must flag.
    rules = set(
        re.findall(r"^  - id: ([\w-]+)", (ROOT / ".semgrep" / "django.yml").read_text(), re.M)
    )
    assert rules == {rule for _, _, rule in flagged}
