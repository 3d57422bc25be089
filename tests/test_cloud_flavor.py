"""`kit.cloud` in MLflow's flavor shape: save_model / log_model / load_model on a real MLflow
store, loaded back by `mlflow.pyfunc` through the private `kit.cloud._load_pyfunc`, with no pickle."""

from __future__ import annotations

import json
import os

import numpy as np
import pandas as pd
import pytest

os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")

import mlflow  # noqa: E402
import mlflow.pyfunc  # noqa: E402
import yaml  # noqa: E402

import kit.cloud  # noqa: E402
from kit.features import FeatureSpec, categorical, numeric  # noqa: E402

lgb = pytest.importorskip("lightgbm")
ROWS = [{"x": 1.0, "device": "mobile"}, {"x": -2.0, "device": "watch"}, {"device": "tablet"}]


@pytest.fixture(scope="module")
def trained():
    rng = np.random.default_rng(0)
    df = pd.DataFrame({"x": rng.normal(size=300), "device": rng.choice(["desktop", "mobile", "tablet"], size=300)})
    spec = FeatureSpec.of(numeric("x", df.x, missing="nan", transform="identity"),
                          categorical("device", df.device, output="index"))
    booster = lgb.train({"objective": "binary", "verbose": -1, "num_leaves": 7},
                        lgb.Dataset(spec.transform(df), ((df.x + (df.device == "mobile")) > 0.5).astype(int)), 10)
    return spec, booster, booster.predict(spec.transform(ROWS))


def test_save_model_writes_a_flavor_that_mlflow_loads_without_pickle(trained, tmp_path):
    spec, booster, expected = trained
    path = kit.cloud.save_model(booster, tmp_path / "model", feature_spec=spec, task="binary", labels=["no", "yes"],
                                model_name="toy")
    mlmodel = yaml.safe_load((path / "MLmodel").read_text())
    assert mlmodel["flavors"]["python_function"]["loader_module"] == "kit.cloud"
    assert mlmodel["flavors"][kit.cloud.FLAVOR_NAME]["kind"] == "lightgbm"
    assert not list(path.rglob("*.pkl"))
    served = mlflow.pyfunc.load_model(str(path)).predict(pd.DataFrame(ROWS))
    native = kit.cloud.load_model(path).predict(ROWS)
    np.testing.assert_allclose(served["probability"].to_numpy(), expected, rtol=0, atol=1e-15)
    assert served.equals(native)
    assert json.loads((path / "feature_spec.json").read_text()) == json.loads(spec.to_json())


def test_log_model_registers_a_version_that_loads_by_alias(trained, tmp_path, monkeypatch):
    spec, booster, expected = trained
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path}/mlflow.db")
    mlflow.set_experiment("cloud-flavor")
    with mlflow.start_run():
        info = kit.cloud.log_model(booster, "cloud_model", feature_spec=spec, task="binary", labels=["no", "yes"],
                                   registered_model_name="toy-cloud")
    client = mlflow.MlflowClient()
    client.set_registered_model_alias("toy-cloud", "champion", info.registered_model_version)
    for uri in (info.model_uri, "models:/toy-cloud@champion"):
        got = kit.cloud.load_model(uri).predict(pd.DataFrame(ROWS))
        np.testing.assert_allclose(got["probability"].to_numpy(), expected, rtol=0, atol=1e-15)
        assert got["prediction"].tolist() == [["no", "yes"][int(p >= 0.5)] for p in expected]
    assert mlflow.pyfunc.load_model("models:/toy-cloud@champion").metadata.metadata["kit.inputs"] == ["x", "device"]


def test_load_model_refuses_a_folder_that_is_not_a_cloud_model(tmp_path):
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "MLmodel").write_text("flavors: {python_function: {loader_module: mlflow.sklearn}}\n")
    with pytest.raises(kit.SpecError, match="not a kit cloud model"):
        kit.cloud.load_model(tmp_path / "other")


def test_read_predictions_reads_the_log_folder(tmp_path):
    record = {"time": "2026-12-01T10:00:00.000000+00:00", "model": "ctr", "version": "2", "request_id": "r1",
              "latency_ms": 1.5, "status": 200, "row": 0, "rows": 1, "input_sha256": "0" * 64, "output": 0.1}
    (tmp_path / "predictions-2026-12-01.jsonl").write_text(json.dumps(record) + "\n")
    frame = kit.cloud.read_predictions(tmp_path)
    assert frame["version"].tolist() == ["2"] and frame["latency_ms"].tolist() == [1.5]
