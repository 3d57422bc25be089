"""Run-scoped workspaces: one folder per pipeline run, one sub-folder per step."""

from __future__ import annotations

import time
from pathlib import Path

from kit.project import workspaces_dir


def create(root: Path, pipeline: str, run_id: str) -> Path:
    """A fresh folder no other run shares: workspaces/PIPELINE/TIME-RUNID."""
    stamp = time.strftime("%Y%m%d-%H%M%S")
    folder = workspaces_dir(root) / pipeline / f"{stamp}-{run_id[:8]}"
    folder.mkdir(parents=True, exist_ok=False)
    return folder


def step_folder(workspace: Path, step: str) -> Path:
    folder = workspace / step
    folder.mkdir(parents=True, exist_ok=True)
    return folder
