"""Reports for people, made one way: a rich table rendered as plain text (terminals, CI logs)
and a standalone HTML page rendered with Jinja2 from kit/templates/report.html.j2.

    gates = Table(["gate", "result"], [["auc", "pass"]], title="gates", row_classes=["pass"])
    print(table_text(gates))
    write_page(path, "Gates", [Section(table=gates)], heading="Gates: passed")

A page is a list of sections; each may hold a heading, a paragraph, a table and an image
(PNG bytes, embedded as base64, or an SVG document, inlined). Cells are text, never markup.
This module sits at the bottom of the layers beside kit.errors: it imports no other kit module.
"""

from __future__ import annotations

import base64
import functools
import io
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

__all__ = ["Image", "Section", "Table", "page_html", "table_text", "write_page"]

TEMPLATES = Path(__file__).resolve().parent / "templates"
WIDTH = 160  # wide enough for CI logs; nothing wraps below it


@dataclass
class Table:
    """Rows of text cells. `row_classes` (one per row, e.g. "pass"/"fail") colour the HTML rows;
    `caption` is a footnote under the table (e.g. which percentile the figures are)."""

    columns: Sequence[str]
    rows: Sequence[Sequence[str]] = ()
    title: str | None = None
    caption: str | None = None
    row_classes: Sequence[str] | None = None

    def __post_init__(self):
        for number, row in enumerate(self.rows, 1):
            if len(row) != len(self.columns):
                raise ValueError(f"table {self.title or ''}: row {number} has {len(row)} cells for "
                                 f"{len(self.columns)} columns")
        if self.row_classes is not None and len(self.row_classes) != len(self.rows):
            raise ValueError(f"table {self.title or ''}: {len(self.row_classes)} row classes for {len(self.rows)} rows")


@dataclass(frozen=True)
class Image:
    """A figure for a page: `Image.png(bytes)` or `Image.svg(text)`, with its alt text. An SVG is
    inlined as given: pass only SVG the kit drew (e.g. matplotlib's savefig), never user input."""

    kind: Literal["png", "svg"]
    data: bytes | str
    alt: str = ""

    @classmethod
    def png(cls, data: bytes, alt: str = "") -> Image:
        if not data.startswith(b"\x89PNG"):
            raise ValueError("Image.png: the data is not a PNG file")
        return cls("png", data, alt)

    @classmethod
    def svg(cls, text: str, alt: str = "") -> Image:
        start = text.find("<svg")
        if start < 0:
            raise ValueError("Image.svg: the text holds no <svg> element")
        return cls("svg", text[start:], alt)  # drop the XML prolog: it is not HTML

    @property
    def src(self) -> str:
        """The PNG as a data: URL for <img src>."""
        return "data:image/png;base64," + base64.b64encode(self.data).decode("ascii")


@dataclass
class Section:
    heading: str | None = None
    text: str | None = None
    table: Table | None = None
    image: Image | None = None


def table_text(table: Table, width: int = WIDTH) -> str:
    """The table drawn by rich as plain text (no colour, no markup), its title above and its
    caption below, lines right-stripped."""
    from rich.console import Console
    from rich.table import Table as RichTable
    from rich.text import Text

    drawn = RichTable()
    for column in table.columns:
        drawn.add_column(Text(column), overflow="fold")
    for row in table.rows:
        drawn.add_row(*(Text(cell) for cell in row))
    console = Console(width=width, record=True, file=io.StringIO())
    # title and footnote on lines of their own: rich would wrap them to the table's width
    for part in (Text(table.title) if table.title else None, drawn, Text(table.caption) if table.caption else None):
        if part is not None:
            console.print(part)
    return "\n".join(line.rstrip() for line in console.export_text().splitlines()) + "\n"


def page_html(title: str, sections: Sequence[Section], heading: str | None = None, summary: str | None = None) -> str:
    """A standalone page (styles inline, images embedded): open it from disk or an MLflow artifact."""
    return _environment().get_template("report.html.j2").render(
        title=title, heading=heading or title, summary=summary, sections=list(sections))


def write_page(path: str | Path, title: str, sections: Sequence[Section], heading: str | None = None,
               summary: str | None = None) -> Path:
    path = Path(path)
    path.write_text(page_html(title, sections, heading, summary), encoding="utf-8")
    return path


@functools.cache
def _environment():
    import jinja2

    return jinja2.Environment(loader=jinja2.FileSystemLoader(TEMPLATES), autoescape=True,
                              undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True)

