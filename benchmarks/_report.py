"""What every benchmark does at the end: print a table, write its figures as JSON."""

from __future__ import annotations

import json
from pathlib import Path

HERE = Path(__file__).resolve().parent


def table(rows: list[tuple[str, ...]]) -> None:
    """Rows of cells, in aligned columns."""
    widths = [max(len(str(row[i])) for row in rows if i < len(row)) for i in range(max(map(len, rows)))]
    for row in rows:
        print("  ".join(f"{cell:<{widths[i]}}" for i, cell in enumerate(row)).rstrip())


def save(name: str, results: dict) -> Path:
    target = HERE / "results" / f"{name}.json"
    target.parent.mkdir(exist_ok=True)
    target.write_text(json.dumps(results, indent=2))
    print(f"written to {target.relative_to(HERE.parent)}")
    return target
