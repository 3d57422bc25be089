"""Paths a pipeline file names (notebooks, contracts, `extends`) stay inside the project root.

The rule: the path as written must be relative and must not climb out with `..`; followed
through its links, it must end inside the root, or inside the top-level folder of the root
it starts in. So a project may make `notebooks/` a link to a shared checkout (the test
suite's scratch projects do), but a link further down (`notebooks/x.ipynb -> /etc/...`),
or a top-level link to a file, must not lead out.
"""

from __future__ import annotations

import os
from pathlib import Path, PurePath


def outside_root(root: Path, base: Path, written: str) -> str | None:
    """Why `written` (relative to the folder `base`) is not inside `root`, or None if it is."""
    try:
        if "\0" in os.fsdecode(os.fsencode(written)):
            return "is not a valid path (it holds a NUL character)"
    except UnicodeError:
        return "is not a valid path (it holds characters no file name can)"
    if PurePath(written).is_absolute() or written.startswith("~"):
        return "must be relative, not absolute"
    root = Path(os.path.abspath(root))
    path = Path(os.path.normpath(os.path.join(os.path.abspath(base), written)))
    try:
        parts = path.relative_to(root).parts
    except ValueError:
        return f"leaves the project root {root} (through '..')"
    try:
        real = path.resolve()
        allowed = [root.resolve()]
        if len(parts) >= 2 and (root / parts[0]).is_dir():
            allowed.append((root / parts[0]).resolve())  # a top-level folder, or the folder it links to
    except (OSError, RuntimeError) as exc:  # a name too long, a loop of links
        return f"is not a usable path ({exc})"
    if not any(real == folder or real.is_relative_to(folder) for folder in allowed):
        return f"leads out of the project root {root} through a link (to {real})"
    return None
