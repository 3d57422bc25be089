"""Import directions stay as designed (import-linter contracts in pyproject.toml)."""

import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def test_import_contracts_are_kept():
    done = subprocess.run([str(REPO / ".venv/bin/lint-imports")], cwd=REPO, capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr
