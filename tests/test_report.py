"""kit.report: the one rich text table and the one HTML report page (Jinja2 template)."""

from __future__ import annotations

import base64
import html.parser

import pytest

from kit.report import Image, Section, Table, page_html, table_text, write_page

PNG = base64.b64decode("iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg==")
SVG = '<?xml version="1.0"?>\n<!DOCTYPE svg>\n<svg xmlns="http://www.w3.org/2000/svg" width="4" height="4"><rect width="4" height="4"/></svg>'


def test_text_table_shows_title_columns_cells_and_footnote_as_written():
    table = Table(("gate", "figure"), [("latency [bold]p99[/bold]", "1.5"), ("size", "")], title="gates [x]",
                  caption="p99: nearest-rank percentile (no interpolation)")
    text = table_text(table)
    assert text.splitlines()[0] == "gates [x]"
    assert "latency [bold]p99[/bold]" in text, "cells are text, not rich markup"
    assert "gate" in text and "1.5" in text and "size" in text
    assert text.rstrip().splitlines()[-1] == "p99: nearest-rank percentile (no interpolation)"
    assert all(line == line.rstrip() for line in text.splitlines())


def test_a_row_of_the_wrong_width_is_refused():
    with pytest.raises(ValueError, match="row 2 has 1 cells for 2 columns"):
        Table(("a", "b"), [("1", "2"), ("3",)])
    with pytest.raises(ValueError, match="1 row classes for 2 rows"):
        Table(("a",), [("1",), ("2",)], row_classes=["pass"])


def test_page_escapes_text_colours_rows_and_embeds_images(tmp_path):
    rows = Table(("check", "result"), [("<script>alert(1)</script>", "FAIL"), ("ok", "pass")],
                 title="checks", caption="a footnote", row_classes=["fail", "pass"])
    sections = [Section(heading="Checks & results", text="two checks", table=rows),
                Section(heading="plot", image=Image.png(PNG, alt="latency histogram")),
                Section(image=Image.svg(SVG, alt="an inline figure"))]
    page = write_page(tmp_path / "r.html", "Report <1>", sections, heading="Checks: FAILED", summary="1 of 2 failed")
    text = page.read_text(encoding="utf-8")
    assert "<title>Report &lt;1&gt;</title>" in text and "<h1>Checks: FAILED</h1>" in text
    assert "<script>" not in text and "&lt;script&gt;alert(1)&lt;/script&gt;" in text
    assert '<tr class="fail"><td>' in text and '<tr class="pass"><td>ok</td>' in text
    assert "<h2>Checks &amp; results</h2>" in text and '<p class="note">a footnote</p>' in text
    assert f'src="data:image/png;base64,{base64.b64encode(PNG).decode()}"' in text
    assert '<svg xmlns="http://www.w3.org/2000/svg"' in text and "<?xml" not in text and "DOCTYPE svg" not in text
    parser = html.parser.HTMLParser()
    parser.feed(text)  # well-formed enough for the standard parser
    assert page_html("Report <1>", sections, heading="Checks: FAILED", summary="1 of 2 failed") == text


def test_images_must_be_what_they_claim():
    with pytest.raises(ValueError, match="not a PNG"):
        Image.png(b"GIF89a")
    with pytest.raises(ValueError, match="no <svg>"):
        Image.svg("<html></html>")
