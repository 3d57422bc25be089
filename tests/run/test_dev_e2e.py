"""`kit dev` and Jupytext `.py` steps, with the real Iris notebooks, kernels and MLflow store.

The project here holds real copies of the notebooks and pipelines (not links to the repo's):
`kit dev --save` writes to the source notebook."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import jupytext
import nbformat
import pytest

from conftest import REPO, Project

pytestmark = pytest.mark.e2e

DEV = ["dev", "pipelines/iris.yaml", "evaluate"]
INJECTED_TAG = "kit-dev-injected"


@pytest.fixture(scope="module")
def iris(iris_run_once, tmp_path_factory):
    original, done = iris_run_once
    assert done.returncode == 0, done.stderr
    return original.clone(tmp_path_factory.mktemp("dev"))  # its tests save notebooks: a copy of its own


def step_runs(project: Project) -> dict:
    return {r.info.run_name: r for r in project.runs("iris")}


def cells_of(path: Path) -> list:
    return nbformat.read(path, as_version=4).cells


def test_a_py_step_runs_and_its_executed_notebook_and_html_are_logged(iris):
    client, runs = iris.client(), step_runs(iris)
    evaluate = runs["evaluate"]
    assert evaluate.info.status == "FINISHED" and evaluate.data.tags["kit.notebook"] == "notebooks/40_evaluate.py"
    logged = {a.path for a in client.list_artifacts(evaluate.info.run_id, "notebook")}
    assert {"notebook/40_evaluate.ipynb", "notebook/40_evaluate.html"} <= logged
    executed = nbformat.read(client.download_artifacts(evaluate.info.run_id, "notebook/40_evaluate.ipynb"), as_version=4)
    assert executed.metadata.papermill["input_path"].endswith("notebooks/40_evaluate.py")
    injected = next(c for c in executed.cells if "injected-parameters" in c.metadata.get("tags", []))
    assert "test_path = " in injected.source and "test.parquet" in injected.source
    assert any("accuracy" in json.dumps(c.get("outputs", [])) for c in executed.cells)
    assert evaluate.data.metrics["accuracy"] > 0.5
    # the run's snapshot keeps the .py as it was read
    snapshot = Path(client.download_artifacts(runs["iris"].info.run_id, "snapshot"))
    assert (snapshot / "notebooks" / "40_evaluate.py").read_text() == (iris.root / "notebooks/40_evaluate.py").read_text()


def test_kit_dev_injects_real_upstream_paths_from_the_store_and_the_working_copy_runs(iris):
    source = (iris.root / "notebooks/40_evaluate.py").read_bytes()
    shutil.rmtree(iris.root / "workspaces" / "iris")  # the run's local files are gone: inputs come from the store
    done = iris.kit(*DEV)
    assert done.returncode == 0, done.stderr
    copy = iris.root / "workspaces/dev/iris/evaluate/40_evaluate.ipynb"
    assert str(copy) in done.stdout and "kit dev pipelines/iris.yaml evaluate --save" in done.stdout
    assert (iris.root / "notebooks/40_evaluate.py").read_bytes() == source  # the source is untouched

    cells = cells_of(copy)
    tags = [c.metadata.get("tags", []) for c in cells]
    at = tags.index(["parameters"])
    injected = cells[at + 1]
    assert INJECTED_TAG in injected.metadata["tags"] and sum(INJECTED_TAG in t for t in tags) == 1
    values = dict(line.split(" = ", 1) for line in injected.source.splitlines() if not line.startswith("#"))
    assert set(values) == {"test_path", "stats_path", "spec_path", "model_path", "metrics_path"}
    paths = {name: Path(eval(value)) for name, value in values.items()}
    for name in ("test_path", "stats_path", "spec_path", "model_path"):
        assert paths[name].exists() and paths[name].is_absolute(), name
    assert paths["test_path"].name == "test.parquet" and paths["model_path"].name == "model.keras"
    parent = step_runs(iris)["iris"].info.run_id
    assert parent in injected.source and parent in done.stdout
    assert paths["metrics_path"].parent == copy.parent / "scratch" and not paths["metrics_path"].exists()

    import papermill

    papermill.execute_notebook(str(copy), str(copy.parent / "executed.ipynb"), kernel_name="kit",
                               cwd=str(copy.parent), progress_bar=False)
    metrics = json.loads(paths["metrics_path"].read_text())
    assert metrics["n_test"] == 30 and metrics["accuracy"] > 0.5


def test_kit_dev_save_removes_the_injected_cell_and_keeps_the_edit_in_the_py_and_its_pair(iris):
    copy = iris.root / "workspaces/dev/iris/evaluate/40_evaluate.ipynb"
    assert copy.is_file(), "runs after the test that makes the working copy"
    nb = nbformat.read(copy, as_version=4)
    nb.cells.append(nbformat.v4.new_code_cell("print('balanced accuracy, added in JupyterLab')"))
    nb.cells[-1].outputs = [nbformat.v4.new_output("stream", text="an output that must not reach the source\n")]
    nbformat.write(nb, copy)

    done = iris.kit(*DEV, "--save")
    assert done.returncode == 0, done.stderr
    script = (iris.root / "notebooks/40_evaluate.py").read_text()
    paired = nbformat.read(iris.root / "notebooks/40_evaluate.ipynb", as_version=4)
    for text in (script, json.dumps(paired)):
        assert "balanced accuracy, added in JupyterLab" in text
        assert "Injected by" not in text and INJECTED_TAG not in text and "scratch" not in text
        assert "must not reach the source" not in text
    assert '# %% tags=["parameters"]\ntest_path = "../build/iris/test.parquet"' in script
    assert paired.metadata.jupytext.formats == "ipynb,py:percent" and paired.metadata.kernelspec.name == "kit"
    assert [c.source for c in paired.cells] == [c.source for c in jupytext.read(iris.root / "notebooks/40_evaluate.py").cells]
    assert iris.kit("validate", "pipelines/iris.yaml").returncode == 0

    # kit dev again keeps the edit in the working copy and refreshes the injected cell
    again = iris.kit(*DEV)
    assert again.returncode == 0, again.stderr
    assert "kept your edits" in again.stdout
    cells = cells_of(copy)
    assert sum(INJECTED_TAG in c.metadata.get("tags", []) for c in cells) == 1
    assert "balanced accuracy" in cells[-1].source


def test_save_refuses_to_undo_a_change_made_to_the_source_since_the_copy_was_made(iris):
    script = iris.root / "notebooks/40_evaluate.py"
    script.write_text(script.read_text() + "\n# %%\nprint('pulled from a colleague')\n")  # as a `git pull` would
    refused = iris.kit(*DEV, "--save")
    assert refused.returncode == 2 and "Traceback" not in refused.stderr
    assert "notebooks/40_evaluate.py changed since the working copy" in refused.stderr
    assert "kit dev pipelines/iris.yaml evaluate --save --force" in refused.stderr
    assert "pulled from a colleague" in script.read_text()  # nothing was lost

    forced = iris.kit(*DEV, "--save", "--force")
    assert forced.returncode == 0, forced.stderr
    assert "pulled from a colleague" not in script.read_text() and "balanced accuracy" in script.read_text()
    assert iris.kit("dev", "pipelines/iris.yaml", "evaluate", "--force").returncode == 2  # --force only with --save


def test_bad_inputs_exit_2_with_a_clear_message(iris, tmp_path):
    unknown = iris.kit("dev", "pipelines/iris.yaml", "evaluat")
    assert unknown.returncode == 2
    assert "no step 'evaluat' (steps: features, train, evaluate)" in unknown.stderr and "Traceback" not in unknown.stderr

    no_copy = iris.kit("dev", "pipelines/iris.yaml", "train", "--save")
    assert no_copy.returncode == 2
    assert "no working copy of step 'train'" in no_copy.stderr and "run `kit dev pipelines/iris.yaml train` first" in no_copy.stderr

    fresh = Project(tmp_path)  # no run yet
    for name in ("notebooks", "pipelines"):
        shutil.copytree(REPO / name, tmp_path / name)
    (tmp_path / "data_contracts").symlink_to(REPO / "data_contracts")
    never = fresh.kit(*DEV)
    assert never.returncode == 2 and "Traceback" not in never.stderr
    assert "no run of pipeline 'iris' has finished step(s) features, train" in never.stderr
    assert "run `kit run pipelines/iris.yaml` first" in never.stderr


def test_an_upstream_output_missing_from_the_store_exits_2(iris):
    runs = step_runs(iris)
    features = runs["features"].info.run_id
    stored = Path(iris.client().get_run(features).info.artifact_uri.removeprefix("file://")) / "outputs" / "test_path"
    shutil.rmtree(stored)
    shutil.rmtree(iris.root / "workspaces/dev/iris/evaluate/inputs")
    done = iris.kit(*DEV)
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert f"upstream output features.test_path (test.parquet) of pipeline run {runs['iris'].info.run_id}" in done.stderr
    assert "is not in the tracking store" in done.stderr
