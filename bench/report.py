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
    # Benchmarks are matched across runs by id and name: a run may lack one that failed.
    by_key = [{(r["id"], r["name"]): r for r in run["results"]} for run in runs]
    for result in runs[0]["results"]:
        key = (result["id"], result["name"])
        found = [keyed.get(key) for keyed in by_key]
        lines.append(
            f"| {result['id']} | {result['name']} | floor: {result['floor']} |"
            + "".join(f" ratio {other['ratio']} |" if other else " not run |" for other in found)
        )
        for t, item in enumerate(result["targets"]):
            cells = []
            for other in found:
                if other is None or t >= len(other["targets"]):
                    cells.append(" — |")
                    continue
                verdict = "met" if other["targets"][t]["met"] else "**missed**"
                cells.append(f" {other['targets'][t]['value']} ({verdict}) |")
            lines.append(f"| | | {item['target']} |" + "".join(cells))
    return lines


def main(paths: list[str]) -> int:
    runs = [json.loads(Path(p).read_text()) for p in paths]
    print("\n".join(rows(runs)))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
