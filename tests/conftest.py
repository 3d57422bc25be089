"""Shared fixtures: throw-away projects with tiny notebooks, and the real `kit` command."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import nbformat
import pytest

REPO = Path(__file__).resolve().parents[1]
KIT = [sys.executable, "-m", "kit.cli"]


def write_notebook(path: Path, parameters: str | None, *cells: str) -> Path:
    """A notebook for the `kit` kernel: an optional `parameters` cell, then code cells."""
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "kit", "display_name": "Python (kit)", "language": "python"}
    if parameters is not None:
        cell = nbformat.v4.new_code_cell(textwrap.dedent(parameters).strip())
        cell.metadata["tags"] = ["parameters"]
        nb.cells.append(cell)
    nb.cells.extend(nbformat.v4.new_code_cell(textwrap.dedent(c).strip()) for c in cells)
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, path)
    return path


class Project:
    """A project root of its own (store, workspaces), so tests never touch the repo's mlruns/."""

    def __init__(self, root: Path):
        self.root = root
        (root / "pyproject.toml").write_text("[project]\nname = 'scratch'\n")

    def notebook(self, name: str, parameters: str | None, *cells: str, folder: str = "notebooks") -> str:
        write_notebook(self.root / folder / name, parameters, *cells)
        return f"{folder}/{name}"

    def pipeline(self, text: str, name: str = "p.yaml", folder: str = "pipelines") -> Path:
        path = self.root / folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text).lstrip())
        return path

    @classmethod
    def linked(cls, root: Path) -> "Project":
        """A scratch project that uses the repo's notebooks, pipelines and contracts (as links:
        never write test files through them) with a store and workspaces of its own."""
        project = cls(root)
        for name in ("notebooks", "pipelines", "data_contracts", "uv.lock"):
            (root / name).symlink_to(REPO / name)
        return project

    @property
    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"}
        env.update(KIT_PROJECT_ROOT=str(self.root), MLFLOW_DISABLE_TELEMETRY="true")
        return env

    def kit(self, *args: str, timeout: float = 600) -> subprocess.CompletedProcess:
        return subprocess.run([*KIT, *args], cwd=self.root, env=self.env, capture_output=True, text=True, timeout=timeout)

    def popen(self, *args: str) -> subprocess.Popen:
        return subprocess.Popen([*KIT, *args], cwd=self.root, env=self.env, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)

    def client(self):
        from mlflow import MlflowClient

        return MlflowClient(f"sqlite:///{self.root / 'mlruns' / 'mlflow.db'}")

    def runs(self, experiment: str):
        client = self.client()
        found = client.get_experiment_by_name(experiment)
        assert found is not None, f"no experiment {experiment!r}"
        return client.search_runs([found.experiment_id], order_by=["start_time ASC"])


@pytest.fixture
def project(tmp_path, monkeypatch) -> Project:
    monkeypatch.setenv("KIT_PROJECT_ROOT", str(tmp_path))
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    return Project(tmp_path)
