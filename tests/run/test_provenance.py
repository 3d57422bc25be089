"""Provenance that is true: the dirty flag counts untracked files, every run logs a snapshot
of exactly what it executed, and `kit models NAME --version V` shows a version's evidence."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import nbformat
import pytest

from kit.run.provenance import changed_files, git_dirty


def git(root: Path, *args: str) -> None:
    subprocess.run(["git", "-c", "user.email=t@example.com", "-c", "user.name=t", *args], cwd=root, check=True,
                   capture_output=True)


@pytest.fixture
def repo(tmp_path) -> Path:
    (tmp_path / "pyproject.toml").write_text("[project]\nname = 'scratch'\n")
    (tmp_path / ".gitignore").write_text("*.log\n")
    (tmp_path / "a.txt").write_text("a")
    git(tmp_path, "init", "-q")
    git(tmp_path, "add", ".")
    git(tmp_path, "commit", "-qm", "start")
    return tmp_path


def test_dirty_counts_modified_staged_and_untracked_files_but_not_ignored_or_kit_outputs(repo):
    (repo / "mlruns").mkdir()
    (repo / "mlruns" / "mlflow.db").write_text("store")
    (repo / "workspaces").mkdir()
    (repo / "workspaces" / "out.csv").write_text("x")
    (repo / "run.log").write_text("ignored")
    assert git_dirty(repo) is False
    (repo / "notebooks").mkdir()
    (repo / "notebooks" / "new.ipynb").write_text("{}")  # untracked, in a folder of its own
    assert git_dirty(repo) is True and any("notebooks/new.ipynb" in line for line in changed_files(repo))
    (repo / "notebooks" / "new.ipynb").unlink()
    (repo / "a.txt").write_text("changed")
    assert git_dirty(repo) is True
    git(repo, "add", "a.txt")  # staged
    assert git_dirty(repo) is True
    git(repo, "commit", "-qm", "change")
    assert git_dirty(repo) is False


def test_outside_a_git_work_tree_dirty_is_unknown(tmp_path):
    assert git_dirty(tmp_path) is None


@pytest.mark.e2e
def test_a_model_built_from_an_untracked_notebook_is_dirty_and_its_snapshot_holds_the_notebook(project, capsys):
    root = project.root
    (root / ".gitignore").write_text("mlruns/\nworkspaces/\n")
    git(root, "init", "-q")
    git(root, "add", ".")
    git(root, "commit", "-qm", "start")
    notebook = project.notebook("make.ipynb", 'n = 3\nout_path = "t.csv"\nspec_path = "feature_spec.json"', """
        import json
        open(out_path, "w").write("x\\n" + "\\n".join(str(i / 10) for i in range(n)) + "\\n")
        json.dump({"format": "test", "inputs": []}, open(spec_path, "w"))
    """)
    (root / "data_contracts").mkdir()
    (root / "data_contracts" / "t.json").write_text(json.dumps({"expectations": [
        {"type": "expect_column_values_to_be_between", "kwargs": {"column": "x", "min_value": 0, "max_value": 1}}]}))
    path = project.pipeline("""
        name: prov
        model: prov-model
        steps:
          - name: make
            notebook: notebooks/make.ipynb
            parameters: {n: 5}
            outputs: {out_path: t.csv, spec_path: feature_spec.json}
            contracts: {out_path: data_contracts/t.json}
        promote:
          alias: champion
          source: {step: make, output: out_path}
    """)
    git(root, "add", str(path), "data_contracts/t.json")
    git(root, "commit", "-qm", "pipeline and contract, but not the notebook")
    done = project.kit("run", str(path))
    assert done.returncode == 0, done.stderr

    from kit.cli import main

    capsys.readouterr()
    assert main(["models", "prov-model", "--version", "1"]) == 0
    shown = capsys.readouterr().out
    commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True).stdout.strip()
    assert f"commit      {commit}  dirty: true" in shown, shown
    assert "make.out_path  passed" in shown and "make.out_path.sha256" in shown
    snapshot = next(line for line in shown.splitlines() if line.strip().startswith("snapshot")).split()[1]
    run_id = snapshot.split("/")[1]
    assert snapshot == f"runs:/{run_id}/snapshot"

    folder = Path(project.client().download_artifacts(run_id, "snapshot"))
    # the notebook as read: byte for byte the source, without papermill's injected parameters cell
    assert (folder / notebook).read_bytes() == (root / notebook).read_bytes()
    cells = nbformat.read(folder / notebook, as_version=4).cells
    assert not any("injected-parameters" in c.metadata.get("tags", []) for c in cells)
    assert (folder / "pipelines" / "p.yaml").read_text() == path.read_text()
    assert (folder / "data_contracts" / "t.json").read_bytes() == (root / "data_contracts/t.json").read_bytes()
    assert json.loads((folder / "feature_specs" / "make" / "feature_spec.json").read_text())["format"] == "test"
    manifest = json.loads((folder / "manifest.json").read_text())
    assert manifest["git_commit"] == commit
    assert any("notebooks/" in line for line in manifest["git_changed_files"])
    assert {name: entry["kind"] for name, entry in manifest["files"].items()} == {
        "pipelines/p.yaml": "pipeline", "notebooks/make.ipynb": "notebooks", "data_contracts/t.json": "contracts"}
