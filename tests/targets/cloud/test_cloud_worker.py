"""The scoring worker's batches: requests merged into one model call are answered byte for byte
as MLflow's scoring server answers each alone, whatever the model returns."""

from __future__ import annotations

import json

import mlflow.pyfunc
import numpy as np
import pandas as pd
import pytest

from kit.targets.cloud.worker import Scorer


class Shaped(mlflow.pyfunc.PythonModel):
    """Predicts 2a - b in the output shape named at construction."""

    def __init__(self, shape: str):
        self.shape = shape

    def predict(self, context, model_input, params=None):
        values = (2 * model_input["a"] - model_input["b"]).to_numpy()
        if self.shape == "frame":
            return pd.DataFrame({"score": values, "label": np.where(values > 0, "up", "down")})
        if self.shape == "series":
            return pd.Series(values, name="score")
        if self.shape == "array":
            return values
        return values.tolist()


@pytest.mark.parametrize("shape", ["frame", "series", "array", "list"])
def test_merged_batch_answers_equal_each_request_scored_alone(tmp_path, shape):
    folder = tmp_path / shape
    # With a signature, as registered models have: merged rows take the schema's types, so an
    # all-int request is not read as ints alone and floats in a batch (that would change its answer).
    signature = mlflow.models.infer_signature(pd.DataFrame({"a": [0.5], "b": [1.0]}))
    mlflow.pyfunc.save_model(str(folder), python_model=Shaped(shape), pip_requirements=[], signature=signature)
    scorer = Scorer(str(folder))
    requests = [("application/json", json.dumps({"dataframe_records": rows}).encode())
                for rows in ([{"a": 1.5, "b": 0.25}], [{"a": -2, "b": 1}, {"a": 0.5, "b": 3}], [{"a": 7, "b": -1}])]
    merged = scorer.score_batch(requests)
    assert merged == [scorer.score_one(*request) for request in requests]
    assert [status for status, _, _ in merged] == [200, 200, 200]
    assert len(json.loads(merged[1][1])["predictions"]) == 2


@pytest.fixture(scope="module")
def cloud_models(tmp_path_factory):
    """Two kit cloud models (binary and multiclass LightGBM behind a feature spec), saved as
    `kit.cloud.save_model` saves them."""
    lgb = pytest.importorskip("lightgbm")
    from kit.cloud import save_model
    from kit.features import FeatureSpec, categorical, numeric

    folder = tmp_path_factory.mktemp("cloud-models")
    rng = np.random.default_rng(0)
    df = pd.DataFrame({"x": rng.normal(size=300), "y": rng.uniform(0, 10, size=300),
                       "device": rng.choice(["desktop", "mobile", "tablet"], size=300), "code": rng.choice([1, 2, 3], size=300)})
    spec = FeatureSpec.of(numeric("x", df["x"], missing="nan", transform="identity"),
                          numeric("y", df["y"], missing="error", transform="identity"),
                          categorical("device", df["device"], output="index"), categorical("code", df["code"], output="index"))
    features = spec.transform(df)
    targets = {"binary": (((df.x + 0.3 * df.y) > 2).astype(int), {"objective": "binary"}, ["no", "yes"]),
               "multiclass": ((df.y // 3.4).astype(int), {"objective": "multiclass", "num_class": 3}, ["low", "mid", "high"])}
    for task, (target, params, labels) in targets.items():
        booster = lgb.train({**params, "verbose": -1, "num_leaves": 7}, lgb.Dataset(features, target), 10)
        save_model(booster, folder / task, feature_spec=spec, kind="lightgbm", task=task, labels=labels)
    return folder


@pytest.mark.parametrize("task", ["binary", "multiclass"])
def test_a_kit_cloud_model_scores_rows_without_mlflows_dataframe_path_and_answers_the_same(cloud_models, task,
                                                                                           monkeypatch):
    from mlflow.pyfunc import scoring_server

    scorer = Scorer(str(cloud_models / task))
    assert scorer.score_records is not None
    requests = [("application/json", json.dumps({"dataframe_records": rows}).encode()) for rows in (
        [{"x": 1.0, "y": 3, "device": "mobile", "code": 2}],
        [{"x": -0.5, "y": "7.5", "device": "tablet", "code": "3"}, {"y": 9.0, "device": "watch", "code": 7}],
        [{"x": None, "y": 4.0, "device": None, "code": None}],
        [{"x": 0.3, "y": 1.0, "device": "", "code": 2.0}],
        [{"x": 0.3, "device": "mobile"}],                      # y may not be missing: 400
        [{"x": 0.3, "y": 1.0, "colour": "red"}],               # an unknown field: 400
        [{"x": 0.3, "y": "many"}],                              # an unreadable number: 400
    )]
    alone = [scorer.score_one(*request) for request in requests]  # MLflow's scoring function, one by one
    assert [status for status, _, _ in alone] == [200, 200, 200, 200, 400, 400, 400]

    assert scorer.score_batch(requests) == alone  # the bad ones fall back, and fail alone
    assert [scorer.score_batch([request])[0] for request in requests] == alone

    parsed = []
    monkeypatch.setattr(scoring_server, "infer_and_parse_data", lambda *a, **k: parsed.append(a) or 1 / 0)
    assert scorer.score_batch(requests[:4]) == alone[:4]
    assert parsed == [], "good rows went through MLflow's DataFrame parsing"
