"""A notebook's `parameters` cell: what it declares, and whether given values fit it.

papermill only warns about unknown parameters and injects any type; we refuse both
before a kernel starts, because a typo'd name silently falls back to the default.
"""

from __future__ import annotations

import ast
import difflib
import reprlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kit.pipeline import notebooks

_SHORT = reprlib.Repr()  # error messages quote what was typed, cut to one line
_SHORT.maxlevel, _SHORT.maxstring, _SHORT.maxother, _SHORT.maxlong = 3, 60, 60, 40
_SHORT.maxlist = _SHORT.maxdict = _SHORT.maxtuple = _SHORT.maxset = 6
_UNKNOWN = object()  # a default that is an expression, not a literal: any value is accepted


@dataclass(frozen=True)
class Declared:
    name: str
    default_source: str
    default: Any  # the literal value, or _UNKNOWN

    @property
    def type_name(self) -> str:
        return "any" if self.default is _UNKNOWN or self.default is None else type(self.default).__name__


def has_parameters_cell(notebook: Path) -> bool:
    return any("parameters" in cell["metadata"].get("tags", []) for cell in notebooks.cells(notebook))


def declared_parameters(notebook: Path) -> dict[str, Declared]:
    """The names and defaults of the notebook's parameters cell, in order (`.ipynb` or Jupytext `.py`)."""
    found = _assignments(notebook)
    if found is None:  # not plain Python (magics, syntax papermill's own parser tolerates)
        found = {name: info["default"] for name, info in _inspect(notebook).items()}
    declared = {}
    for name, source in found.items():
        try:
            default = ast.literal_eval(source)
        except (ValueError, SyntaxError):
            default = _UNKNOWN
        declared[name] = Declared(name, source, default)
    return declared


def _assignments(notebook: Path) -> dict[str, str] | None:
    """`name = value` (or `name: type = value`) at the top of the parameters cell: name -> value's
    source. Read with ast from the cells as plain dicts: importing papermill (and nbformat) costs a
    second or more, and the cache's up-to-date check runs before either is needed."""
    cell = next((c for c in notebooks.cells(notebook) if "parameters" in c["metadata"].get("tags", [])), None)
    if cell is None:
        return {}
    source = cell["source"]
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return None
    found = {}
    for node in tree.body:
        if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
            found[node.targets[0].id] = ast.get_source_segment(source, node.value)
        elif isinstance(node, ast.AnnAssign) and node.value is not None and isinstance(node.target, ast.Name):
            found[node.target.id] = ast.get_source_segment(source, node.value)
    return found


def _inspect(notebook: Path) -> dict[str, dict]:
    """papermill's own reading of the parameters cell; for a Jupytext `.py`, its translator on the
    notebook read in memory (papermill's `inspect_notebook` reads only a path it can parse as JSON)."""
    import papermill
    from papermill.translators import papermill_translators

    if not notebooks.is_text(notebook):
        return papermill.inspect_notebook(str(notebook))
    nb = notebooks.read(notebook)
    cell = next(c for c in nb.cells if "parameters" in c.metadata.get("tags", []))
    kernelspec = nb.metadata.get("kernelspec", {})
    language = kernelspec.get("language") or nb.metadata.get("language_info", {}).get("name") or "python"
    translator = papermill_translators.find_translator(kernelspec.get("name", "python3"), language)
    return {p.name: p._asdict() for p in translator.inspect(cell)}


def parse_cli_value(text: str) -> Any:
    """`-p step.epochs=30` gives int 30, `=0.1` a float, `=true` a bool, `=yes` the string 'yes',
    `=017` the int 17, `=[16, 8]` a list (YAML 1.2 core schema); anything else a string."""
    from kit.pipeline.yaml_lines import parse_value

    return parse_value(text)


def coerce(value: Any, declared: Declared) -> Any:
    """`value` converted to the default's type, or TypeError saying what was expected."""
    default = declared.default
    if default is _UNKNOWN or default is None:
        return value
    try:
        return _fit(value, default, ())
    except _Mismatch as exc:
        _, got, at = exc.args
        got_text = "null (allowed only where the default is None)" if got is None else f"{type(got).__name__} {short(got)}"
        expected = f"expected {_type_text(default)} like the default {cut(declared.default_source)}"
        if at:
            element = "".join(f"[{short(part)}]" for part in at)
            raise TypeError(f"{expected}, but element {element} is {got_text}") from None
        raise TypeError(f"{expected}, got {got_text}") from None


class _Mismatch(Exception):
    """(expected type text, the value found, where in the value)"""


def _fit(value: Any, default: Any, at: tuple) -> Any:
    """`value` checked against the type of `default`, and its elements against the default's
    element type where the default's elements all have one type (`[16, 8]` refuses `[32, "a"]`)."""
    expected = type(default)
    if value is None:
        raise _Mismatch(_type_text(default), value, at)  # null only where the default is None
    if expected is bool or isinstance(value, bool):
        if type(value) is expected:
            return value
    elif expected is float and isinstance(value, int):
        return float(value)  # an int where a float is expected is fine
    elif isinstance(value, expected):
        if isinstance(value, list) and (element := _element(default)) is not _NONE:
            return [_fit(item, element, (*at, i)) for i, item in enumerate(value)]
        if isinstance(value, dict) and (element := _element(list(default.values()))) is not _NONE:
            return {k: _fit(v, element, (*at, k)) for k, v in value.items()}
        return value
    raise _Mismatch(_type_text(default), value, at)


_NONE = object()


def _element(items: list) -> Any:
    """One element standing for all of `items` when they share one type (and none is None), else _NONE."""
    kinds = {type(item) for item in items}
    if len(kinds) != 1 or type(None) in kinds:
        return _NONE
    return items[0]


def _type_text(default: Any) -> str:
    if isinstance(default, list) and (element := _element(default)) is not _NONE:
        return f"list of {_type_text(element)}"
    if isinstance(default, dict) and (element := _element(list(default.values()))) is not _NONE:
        return f"dict of {_type_text(element)}"
    return type(default).__name__


def cut(text: str) -> str:
    return text if len(text) <= 60 else text[:57] + "..."


def short(value: Any) -> str:
    """A repr short enough for one line of an error message, whatever was typed."""
    return _SHORT.repr(value)


def suggest(name: str, known: list[str]) -> str:
    close = difflib.get_close_matches(str(name), known, n=1)
    hint = f"; did you mean {close[0]!r}?" if close else ""
    return f"known parameters: {', '.join(known) or '(none)'}{hint}"
