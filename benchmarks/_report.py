"""What every benchmark does at the end: print a table (kit.report's), write its figures as JSON."""

from __future__ import annotations

import json
from pathlib import Path

from kit.report import Table, table_text
from kit.stats import DEFINITION

HERE = Path(__file__).resolve().parent
PERCENTILES = f"p50, p99: {DEFINITION}"  # the footnote of every table that shows a percentile


def table(rows: list[tuple[str, ...]], note: str | None = None) -> None:
    """Print rows of cells (the first is the header) with an optional footnote."""
    print(table_text(Table(rows[0], rows[1:], caption=note)), end="")


def save(name: str, results: dict) -> Path:
    target = HERE / "results" / f"{name}.json"
    target.parent.mkdir(exist_ok=True)
    target.write_text(json.dumps(results, indent=2))
    print(f"written to {target.relative_to(HERE.parent)}")
    return target
