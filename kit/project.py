"""Where a project's files live: its root, the MLflow store under mlruns/, run workspaces."""

from __future__ import annotations

import os
from pathlib import Path

KERNEL_NAME = "kit"  # the Jupyter kernel `make setup` registers; a pipeline's default `kernel`


def find_root(start: Path | None = None) -> Path:
    """The project root: $KIT_PROJECT_ROOT, else the nearest folder holding pyproject.toml."""
    if os.environ.get("KIT_PROJECT_ROOT"):
        return Path(os.environ["KIT_PROJECT_ROOT"]).resolve()
    here = (start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        if (folder / "pyproject.toml").is_file():
            return folder
    return Path.cwd().resolve()


def mlruns_dir(root: Path) -> Path:
    return root / "mlruns"


def workspaces_dir(root: Path) -> Path:
    return root / "workspaces"


def lock_file(root: Path) -> Path:
    return root / "uv.lock"
