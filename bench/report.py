"""Print one or more results files as a Markdown table (for docs/ARCHITECTURE.md):

    python bench/report.py bench/results/<sha>.json [bench/results/<other>.json ...]

One row per target: benchmark, floor ratio and each file's figure with MET/MISSED."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any


def rows(runs: list[dict[str, Any]]) -> list[str]:
    header = "| # | benchmark | target |" + "".join(
        f" {run['results'][0]['database'] if run['results'] else '?'} |" for run in runs
    )
    lines = [header, "|---|---|---|" + "---|" * len(runs)]
    first = runs[0]["results"]
    for index, result in enumerate(first):
        lines.append(
            f"| {result['id']} | {result['name']} | floor: {result['floor']} |"
            + "".join(
                f" ratio {run['results'][index]['ratio']} |"
                if index < len(run["results"])
                else " — |"
                for run in runs
            )
        )
        for t, item in enumerate(result["targets"]):
            cells = []
            for run in runs:
                try:
                    other = run["results"][index]["targets"][t]
                except (IndexError, KeyError):
                    cells.append(" — |")
                    continue
                verdict = "met" if other["met"] else "**missed**"
                cells.append(f" {other['value']} ({verdict}) |")
            lines.append(f"| | | {item['target']} |" + "".join(cells))
    return lines


def main(paths: list[str]) -> int:
    runs = [json.loads(Path(p).read_text()) for p in paths]
    print("\n".join(rows(runs)))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
