"""The CTR example end to end: pipelines/ctr.yaml on 50k synthetic impressions with real LightGBM,
MLflow, GX and the Node edge gates; corrupted logs stopped by the raw contract; a weakened model
refused by the regression gate while the champion keeps its alias."""

from __future__ import annotations

import pandas as pd
import pytest

from conftest import REPO, Project, ctr_with_test_cloud_budget

pytestmark = pytest.mark.e2e
QUICK = ("-p", "logs.rows=50000")
MODEL, ALIAS = "ctr", "edge-champion"
GATES = ("evaluate.auc", "no_regression.evaluate.log_loss", "artifact_size", "edge_parity", "edge_latency")


@pytest.fixture(scope="module")
def ctr(tmp_path_factory):
    root = tmp_path_factory.mktemp("ctr")
    project = Project.linked(root)
    ctr_with_test_cloud_budget(project)
    done = project.kit("run", "pipelines/ctr.yaml", *QUICK, timeout=900)
    return project, done


def latest_runs(project) -> dict:
    """The step runs (and the parent, under the pipeline's name) of the latest pipeline run."""
    runs = project.runs("ctr")
    parent = [r for r in runs if r.data.tags.get("kit.kind") == "pipeline"][-1]
    steps = {r.info.run_name: r for r in runs if r.data.tags.get("mlflow.parentRunId") == parent.info.run_id}
    return {"ctr": parent, **steps}


def versions(project) -> list:
    return project.client().search_model_versions(f"name='{MODEL}'")


def champion(project) -> str:
    return project.client().get_model_version_by_alias(MODEL, ALIAS).version


def test_pipeline_passes_every_gate_and_moves_edge_champion(ctr):
    project, done = ctr
    assert done.returncode == 0, done.stderr
    assert f"registered {MODEL} v1; {ALIAS} moved (none) -> v1" in done.stdout
    version = project.client().get_model_version_by_alias(MODEL, ALIAS)
    assert version.tags["kit.gates"] == "passed"
    for gate in GATES:
        assert version.tags[f"kit.gate.{gate}"].startswith("passed"), gate
    for param in ("logs_path", "train_path", "valid_path"):
        assert any(version.tags.get(f"kit.contract.{step}.{param}") == "passed" for step in ("logs", "features"))

    runs = latest_runs(project)
    assert set(runs) == {"ctr", "logs", "features", "train", "edge_bundle", "cloud_model", "evaluate"}
    cloud = project.client().get_model_version_by_alias(MODEL, "cloud-champion")
    assert cloud.tags["kit.gate.cloud_latency"].startswith("passed") and cloud.source.endswith("/outputs/model_dir")
    assert all(r.info.status == "FINISHED" for r in runs.values())
    logs, train, evaluate = runs["logs"].data.metrics, runs["train"], runs["evaluate"].data.metrics
    assert logs["rows"] == 50_000 and 0.02 < logs["ctr"] < 0.05
    assert evaluate["auc"] >= 0.65
    assert evaluate["log_loss"] < evaluate["baseline_log_loss"] and evaluate["normalized_entropy"] < 1
    assert evaluate["lift_top_decile"] > 1.5
    history = project.client().get_metric_history(train.info.run_id, "valid_binary_logloss")
    assert len(history) >= train.data.metrics["best_iteration"] >= 1 and [m.step for m in history][:2] == [1, 2]
    days = project.client().get_metric_history(runs["evaluate"].info.run_id, "day_auc")
    assert sorted(m.step for m in days) == [0, 1, 2]  # validation_days = 3
    figures = {a.path for a in project.client().list_artifacts(runs["evaluate"].info.run_id)}
    assert figures >= {"calibration.png", "gain_and_lift.png", "feature_importance.png", "metrics_by_day.png"}
    logged = project.client().search_logged_models(experiment_ids=[train.info.experiment_id],
                                                   filter_string=f"source_run_id = '{train.info.run_id}'")
    assert [m.name for m in logged] == ["model"]  # mlflow.lightgbm.log_model(booster, name="model")


def test_edge_parity_holds_on_rows_with_missing_values_and_unseen_categories(ctr):
    project, done = ctr
    assert done.returncode == 0, done.stderr
    version = project.client().get_model_version_by_alias(MODEL, ALIAS)
    figure = float(version.tags["kit.gate.edge_parity"].split()[1])  # "passed 2.8e-17 (max |diff| <= 1e-09, ...)"
    assert figure <= 1e-9
    assert latest_runs(project)["ctr"].data.metrics["gate.edge_parity"] <= 1e-9

    # The rows the gate compared (the first 5000 validation rows) do hold the hard cases.
    from kit.features import load_spec

    features = latest_runs(project)["features"].data.params
    spec = load_spec(features["spec_path"])
    rows = pd.read_parquet(features["valid_path"]).head(5000)
    train = pd.read_parquet(features["train_path"], columns=["user_id", "creative_id"])
    assert (rows[["user_ctr_7d", "session_depth", "time_on_site_s"]].isna().sum() > 50).all()
    unseen = {name: int((~rows[name].isin(set(train[name]))).sum()) for name in ("user_id", "creative_id")}
    assert unseen["user_id"] > 0 and unseen["creative_id"] > 50, unseen  # ids never seen in training
    X = spec.transform(rows[spec.input_names])
    oov = {item.name: int((X[:, i] == len(item.transform.values)).sum())  # unseen, or beyond max_categories
           for i, item in enumerate(spec.inputs) if item.kind == "categorical"}
    assert oov["user_id"] > 500 and oov["creative_id"] > 500, oov


@pytest.mark.parametrize("kind", [None, "nulls", "drift", "schema", "labels"])
def test_the_logs_contract_passes_clean_logs_and_fails_each_corruption(kind, tmp_path):
    from kit.contracts import check
    from kit.examples import ad_logs

    path = ad_logs.write(tmp_path / "logs.parquet", rows=20_000, seed=3, corrupt=kind)
    assert check(REPO / "data_contracts" / "ctr_logs.json", path).success is (kind is None)


def test_corrupted_logs_fail_the_raw_contract_and_register_nothing(ctr, tmp_path):
    project, done = ctr
    assert done.returncode == 0, done.stderr
    from kit.examples import ad_logs

    before = (len(versions(project)), champion(project))
    bad = ad_logs.write(tmp_path / "vendor_logs.csv", rows=20_000, seed=1, corrupt="drift")  # smart_tv, cents
    result = project.kit("run", "pipelines/ctr.yaml", "-p", f"logs.source={bad}")
    assert result.returncode == 3, result.stderr
    assert "ctr_logs.json" in result.stderr and "smart_tv" in result.stderr and "bid_floor" in result.stderr
    runs = latest_runs(project)
    assert runs["logs"].data.tags["kit.contract.logs_path"] == "failed"
    assert set(runs) == {"ctr", "logs"}  # nothing downstream ran
    assert (len(versions(project)), champion(project)) == before


def test_weakened_model_is_refused_by_the_regression_gate_and_the_alias_stays(ctr):
    project, done = ctr
    assert done.returncode == 0, done.stderr
    before = champion(project)
    result = project.kit("run", "pipelines/ctr.yaml", *QUICK, "-p", "train.num_boost_round=1", "-p", "train.num_leaves=2")
    assert result.returncode == 3, result.stderr
    output = result.stdout + result.stderr
    assert "no_regression.evaluate.log_loss" in output and f"{ALIAS} stays at v{before}" in output
    assert champion(project) == before
    rejected = max(versions(project), key=lambda v: int(v.version))
    assert rejected.tags["kit.gates"] == "failed"
    assert rejected.tags["kit.gate.no_regression.evaluate.log_loss"].startswith("failed")
    assert rejected.tags["kit.gate.edge_parity"].startswith("passed")  # a weak model is still a faithful bundle


