"""Where a run came from: git commit and dirty flag, hash of the lock file."""

from __future__ import annotations

import subprocess
from pathlib import Path

from kit.files import sha256_file
from kit.project import lock_file


def _git(root: Path, *args: str) -> str | None:
    try:
        done = subprocess.run(["git", *args], cwd=root, capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return done.stdout.strip() if done.returncode == 0 else None


def git_commit(root: Path) -> str | None:
    return _git(root, "rev-parse", "HEAD")


# The kit's own output folders are not source: a run writes them before it looks.
NOT_SOURCE = ("mlruns", "workspaces")


def changed_files(root: Path) -> list[str] | None:
    """Modified, staged and untracked (not git-ignored) files anywhere in the project
    folder, as `git status --porcelain` lines; None outside a git work tree."""
    excluded = [f":(exclude){name}" for name in NOT_SOURCE]
    status = _git(root, "status", "--porcelain", "--untracked-files=all", "--", ".", *excluded)
    return None if status is None else [line for line in status.splitlines() if line.strip()]


def git_dirty(root: Path) -> bool | None:
    changed = changed_files(root)
    return None if changed is None else bool(changed)


def lock_hash(root: Path) -> str | None:
    path = lock_file(root)
    return sha256_file(path) if path.is_file() else None


def tags(root: Path) -> dict[str, str]:
    commit, dirty, lock = git_commit(root), git_dirty(root), lock_hash(root)
    found = {}
    if commit:
        found["mlflow.source.git.commit"] = commit
        found["kit.git.commit"] = commit
    if dirty is not None:
        found["kit.git.dirty"] = str(dirty).lower()
    if lock:
        found["kit.lock_sha256"] = lock
    return found
