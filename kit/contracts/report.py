"""Contract results for people: a terminal table and a standalone HTML page.

Both are drawn by kit.report. The page is the kit's own rather than GX Data Docs, which need a
file-backed GX project (a great_expectations/ folder with its own config) that the kit does not keep.
"""

from __future__ import annotations

import json
from pathlib import Path

from kit.contracts.validate import ContractResult
from kit.report import Section, Table, table_text, write_page

COLUMNS = ("#", "expectation", "column", "expected", "observed", "unexpected %", "examples")


def rows(result: ContractResult, only_failed: bool = True) -> list[tuple[str, ...]]:
    shown = result.failed if only_failed else result.outcomes
    return [(str(o.index), o.expectation, o.column or "", o.expected, o.observed,
             "" if o.unexpected_percent is None else f"{o.unexpected_percent:.2f}",
             ", ".join(map(repr, o.examples))) for o in shown]


def text_table(result: ContractResult) -> str:
    """A plain table of the failed expectations (wraps nothing; fine in CI logs); only the
    verdict line when nothing failed."""
    title = f"contract {result.contract} on {result.data} ({result.rows} rows): {_verdict(result)}"
    if not result.failed:
        return title + "\n"
    return table_text(Table(COLUMNS, rows(result), title=title))


def write_html(result: ContractResult, path: Path) -> Path:
    """A standalone page with every expectation, failed ones highlighted."""
    outcomes = [("pass" if o.success else "fail") for o in result.outcomes]
    cells = [(*row, verdict) for row, verdict in zip(rows(result, only_failed=False), outcomes)]
    table = Table((*COLUMNS, "result"), cells, row_classes=outcomes)
    return write_page(path, f"Contract {result.contract}", [Section(table=table)],
                      heading=f"Contract {'passed' if result.success else 'FAILED'}",
                      summary=f"{result.contract} on {result.data}: {result.rows} rows, {len(result.failed)} of "
                              f"{len(result.outcomes)} expectations failed, {result.seconds:.2f} s")


def _verdict(result: ContractResult) -> str:
    return "PASSED" if result.success else f"FAILED ({len(result.failed)} of {len(result.outcomes)} expectations)"


def write_json(result: ContractResult, path: Path) -> Path:
    path.write_text(json.dumps(result.to_dict(), indent=2, default=str), encoding="utf-8")
    return path
