"""A step's notebook file, in either form: a Jupyter `.ipynb`, or a Jupytext percent-format
`.py` script (cells start with `# %%`; the parameters cell is `# %% tags=["parameters"]`),
which diffs cleanly in code review. Everything that reads a step's notebook reads it here.

Jupytext is imported only for `.py` notebooks: `.ipynb` files keep their cheaper path.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

TEXT_SUFFIXES = (".py",)  # the Jupytext formats a step may use (percent format)
PAIRED_FORMATS = "jupytext.formats"  # where Jupytext records a pair, e.g. "ipynb,py:percent"


def is_text(path: Path) -> bool:
    """True for a Jupytext script, which is read through Jupytext rather than as JSON."""
    return Path(path).suffix in TEXT_SUFFIXES


def read(path: Path):
    """The notebook as an nbformat v4 NotebookNode, whatever its file format."""
    if is_text(path):
        import jupytext

        notebook = jupytext.read(path, fmt="py:percent")
        # A script without a Jupytext header names no kernel; papermill still needs its language.
        notebook.metadata.setdefault("language_info", {}).setdefault("name", "python")
        return notebook
    import nbformat

    return nbformat.read(path, as_version=4)


def cells(path: Path) -> list[dict[str, Any]]:
    """The notebook's cells as plain dicts (`cell_type`, `source` as one string, `metadata`).

    An `.ipynb` is read as JSON (no nbformat import, no schema check): the runner's and the
    validator's fast path."""
    if is_text(path):
        return [{"cell_type": c.cell_type, "source": c.source, "metadata": dict(c.metadata)} for c in read(path).cells]
    with open(path, encoding="utf-8") as handle:
        found = json.load(handle).get("cells", [])
    return [{**cell, "source": _text(cell.get("source", "")), "metadata": cell.get("metadata", {})} for cell in found]


def code_sources(path: Path) -> list[str]:
    """The source of every code cell, in order."""
    return [cell["source"] for cell in cells(path) if cell.get("cell_type") == "code"]


def papermill_input(path: Path):
    """What to hand papermill: the path of an `.ipynb`, or a `.py` read through Jupytext in memory."""
    return read(path) if is_text(path) else str(path)


def executed_name(path: Path) -> str:
    """The file name of a step's executed copy: always an `.ipynb` (`40_evaluate.py` -> `40_evaluate.ipynb`)."""
    return Path(path).with_suffix(".ipynb").name


def write(notebook, path: Path) -> list[Path]:
    """Write `notebook` to `path` in the format its suffix says, and to every file Jupytext pairs
    it with (its `jupytext.formats` metadata), so a pair never drifts apart. Returns the files written."""
    import jupytext
    from jupytext.paired_paths import paired_paths

    path = Path(path)
    formats = notebook.metadata.get("jupytext", {}).get("formats")
    own = "py:percent" if is_text(path) else "ipynb"
    targets = [(path, own)]
    if formats:
        try:
            targets = [(Path(p), fmt) for p, fmt in paired_paths(str(path), own, formats)]
        except Exception:  # noqa: BLE001 - a pairing this path is not part of: write the file alone
            targets = [(path, own)]
    for target, fmt in targets:
        jupytext.write(notebook, target, fmt=fmt)
    return [target for target, _ in targets]


def _text(source: str | list[str]) -> str:
    return "".join(source) if isinstance(source, list) else source
