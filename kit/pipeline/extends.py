"""`extends:`: a pipeline file built on another one, merged into one pipeline before it is checked.

How files merge (the child is the file that says `extends`):
- `steps`: the parent's steps, in order; a child step with the name of a parent step replaces
  it whole, in its place; other child steps are added after them.
- `name` is never inherited: it is the MLflow experiment, so every file names its own pipeline.
- every other top-level key (`model`, `description`, `kernel`, `timeout`, `gates`, `promote`, `sweep`)
  is the child's if the child sets it, else the parent's; `gates`, `promote` and `sweep` are replaced
  whole, never merged entry by entry.

Every merged value remembers the file it came from, so an error names that file and line.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kit.errors import SpecError
from kit.pipeline.paths import outside_root
from kit.pipeline.yaml_lines import Document, load_document

NOT_INHERITED = ("name", "extends")


@dataclass(frozen=True)
class Source:
    """One pipeline file of the chain."""

    path: Path  # absolute, links not resolved
    text: str
    document: Document

    @property
    def data(self) -> dict[str, Any]:
        return self.document.data


def shown(path: Path, root: Path) -> str:
    """`path` as errors show it: relative to the project root when it is inside."""
    for candidate in (path, path.resolve()):
        try:
            return str(candidate.relative_to(root))
        except ValueError:
            continue
    return str(path)


def read_chain(path: Path, root: Path) -> list[Source]:
    """The file at `path` and every file it extends, the first ancestor first."""
    chain: list[Source] = []
    current, referrer = Path(os.path.abspath(path)), None
    while True:
        name = shown(current, root)
        try:
            text = current.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            reason = exc.strerror if isinstance(exc, OSError) else "not UTF-8 text"
            if referrer is None:
                raise SpecError(f"{name}: cannot read pipeline file: {reason}") from None
            raise SpecError(f"{referrer}: extends {name}, which cannot be read ({reason}); "
                            f"chain: {_chain(chain, name, root)}") from None
        document = load_document(text, name)
        if not isinstance(document.data, dict):
            raise SpecError(f"{name}: a pipeline file is a mapping with name, model and steps")
        chain.append(Source(current, text, document))
        parent = document.data.get("extends")
        if parent is None:
            return list(reversed(chain))
        where = document.where(("extends",))
        if not isinstance(parent, str) or not parent.strip():
            raise SpecError(f"{where}: extends: expected the path of the pipeline file this one builds on, "
                            "relative to this file (e.g. extends: iris.yaml)")
        why = outside_root(root, current.parent, parent)
        if why:
            raise SpecError(f"{where}: extends: {parent} {why}")
        parent_path = Path(os.path.normpath(current.parent / parent))
        if any(_same(parent_path, source.path) for source in chain):
            raise SpecError(f"{where}: extends: a cycle of files: {_chain(chain, shown(parent_path, root), root)}")
        if not parent_path.is_file():
            raise SpecError(f"{where}: extends: {parent} not found (it would be {shown(parent_path, root)}); "
                            f"chain: {_chain(chain, shown(parent_path, root), root)}")
        current, referrer = parent_path, where


def _same(a: Path, b: Path) -> bool:
    try:
        return a.resolve() == b.resolve()
    except (OSError, RuntimeError):
        return a == b


def _chain(chain: list[Source], last: str, root: Path) -> str:
    return " -> ".join([*(shown(s.path, root) for s in chain), last])


@dataclass
class Merged:
    """The merged pipeline data and, for any key path into it, the file and key path it came from."""

    data: dict[str, Any]
    sources: list[Source]
    origin: dict[str, Source]  # top-level key -> the file that set it
    steps: list[tuple[Source, int]]  # merged step index -> (its file, its index there)

    def locate(self, location: tuple[Any, ...]) -> tuple[Source, tuple[Any, ...]]:
        if not location:
            return self.sources[-1], ()
        key, rest = location[0], location[1:]
        if key == "steps" and rest and isinstance(rest[0], int) and 0 <= rest[0] < len(self.steps):
            source, index = self.steps[rest[0]]
            return source, ("steps", index, *rest[1:])
        return self.origin.get(key, self.sources[-1]), location

    def where(self, *location: Any) -> str:
        """`file:line` of the value at `location` in whichever file wrote it."""
        source, location = self.locate(tuple(location))
        return source.document.where(location)


def merge(sources: list[Source]) -> Merged:
    data: dict[str, Any] = {}
    origin: dict[str, Source] = {}
    steps: list[tuple[Source, int, Any]] = []
    for position, source in enumerate(sources):
        last = position == len(sources) - 1
        for key, value in source.data.items():
            if key in NOT_INHERITED and not last:
                continue
            if key == "steps" and isinstance(value, list) and isinstance(data.get("steps"), list):
                steps = _merge_steps(steps, source, value)
                data["steps"] = [step for _, _, step in steps]
            else:
                data[key] = value
                if key == "steps" and isinstance(value, list):
                    steps = [(source, index, step) for index, step in enumerate(value)]
            origin[key] = source
    return Merged(data, sources, origin, [(source, index) for source, index, _ in steps])


def _merge_steps(merged: list, source: Source, steps: list) -> list:
    """A step named like one from an earlier file replaces it in place; others are added."""
    merged = list(merged)
    for index, step in enumerate(steps):
        name = step.get("name") if isinstance(step, dict) else None
        at = next((i for i, (s, _, old) in enumerate(merged)
                   if s is not source and isinstance(name, str) and isinstance(old, dict) and old.get("name") == name),
                  None)
        if at is None:
            merged.append((source, index, step))
        else:
            merged[at] = (source, index, step)
    return merged
