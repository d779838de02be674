"""Run every benchmark part, print one table and write bench/results.json.

A part is a module with `run() -> dict`. Its optional "rows" (a list of flat dicts) become
rows of the table, its optional "checks" ({description: passed}) are listed under it and
make the exit status 1 if one fails; the whole dict goes into results.json.
"""

from __future__ import annotations

import importlib
import json
import platform
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

PARTS: list[tuple[str, str]] = [
    ("pagination", "bench.pagination"),
    ("delivery", "bench.delivery"),
    ("cpu", "bench.cpu"),
    ("scale", "bench.scale"),
    ("api", "bench.api"),
    ("package", "bench.package"),
    ("portal", "bench.portal"),
]
RESULTS = Path(__file__).resolve().parent / "results.json"


def _cell(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def table(rows: list[dict[str, Any]]) -> str:
    """Rows with the union of their columns (first-seen order), right-aligned."""
    columns: list[str] = []
    for row in rows:
        columns += [name for name in row if name not in columns]
    cells = [[_cell(row.get(name, "")) for name in columns] for row in rows]
    widths = [max([len(name)] + [len(line[i]) for line in cells]) for i, name in enumerate(columns)]
    lines = ["  ".join(name.rjust(w) for name, w in zip(columns, widths, strict=True))]
    lines.append("  ".join("-" * w for w in widths))
    lines += ["  ".join(cell.rjust(w) for cell, w in zip(line, widths, strict=True)) for line in cells]
    return "\n".join(lines)


def main(argv: list[str]) -> int:
    wanted = set(argv) or {name for name, _ in PARTS}
    unknown = wanted - {name for name, _ in PARTS}
    if unknown:
        print(f"unknown part(s): {', '.join(sorted(unknown))}", file=sys.stderr)
        return 2
    results: dict[str, Any] = {}
    for name, module in PARTS:
        if name in wanted:
            print(f"running {name} ...", file=sys.stderr, flush=True)
            results[name] = importlib.import_module(module).run()

    rows = [{"part": name, **row} for name, result in results.items() for row in result.get("rows", [])]
    print(table(rows))
    failed = False
    for name, result in results.items():
        figures = {k: v for k, v in result.items() if not isinstance(v, dict | list)}
        if figures:
            print(f"{name}: " + ", ".join(f"{k}={_cell(v)}" for k, v in figures.items()))
        for check, passed in result.get("checks", {}).items():
            failed |= not passed
            print(f"  [{'ok' if passed else 'FAIL'}] {name}: {check}")

    RESULTS.write_text(
        json.dumps(
            {
                "generated_at": datetime.now(UTC).isoformat(timespec="seconds"),
                "python": platform.python_version(),
                "results": results,
            },
            indent=2,
        )
        + "\n"
    )
    print(f"wrote {RESULTS}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
