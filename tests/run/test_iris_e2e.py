"""The example pipeline, end to end, with the real notebooks, kernel and MLflow store."""

from __future__ import annotations

import json
from pathlib import Path

import pytest


pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def iris_run(iris_run_once):
    project, done = iris_run_once
    client = project.client()
    experiment = client.get_experiment_by_name("iris")
    runs = {r.info.run_name: r for r in client.search_runs([experiment.experiment_id])} if experiment else {}
    return done, client, runs


def artifacts(client, run, path=None) -> set[str]:
    return {a.path for a in client.list_artifacts(run.info.run_id, path)}


def test_pipeline_succeeds_with_a_parent_run_and_nested_step_runs(iris_run):
    done, _, runs = iris_run
    assert done.returncode == 0, done.stderr
    assert set(runs) == {"iris", "features", "train", "evaluate"}
    parent = runs["iris"]
    assert parent.info.status == "FINISHED"
    for step in ("features", "train", "evaluate"):
        assert runs[step].info.status == "FINISHED"
        assert runs[step].data.tags["mlflow.parentRunId"] == parent.info.run_id


def test_parent_run_records_provenance(iris_run):
    _, client, runs = iris_run
    parent = runs["iris"]
    assert artifacts(client, parent, "pipeline") >= {"pipeline/iris.yaml", "pipeline/summary.json"}
    assert len(parent.data.tags["kit.lock_sha256"]) == 64
    assert len(parent.data.tags["kit.git.commit"]) == 40 and parent.data.tags["kit.git.dirty"] in ("true", "false")


def test_each_step_keeps_its_executed_notebook_html_and_outputs(iris_run):
    _, client, runs = iris_run
    expected = {"features": ["raw_path", "train_path", "test_path", "stats_path", "spec_path"],
                "train": ["model_path", "saved_model_dir"],
                "evaluate": ["metrics_path"]}
    for step, outputs in expected.items():
        notebook = artifacts(client, runs[step], "notebook")
        assert any(p.endswith(".ipynb") for p in notebook) and any(p.endswith(".html") for p in notebook)
        assert artifacts(client, runs[step], "outputs") == {f"outputs/{o}" for o in outputs}
        assert runs[step].data.metrics["duration_s"] > 0


def test_metrics_and_plots_land_on_the_step_that_made_them(iris_run):
    _, client, runs = iris_run
    train, evaluate = runs["train"], runs["evaluate"]
    assert train.data.params["epochs"] == "30"
    assert len(client.get_metric_history(train.info.run_id, "loss")) == 30
    assert "training_curves.png" in artifacts(client, train)
    assert evaluate.data.metrics["accuracy"] >= 0.8 and evaluate.data.metrics["log_loss"] < 0.7
    assert {"confusion_matrix.png", "classification_report.json"} <= artifacts(client, evaluate)
    assert "log_loss" not in runs["iris"].data.metrics and "log_loss" not in train.data.metrics
    assert "confusion_matrix.png" not in artifacts(client, train)


def test_features_use_snake_case_columns_and_train_only_statistics(iris_run):
    _, client, runs = iris_run
    stats = json.loads(Path(client.download_artifacts(runs["features"].info.run_id,
                                                      "outputs/stats_path/standardization.json")).read_text())
    assert stats["features"] == ["sepal_length", "sepal_width", "petal_length", "petal_width"]
    assert stats["labels"] == ["setosa", "versicolor", "virginica"]
    saved_model = client.download_artifacts(runs["train"].info.run_id, "outputs/saved_model_dir")
    assert (Path(saved_model) / "saved_model.pb").is_file()


def test_contracts_gates_and_promotion_of_the_example(iris_run):
    done, client, runs = iris_run
    assert runs["features"].data.tags["kit.contract.raw_path"] == "passed"
    assert runs["features"].data.tags["kit.contract.train_path"] == "passed"
    assert runs["iris"].data.tags["kit.gates"] == "passed"
    assert "registered iris-classifier v1; champion moved (none) -> v1" in done.stdout
    version = client.get_model_version_by_alias("iris-classifier", "champion")
    assert version.tags["kit.gates"] == "passed" and version.tags["kit.pipeline_run_id"] == runs["iris"].info.run_id
    assert float(version.tags["kit.metric.evaluate.accuracy"]) >= 0.8


def test_a_second_run_rescores_the_keras_champion_on_its_test_rows(iris_run_once, tmp_path):
    project = iris_run_once[0].clone(tmp_path)
    client = project.client()
    again = project.kit("run", "pipelines/iris.yaml", "-p", "train.epochs=30", timeout=900)
    assert again.returncode == 0, again.stderr
    experiment = client.get_experiment_by_name("iris")
    parent = client.search_runs([experiment.experiment_id], "tags.`kit.kind` = 'pipeline'",
                                order_by=["start_time DESC"])[0]
    gates = json.loads(Path(client.download_artifacts(parent.info.run_id, "gates/gates.json")).read_text())
    found = next(g for g in gates if g["type"] == "no_regression")
    assert found["baseline_version"] == "1" and found["passed"]
    # The SavedModel, through the feature spec recorded with v1, on the same test rows: v1's own figure.
    assert found["baseline_rescored"] == pytest.approx(found["baseline_recorded"])
    assert "not re-scored" not in found["detail"] and "re-scored on the same 30 rows" in found["detail"]
    # Every step came from the cache: the champion already is these files, so nothing is registered.
    assert "champion already holds these files (iris-classifier v1): nothing registered, the alias stays" \
        in again.stdout
