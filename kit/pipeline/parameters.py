"""A notebook's `parameters` cell: what it declares, and whether given values fit it.

papermill only warns about unknown parameters and injects any type; we refuse both
before a kernel starts, because a typo'd name silently falls back to the default.
"""

from __future__ import annotations

import ast
import difflib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

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
    with open(notebook, encoding="utf-8") as handle:
        cells = json.load(handle).get("cells", [])
    return any("parameters" in cell.get("metadata", {}).get("tags", []) for cell in cells)


def declared_parameters(notebook: Path) -> dict[str, Declared]:
    """The names and defaults of the notebook's parameters cell, in order."""
    import papermill

    found = papermill.inspect_notebook(str(notebook))
    declared = {}
    for name, info in found.items():
        source = info["default"]
        try:
            default = ast.literal_eval(source)
        except (ValueError, SyntaxError):
            default = _UNKNOWN
        declared[name] = Declared(name, source, default)
    return declared


def parse_cli_value(text: str) -> Any:
    """`-p step.epochs=30` gives int 30, `=0.1` a float, `=true` a bool, anything else a string."""
    try:
        return yaml.safe_load(text) if text.strip() else text
    except yaml.YAMLError:
        return text


def coerce(value: Any, declared: Declared) -> Any:
    """`value` converted to the default's type, or TypeError saying what was expected."""
    default = declared.default
    if default is _UNKNOWN or default is None or value is None:
        return value
    expected = type(default)
    if expected is bool or isinstance(value, bool):
        if type(value) is expected:
            return value
    elif expected is float and isinstance(value, int):
        return float(value)  # an int where a float is expected is fine
    elif isinstance(value, expected):
        return value
    raise TypeError(
        f"expected {expected.__name__} like the default {declared.default_source}, "
        f"got {type(value).__name__} {value!r}"
    )


def suggest(name: str, known: list[str]) -> str:
    close = difflib.get_close_matches(name, known, n=1)
    hint = f"; did you mean {close[0]!r}?" if close else ""
    return f"known parameters: {', '.join(known) or '(none)'}{hint}"
