"""File facts the kit records as evidence: content hashes and sizes (one implementation each),
and the one way it writes a small JSON record that readers may see at any moment."""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from pathlib import Path


def sha256_file(path: str | Path) -> str:
    """Hex SHA-256 of a file's bytes, read in chunks (any size)."""
    with open(path, "rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()


def sha256_tree(path: str | Path) -> str:
    """Hex SHA-256 of a file, or of a folder: every file's relative path and content hash, in
    sorted order (so the same files give the same hash wherever the folder lives)."""
    path = Path(path)
    if path.is_file():
        return sha256_file(path)
    digest = hashlib.sha256(b"folder\0")
    for item in sorted(p for p in path.rglob("*") if p.is_file()):
        digest.update(f"{item.relative_to(path).as_posix()}\0{sha256_file(item)}\n".encode())
    return digest.hexdigest()


def folder_size(path: str | Path) -> int:
    """Bytes of a file, or of every file under a folder (links followed only at the top)."""
    path = Path(path)
    if path.is_file():
        return path.stat().st_size
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def write_json_atomic(path: Path, data) -> None:
    """Write to a temporary file beside `path`, then rename: readers see the old or the new file, whole."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as out:
            json.dump(data, out, indent=1)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
