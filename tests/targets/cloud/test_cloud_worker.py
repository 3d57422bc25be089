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
