"""Contract results for people: a terminal table and a standalone HTML page.

The HTML is written here rather than with GX Data Docs, which need a file-backed GX
project (a great_expectations/ folder with its own config) that the kit does not keep.
"""

from __future__ import annotations

import html
import io
import json
from pathlib import Path

from kit.contracts.validate import ContractResult

COLUMNS = ("#", "expectation", "column", "expected", "observed", "unexpected %", "examples")


def rows(result: ContractResult, only_failed: bool = True) -> list[tuple[str, ...]]:
    shown = result.failed if only_failed else result.outcomes
    return [(str(o.index), o.expectation, o.column or "", o.expected, o.observed,
             "" if o.unexpected_percent is None else f"{o.unexpected_percent:.2f}",
             ", ".join(map(repr, o.examples))) for o in shown]


def text_table(result: ContractResult) -> str:
    """A plain table of the failed expectations (wraps nothing; fine in CI logs)."""
    from rich.console import Console
    from rich.table import Table

    verdict = "PASSED" if result.success else f"FAILED ({len(result.failed)} of {len(result.outcomes)} expectations)"
    table = Table(title=f"contract {result.contract} on {result.data} ({result.rows} rows): {verdict}",
                  title_justify="left", show_lines=False)
    for column in COLUMNS:
        table.add_column(column, overflow="fold")
    for row in rows(result):
        table.add_row(*row)
    console = Console(width=160, record=True, file=io.StringIO())
    console.print(table if result.failed else table.title)
    return "\n".join(line.rstrip() for line in console.export_text().splitlines()) + "\n"


def write_html(result: ContractResult, path: Path) -> Path:
    style = ("body{font-family:system-ui,sans-serif;margin:2em}table{border-collapse:collapse}"
             "td,th{border:1px solid #ccc;padding:4px 8px;text-align:left;vertical-align:top}"
             ".fail{background:#fde8e8}.pass{background:#e8f7ea}")
    head = "".join(f"<th>{html.escape(c)}</th>" for c in (*COLUMNS, "result"))
    body = []
    for outcome, row in zip(result.outcomes, rows(result, only_failed=False)):
        cells = "".join(f"<td>{html.escape(c)}</td>" for c in row)
        verdict = "pass" if outcome.success else "fail"
        body.append(f'<tr class="{verdict}">{cells}<td>{verdict}</td></tr>')
    verdict = "passed" if result.success else "FAILED"
    path.write_text(
        f"<!doctype html><meta charset=utf-8><title>Contract {html.escape(result.contract)}</title>"
        f"<style>{style}</style><h1>Contract {verdict}</h1>"
        f"<p>{html.escape(result.contract)} on {html.escape(result.data)}: {result.rows} rows, "
        f"{len(result.failed)} of {len(result.outcomes)} expectations failed, {result.seconds:.2f} s</p>"
        f"<table><tr>{head}</tr>{''.join(body)}</table>",
        encoding="utf-8",
    )
    return path


def write_json(result: ContractResult, path: Path) -> Path:
    path.write_text(json.dumps(result.to_dict(), indent=2, default=str), encoding="utf-8")
    return path
