"""The sweep's table of variants (sorted by the metric, the best marked): printed with rich colours
on a terminal and as plain text elsewhere, logged on the sweep run as CSV and an HTML page with a
plot of the metric against each swept parameter that takes more than one value."""

from __future__ import annotations

import csv
import io
import sys
import tempfile
from pathlib import Path

from kit.report import Image, Section, Table, table_text, write_page

ARTIFACTS = "sweep"


def ordered(result) -> list:
    """Variants with a metric, best first; then the others in the order they started."""
    scored = [v for v in result.variants if v.metric is not None]
    scored.sort(key=lambda v: v.metric, reverse=result.settings.direction == "max")
    return scored + [v for v in result.variants if v.metric is None]


def table(result) -> Table:
    s = result.settings
    names = [axis.name for axis in s.axes]
    rows, classes = [], []
    for variant in ordered(result):
        is_best = variant is result.best
        rows.append(["best" if is_best else "", variant.label, *(_cell(variant.values.get(n)) for n in names),
                     "" if variant.metric is None else f"{variant.metric:.6g}", variant.state,
                     f"{variant.seconds:.1f}s" if variant.seconds else "", variant.run_id or "",
                     _short(variant.error)])
        classes.append("pass" if is_best else "fail" if variant.state in ("failed", "killed") else "")
    return Table(["", "variant", *names, s.metric_name, "status", "time", "MLflow run", "error"], rows,
                 title=f"sweep of {s.metric_name} ({s.direction}): {result.note}", row_classes=classes)


def show(result, stream=None) -> None:
    stream = stream or sys.stdout
    drawn = table(result)
    if not any(row[-1] for row in drawn.rows):  # no variant failed: no error column
        drawn = Table(drawn.columns[:-1], [row[:-1] for row in drawn.rows], drawn.title,
                      row_classes=drawn.row_classes)
    if not stream.isatty():
        stream.write(table_text(drawn))
    else:
        from rich.console import Console
        from rich.table import Table as RichTable

        rich_table = RichTable(title=drawn.title)
        for column in drawn.columns:
            rich_table.add_column(column, overflow="fold")
        run = list(drawn.columns).index("MLflow run")
        for row, kind in zip(drawn.rows, drawn.row_classes):
            row = [cell[:8] if i == run else cell for i, cell in enumerate(row)]  # the best's whole id is printed below
            rich_table.add_row(*row, style={"pass": "bold green", "fail": "red"}.get(kind))
        Console(file=stream).print(rich_table)
    for variant in result.variants:
        if variant.state in ("failed", "killed", "not run") and variant.error:
            print(f"{variant.label} {variant.state}: {variant.error}", file=stream)
    stream.flush()


def csv_text(result) -> str:
    """The table for analysis: full-precision metric, seconds as a number, the error's whole first line."""
    names = [axis.name for axis in result.settings.axes]
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["best", "variant", *names, result.settings.metric_name, "status", "seconds", "run_id", "error"])
    for variant in ordered(result):
        writer.writerow(["yes" if variant is result.best else "", variant.number,
                         *(_cell(variant.values.get(n)) for n in names),
                         "" if variant.metric is None else repr(variant.metric), variant.state,
                         round(variant.seconds, 3), variant.run_id or "",
                         variant.error.splitlines()[0] if variant.error else ""])
    return out.getvalue()


def plots(result) -> list[tuple[str, bytes]]:
    """(swept parameter, PNG) of the metric against it, for each parameter with 2+ values among the
    variants that have a metric; numbers on a numeric axis (log when they span 100x and more)."""
    scored = [v for v in result.variants if v.metric is not None]
    found = []
    for axis in result.settings.axes:
        xs = [v.values.get(axis.name) for v in scored]
        if len({repr(x) for x in xs}) < 2:
            continue
        found.append((axis.name, _plot(axis.name, xs, [v.metric for v in scored], result.settings.metric_name,
                                       [v is result.best for v in scored])))
    return found


def _plot(name: str, xs: list, ys: list[float], metric: str, best: list[bool]) -> bytes:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(5, 3.2), dpi=100)
    FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    numeric = all(isinstance(x, (int, float)) and not isinstance(x, bool) for x in xs)
    if numeric:
        positions = xs
        if min(xs) > 0 and max(xs) / min(xs) >= 100:
            axes.set_xscale("log")
    else:
        labels = list(dict.fromkeys(_cell(x) for x in xs))
        positions = [labels.index(_cell(x)) for x in xs]
        axes.set_xticks(range(len(labels)), labels)
    axes.scatter(positions, ys, color=["tab:green" if b else "tab:blue" for b in best], zorder=3)
    axes.set_xlabel(name)
    axes.set_ylabel(metric)
    axes.grid(alpha=0.3)
    figure.tight_layout()
    out = io.BytesIO()
    figure.savefig(out, format="png")
    return out.getvalue()


def log(client, run_id: str, result) -> list[str]:
    """variants.csv, variants.html (the table and the plots) and one PNG per plot on the sweep run."""
    with tempfile.TemporaryDirectory(prefix="kit-sweep-") as folder:
        folder = Path(folder)
        (folder / "variants.csv").write_text(csv_text(result), encoding="utf-8")
        sections = [Section(table=table(result))]
        for name, png in plots(result):
            (folder / f"{name}.png").write_bytes(png)
            sections.append(Section(heading=f"{result.settings.metric_name} against {name}",
                                    image=Image.png(png, alt=f"{result.settings.metric_name} against {name}")))
        best = result.best
        write_page(folder / "variants.html", "Sweep", sections,
                   heading=f"Sweep: best {best.label} ({result.settings.metric_name} {best.metric:.6g})" if best
                   else "Sweep: every variant failed")
        client.log_artifacts(run_id, str(folder), ARTIFACTS)
        return sorted(f"{ARTIFACTS}/{path.name}" for path in folder.iterdir())


def _cell(value) -> str:
    return "" if value is None else str(value)


def _short(text: str | None) -> str:
    """The error's first line, cut: the whole error is printed under the table."""
    line = text.splitlines()[0] if text else ""
    return line if len(line) <= 90 else line[:87] + "..."
