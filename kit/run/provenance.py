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


def git_dirty(root: Path) -> bool | None:
    status = _git(root, "status", "--porcelain", "--untracked-files=no")
    return None if status is None else bool(status)


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
