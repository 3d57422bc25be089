"""The cloud model (`kit.cloud`): the feature spec inside the MLflow model, so cloud clients send the
fields edge clients send. Loaded back through MLflow exactly as the scoring server loads it."""

from __future__ import annotations

import os

import numpy as np
import pandas as pd
import pytest

os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")

import mlflow.pyfunc  # noqa: E402
from mlflow.exceptions import MlflowException  # noqa: E402

from kit.errors import SpecError  # noqa: E402
from kit.features import FeatureSpec, categorical, numeric  # noqa: E402
from kit.cloud import save_model  # noqa: E402
from kit.targets.cloud.pyfunc import CloudModel  # noqa: E402

lgb = pytest.importorskip("lightgbm")
DEVICES = ["desktop", "mobile", "tablet"]


def training_frame(n: int = 300, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame({"x": rng.normal(size=n), "y": rng.uniform(0, 10, size=n),
                         "device": rng.choice(DEVICES, size=n), "code": rng.choice([1, 2, 3], size=n)})


def toy_spec(df: pd.DataFrame) -> FeatureSpec:
    return FeatureSpec.of(numeric("x", df["x"], missing="nan", transform="identity"),
                          numeric("y", df["y"], missing="error", transform="identity"),
                          categorical("device", df["device"], output="index"),
                          categorical("code", df["code"], output="index"))


@pytest.fixture(scope="module")
def toy(tmp_path_factory):
    folder = tmp_path_factory.mktemp("pyfunc")
    df = training_frame()
    spec = toy_spec(df)
    features = spec.transform(df)
    binary = lgb.train({"objective": "binary", "verbose": -1, "num_leaves": 7},
                       lgb.Dataset(features, ((df.x + 0.3 * df.y + (df.device == "mobile")) > 2).astype(int)), 15)
    multi = lgb.train({"objective": "multiclass", "num_class": 3, "verbose": -1, "num_leaves": 7},
                      lgb.Dataset(features, (df.y // 3.4).astype(int)), 10)
    binary.save_model(str(folder / "binary.txt"))
    multi.save_model(str(folder / "multi.txt"))
    save_model(folder / "binary.txt", folder / "binary", feature_spec=spec, kind="lightgbm",
               task="binary", labels=["no", "yes"], model_name="toy")
    spec.save(folder / "feature_spec.json")
    save_model(folder / "multi.txt", folder / "multi", feature_spec=folder / "feature_spec.json",
               kind="lightgbm", task="multiclass", labels=["low", "mid", "high"])
    return {"folder": folder, "spec": spec, "binary": binary, "multi": multi}


RAW = [
    {"x": 1.0, "y": 3, "device": "mobile", "code": 2},
    {"x": -0.5, "y": "7.5", "device": "tablet", "code": "3"},      # a numeric string, a categorical as text
    {"x": None, "y": 4.0, "device": None, "code": None},            # nulls: NaN / out of vocabulary
    {"y": 9.0, "device": "watch", "code": 7},                       # x omitted, unseen categories
    {"x": 0.3, "y": 1.0, "device": "", "code": 2.0},                # "" is missing; 2.0 is the category "2"
]


def test_binary_predicts_probability_of_the_second_label_on_raw_rows(toy):
    model = mlflow.pyfunc.load_model(str(toy["folder"] / "binary"))
    frame = pd.DataFrame(RAW)
    got = model.predict(frame)
    expected = toy["binary"].predict(toy["spec"].transform(RAW))
    assert list(got.columns) == ["probability", "prediction"]
    np.testing.assert_allclose(got["probability"].to_numpy(), expected, rtol=0, atol=1e-15)
    assert got["prediction"].tolist() == [["no", "yes"][int(p >= 0.5)] for p in expected]


def test_multiclass_has_one_column_per_label_and_the_argmax(toy):
    model = mlflow.pyfunc.load_model(str(toy["folder"] / "multi"))
    got = model.predict(pd.DataFrame(RAW))
    expected = toy["multi"].predict(toy["spec"].transform(RAW))
    assert list(got.columns) == ["low", "mid", "high", "prediction"]
    np.testing.assert_allclose(got[["low", "mid", "high"]].to_numpy(), expected, rtol=0, atol=1e-15)
    assert got["prediction"].tolist() == [["low", "mid", "high"][i] for i in expected.argmax(axis=1)]


def test_categorical_numbers_and_their_text_are_the_same_category(toy):
    model = mlflow.pyfunc.load_model(str(toy["folder"] / "binary"))
    as_number = model.predict(pd.DataFrame([{"x": 0.2, "y": 5, "device": "mobile", "code": 3}]))
    as_text = model.predict(pd.DataFrame([{"x": 0.2, "y": 5, "device": "mobile", "code": "3"}]))
    assert as_number["probability"][0] == as_text["probability"][0]


def test_an_absent_field_is_a_missing_value_as_at_the_edge(toy):
    model = mlflow.pyfunc.load_model(str(toy["folder"] / "binary"))
    absent = model.predict(pd.DataFrame([{"y": 2.5, "code": 1}]))  # one row: x and device are not columns at all
    null = model.predict(pd.DataFrame([{"x": None, "y": 2.5, "device": None, "code": 1}]))
    assert absent.equals(null)
    assert absent["probability"][0] == toy["binary"].predict(toy["spec"].transform([{"y": 2.5, "code": 1}]))[0]


def test_the_metadata_names_the_inputs(toy):
    model = mlflow.pyfunc.load_model(str(toy["folder"] / "binary"))
    assert model.metadata.metadata["kit.inputs"] == ["x", "y", "device", "code"]
    assert model.metadata.metadata["kit.model_name"] == "toy"
    assert model.metadata.signature is None  # no schema enforcement: raw values reach the spec
    assert not (toy["folder"] / "binary" / "uv.lock").exists()  # MLflow's uv auto-detection is off


@pytest.mark.parametrize("rows, message", [
    ([{"x": 1.0, "device": "mobile", "code": 1}], "field 'y': missing value"),     # y's strategy is 'error'
    ([{"x": 1.0, "y": None, "device": "mobile", "code": 1}], "field 'y': missing value"),
    ([{**{"x": 1.0, "y": 1, "device": "mobile", "code": 1}, "colour": "red"}], "field 'colour': unknown field"),
    ([], "no rows"),
    ([{"x": "abc", "y": 1, "device": "mobile", "code": 1}], "field 'x'"),
    ([{"x": True, "y": 1, "device": "mobile", "code": 1}], "boolean"),
    ([{"x": 1.0, "y": float("inf"), "device": "mobile", "code": 1}], "field 'y'"),
])
def test_bad_rows_raise_the_error_the_scoring_server_answers_with_400(toy, rows, message):
    model = mlflow.pyfunc.load_model(str(toy["folder"] / "binary"))
    with pytest.raises(MlflowException, match=message) as caught:
        model.predict(pd.DataFrame(rows))
    assert caught.value.error_code == "INVALID_PARAMETER_VALUE"
    assert caught.value.get_http_status_code() == 400


def test_inputs_payload_of_dicts_of_zero_d_arrays_is_read(toy):
    model = CloudModel("lightgbm", "binary", ["no", "yes"])
    model.spec, model.booster = toy["spec"], toy["binary"]
    rows = [{k: np.array(v) for k, v in RAW[0].items()}]  # what MLflow makes of {"inputs": [{...}]}
    got = model.predict(rows)
    assert got["probability"][0] == pytest.approx(toy["binary"].predict(toy["spec"].transform(RAW[:1]))[0], abs=1e-15)


@pytest.mark.parametrize("changes, message", [
    ({"kind": "onnx"}, "kind='onnx'"),
    ({"task": "regression"}, "task='regression'"),
    ({"labels": ["a", "b", "c"]}, "needs 2 labels"),
    ({"model": "nowhere.txt"}, "not found"),
])
def test_save_refuses_wrong_arguments(toy, tmp_path, changes, message):
    arguments = dict(model=toy["folder"] / "binary.txt", feature_spec=toy["spec"], kind="lightgbm",
                     task="binary", labels=["no", "yes"])
    arguments.update(changes)
    with pytest.raises(SpecError, match=message):
        save_model(path=tmp_path / "model", **arguments)


def test_save_refuses_an_existing_folder(toy):
    with pytest.raises(SpecError, match="exists"):
        save_model(toy["folder"] / "binary.txt", toy["folder"] / "binary", feature_spec=toy["spec"],
                   kind="lightgbm", task="binary", labels=["no", "yes"])


def test_savedmodel_kind_runs_the_serve_endpoint_on_float32_features(toy, tmp_path):
    tf = pytest.importorskip("tensorflow")

    class Linear(tf.Module):
        @tf.function(input_signature=[tf.TensorSpec([None, 4], tf.float32)])
        def serve(self, x):
            return tf.nn.softmax(tf.stack([x[:, 0], -x[:, 0], x[:, 1] * 0.1], axis=1))

    tf.saved_model.save(Linear(), str(tmp_path / "saved"))
    save_model(tmp_path / "saved", tmp_path / "model", feature_spec=toy["spec"], kind="savedmodel",
               task="multiclass", labels=["a", "b", "c"])
    got = mlflow.pyfunc.load_model(str(tmp_path / "model")).predict(pd.DataFrame(RAW[:2]))
    x = toy["spec"].transform(RAW[:2]).astype(np.float32)
    logits = np.stack([x[:, 0], -x[:, 0], x[:, 1] * 0.1], axis=1).astype(np.float64)
    expected = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    np.testing.assert_allclose(got[["a", "b", "c"]].to_numpy(), expected, atol=1e-6)
    assert got["prediction"].tolist() == [["a", "b", "c"][i] for i in expected.argmax(axis=1)]


def test_a_model_saved_by_the_older_pickled_format_still_loads(toy, tmp_path):
    """Versions registered before the `kit_cloud` flavor (a pickled SpecModel) serve after a rollback."""
    from kit.targets.cloud.pyfunc import SpecModel

    legacy = SpecModel()
    legacy.kind, legacy.task, legacy.labels, legacy.model_name = "lightgbm", "binary", ["no", "yes"], "toy"
    mlflow.pyfunc.save_model(str(tmp_path / "old"), python_model=legacy, pip_requirements=[],
                             artifacts={"spec": str(toy["folder"] / "feature_spec.json"),
                                        "model": str(toy["folder"] / "binary.txt")})
    got = mlflow.pyfunc.load_model(str(tmp_path / "old")).predict(pd.DataFrame(RAW))
    expected = toy["binary"].predict(toy["spec"].transform(RAW))
    np.testing.assert_allclose(got["probability"].to_numpy(), expected, rtol=0, atol=1e-15)