def test_a_second_run_rescores_both_champions_on_its_validation_rows(ctr):
    """The edge-champion's JSON trees in Node and the cloud-champion's MLflow model, each on this
    run's validation rows: the same rows v1 was validated on, so re-scored = recorded."""
    import json

    project, done = ctr
    assert done.returncode == 0, done.stderr
    holders = {alias: str(project.client().get_model_version_by_alias(MODEL, alias).version)
               for alias in (ALIAS, "cloud-champion")}
    registered = len(versions(project))
    again = project.kit("run", "pipelines/ctr.yaml", *QUICK, timeout=900)
    assert again.returncode == 0, again.stderr
    # The same seed trains the same model: the champions are these very files, so nothing is
    # registered twice and no alias moves (a move would redeploy, a rollback would change nothing).
    for alias, version in holders.items():
        assert f"{alias} already holds these files ({MODEL} v{version}): nothing registered, the alias stays" \
            in again.stdout
        assert str(project.client().get_model_version_by_alias(MODEL, alias).version) == version
    assert len(versions(project)) == registered
    parent = latest_runs(project)["ctr"]
    assert {alias: parent.data.tags[f"kit.model_version.{alias}"] for alias in holders} == holders
    gates = json.loads(open(project.client().download_artifacts(parent.info.run_id, "gates/gates.json")).read())
    for name, alias in (("no_regression.evaluate.log_loss", ALIAS), ("no_regression.cloud", "cloud-champion")):
        found = next(g for g in gates if g["name"] == name)
        assert found["passed"] and found["baseline_version"] == holders[alias], found
        assert found["baseline_rescored"] == pytest.approx(found["baseline_recorded"], rel=1e-6), found["detail"]
        assert found["difference"] == pytest.approx(0, abs=1e-9)  # the same seed trains the same model
    edge = next(g for g in gates if g["name"] == "no_regression.evaluate.log_loss")
    assert edge["confidence"] == 0.95 and edge["resamples"] == 1000 and edge["ci_low"] <= 0 <= edge["ci_high"]
    assert {s["value"] for s in edge["slices"]} == {"mobile", "desktop", "tablet"}


def test_a_run_with_the_same_model_and_rows_reuses_the_gates_measurements(ctr):
    """After the second run above, the champions are the same files as this run's candidates:
    the Node, server and re-scoring gates are judged from the measurements already made (the
    metric and size gates are cheap and always measured)."""
    import json

    project, done = ctr
    assert done.returncode == 0, done.stderr
    holders = {alias: str(project.client().get_model_version_by_alias(MODEL, alias).version)
               for alias in (ALIAS, "cloud-champion")}
    again = project.kit("run", "pipelines/ctr.yaml", *QUICK, timeout=900)
    assert again.returncode == 0, again.stderr
    parent = latest_runs(project)["ctr"]
    gates = {g["name"]: g for g in json.loads(open(project.client().download_artifacts(
        parent.info.run_id, "gates/gates.json")).read())}
    reused = {name for name, g in gates.items() if g.get("reused_from_run")}
    assert reused == {"no_regression.evaluate.log_loss", "no_regression.cloud", "edge_parity", "edge_latency",
                      "cloud_latency"}, {n: g["detail"] for n, g in gates.items()}
    assert all(g["passed"] for g in gates.values())
    assert gates["cloud_latency"]["detail"].startswith("reused from run ")
    assert gates["cloud_latency"]["seconds"] < 1  # a measurement takes seconds: a server and 3 rounds of wrk
    for alias, version in holders.items():
        assert f"{alias} already holds these files ({MODEL} v{version})" in again.stdout


def test_the_example_keeps_the_ad_servers_budget_of_20_ms_at_8_connections(ctr):
    """The tests above run a copy whose cloud budget suits a shared CI host (conftest's
    ctr_with_test_cloud_budget); the example users run keeps the default budget."""
    import yaml

    from kit.targets.cloud.gates import CloudLatency

    project, done = ctr
    gates = {g["type"]: g for g in yaml.safe_load((REPO / "pipelines" / "ctr.yaml").read_text())["gates"]}
    example = CloudLatency.model_validate({k: v for k, v in gates["cloud_latency"].items() if k != "type"})
    assert (example.p99_ms, example.clients, example.max_errors) == (20.0, 8, 0)
    assert "p99 <= 100 ms" in done.stdout + done.stderr
