"""LightGBM at the edge (`lightgbm-json`): boosters trained on the feature-spec matrix, exported
as dump JSON, run in Node through the bridge, must match LightGBM's own predictions within 1e-9
(in practice ~1e-16) on rows with missing values, zeros, values on split thresholds and unseen
categories, for every missing_type LightGBM writes (None / Zero / NaN) and categorical splits.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from kit.features import FeatureSpec, categorical, numeric
from kit.features.rows import request_columns, request_rows
from kit.targets.edge import read_bundle, write_bundle
from kit.targets.edge.gates import python_outputs
from kit.targets.edge.lightgbm import LightgbmError, dump_to_model_string, export_booster, lightgbm_predict
from kit.targets.edge.node import bridge, score_columns

lgb = pytest.importorskip("lightgbm")
os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")

TOLERANCE = 1e-9
CITIES = [f"city{i:02d}" for i in range(40)]
DEVICES = ["desktop", "mobile", "tablet"]


def frame(rng: np.random.Generator, n: int, *, unseen: bool = False) -> pd.DataFrame:
    """Raw rows: `a` numeric with NaNs, `b` with many exact zeros and NaNs, `c` plain numeric,
    `city` a categorical with 40 values (skewed), `device` 3 values; both may be missing."""
    a = rng.normal(size=n)
    a[rng.random(n) < 0.15] = np.nan
    b = rng.normal(1, 2, size=n)
    b[rng.random(n) < 0.3] = 0.0
    b[rng.random(n) < 0.1] = np.nan
    c = rng.uniform(-5, 5, size=n)
    city = rng.choice(CITIES, size=n, p=np.r_[np.full(10, 0.06), np.full(30, 0.4 / 30)]).astype(object)
    device = rng.choice(DEVICES, size=n).astype(object)
    city[rng.random(n) < 0.05] = None
    device[rng.random(n) < 0.05] = None
    if unseen:
        mask = rng.random(n) < 0.15
        city[mask] = rng.choice(["nowhere", "city99", "atlantis"], size=mask.sum())
        device[rng.random(n) < 0.1] = "watch"
    return pd.DataFrame({"a": a, "b": b, "c": c, "city": city, "device": device})


def target(df: pd.DataFrame, rng: np.random.Generator) -> np.ndarray:
    city_effect = {name: np.sin(i * 1.7) * 1.5 for i, name in enumerate(CITIES)}
    b = df["b"].to_numpy()
    z = (np.nan_to_num(df["a"].to_numpy(), nan=1.0) + 0.5 * (b == 0) - 0.3 * np.nan_to_num(b)
         + 0.4 * df["c"].to_numpy() + df["city"].map(city_effect).fillna(-1.0).to_numpy(dtype=float)
         + (df["device"] == "mobile").to_numpy() * 0.8)
    return z + rng.normal(0, 0.5, len(df))


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(7)
    train = frame(rng, 3000)
    spec = FeatureSpec.of(
        numeric("a", train["a"], transform="identity", missing="nan"),
        numeric("b", train["b"], transform="identity", missing="nan"),
        numeric("c", train["c"], transform="identity", missing="nan"),
        categorical("city", train["city"], output="index"),
        categorical("device", train["device"], output="index"),
    )
    X = spec.transform(train[spec.input_names])
    z = target(train, rng)
    test = pd.concat([frame(rng, 300), frame(rng, 300, unseen=True)], ignore_index=True)
    return {"spec": spec, "X": X, "z": z, "test": test, "categorical": [3, 4]}


def edge_rows(test: pd.DataFrame, booster) -> pd.DataFrame:
    """The test rows plus rows placed exactly on (and one ulp around) every numeric threshold."""
    extra = []
    base = test.iloc[0].to_dict()

    def walk(node):
        if "split_feature" not in node:
            return
        f = node["split_feature"]
        if node["decision_type"] == "<=" and f < 3 and abs(node["threshold"]) < 1e300:
            t = node["threshold"]
            for v in (t, np.nextafter(t, np.inf), np.nextafter(t, -np.inf)):
                extra.append({**base, "abc"[f]: float(v)})
        walk(node["left_child"])
        walk(node["right_child"])

    for tree in booster.dump_model()["tree_info"][:20]:
        walk(tree["tree_structure"])
    extra += [{**base, "a": 0.0, "b": 0.0, "c": 0.0}, {**base, "b": 1e-36}, {**base, "b": -1e-36},
              {**base, "b": 1.00000001e-35}, {**base, "a": 1e-300}, {**base, "city": "city00", "device": "tablet"}]
    return pd.concat([test, pd.DataFrame(extra)], ignore_index=True)


def run_edge(tmp_path: Path, data, booster, *, task: str, labels: list[str], name: str):
    model_txt = tmp_path / f"{name}.txt"
    booster.save_model(str(model_txt))
    exported = export_booster(booster, tmp_path / f"{name}-json")
    bundle = write_bundle(tmp_path / f"{name}-bundle", model_dir=exported.parent, kind="lightgbm-json", task=task,
                          labels=labels, feature_spec=data["spec"], model_name=name)
    assert read_bundle(bundle).kind == "lightgbm-json"
    spec = data["spec"]
    rows_frame = edge_rows(data["test"], booster)
    features = spec.transform(rows_frame[spec.input_names])
    answered = bridge(bundle, request_rows(rows_frame, spec.input_names))
    assert all(o is not None for o in answered["outputs"]), [p for p in answered["predictions"] if "error" in p][:3]
    # The edge saw exactly the Python feature vectors (NaN <-> null).
    edge_features = np.array([[np.nan if v is None else v for v in row] for row in answered["features"]])
    np.testing.assert_array_equal(edge_features, features)
    got = np.asarray(answered["outputs"], dtype=np.float64)
    expected = np.asarray(booster.predict(features), dtype=np.float64).reshape(len(features), -1)
    diff = float(np.max(np.abs(got - expected)))
    print(f"{name}: {len(features)} rows, max |Node - LightGBM| = {diff:.3g}")
    assert diff <= TOLERANCE
    # The columnar path the regression gate re-scores with gives the very same outputs, with the
    # text columns as they are and as pandas categoricals.
    categoricals = rows_frame.astype({"city": "category", "device": "category"})
    for columns in (rows_frame, categoricals):
        scored = score_columns(bundle, request_columns(columns, spec.input_names))
        assert scored["refused"] is None
        np.testing.assert_array_equal(np.asarray(scored["outputs"]).reshape(got.shape), got)
    # The parity gate's Python side agrees with booster.predict, from the text model or the dump.
    np.testing.assert_array_equal(python_outputs("lightgbm-json", model_txt, features), expected)
    np.testing.assert_array_equal(python_outputs("lightgbm-json", bundle / "model" / "model.json", features), expected)
    return features, got, expected


def params(**extra):
    return {"verbose": -1, "num_threads": 2, "num_leaves": 31, "learning_rate": 0.2, "min_data_in_leaf": 10,
            "min_data_per_group": 10, "cat_smooth": 5, "max_cat_to_onehot": 4, "seed": 1, **extra}


def dataset(data, label):
    return lgb.Dataset(data["X"], label, categorical_feature=data["categorical"], free_raw_data=False)


def missing_types(booster) -> set[tuple[str, str]]:
    found = set()

    def walk(node):
        if "split_feature" in node:
            found.add((node["decision_type"], node["missing_type"]))
            walk(node["left_child"])
            walk(node["right_child"])

    for tree in booster.dump_model()["tree_info"]:
        walk(tree["tree_structure"])
    return found


@pytest.mark.parametrize("variant, extra, expect", [
    ("use_missing", {}, ("<=", "NaN")),
    ("zero_as_missing", {"zero_as_missing": True}, ("<=", "Zero")),
    ("no_missing", {"use_missing": False}, ("<=", "None")),
])
def test_binary_parity(tmp_path, data, variant, extra, expect):
    y = (data["z"] > 0.5).astype(int)
    booster = lgb.train(params(objective="binary", **extra), dataset(data, y), num_boost_round=40)
    kinds = missing_types(booster)
    assert expect in kinds and any(d[0] == "==" for d in kinds), kinds
    features, got, _ = run_edge(tmp_path, data, booster, task="binary", labels=["no", "yes"], name=f"binary-{variant}")
    assert np.isnan(features).any() and (features[:, 3] == len(data["spec"].inputs[3].transform.values)).any()
    assert ((got > 0) & (got < 1)).all()


def test_binary_sigmoid_coefficient(tmp_path, data):
    y = (data["z"] > 0).astype(int)
    booster = lgb.train(params(objective="binary", sigmoid=0.7), dataset(data, y), num_boost_round=15)
    assert booster.dump_model()["objective"] == "binary sigmoid:0.7"
    run_edge(tmp_path, data, booster, task="binary", labels=["no", "yes"], name="binary-sigmoid")


def test_multiclass_parity(tmp_path, data):
    y = np.digitize(data["z"], [-0.5, 1.0])
    booster = lgb.train(params(objective="multiclass", num_class=3), dataset(data, y), num_boost_round=25)
    _, got, _ = run_edge(tmp_path, data, booster, task="multiclass", labels=["low", "mid", "high"], name="multiclass")
    assert got.shape[1] == 3
    np.testing.assert_allclose(got.sum(axis=1), 1.0, atol=1e-12)


def test_regression_parity(tmp_path, data):
    # A regression model's raw output through a 1-output bundle: the bridge reports raw outputs.
    booster = lgb.train(params(objective="regression"), dataset(data, data["z"]), num_boost_round=30)
    _, got, _ = run_edge(tmp_path, data, booster, task="binary", labels=["value", "unused"], name="regression")
    assert (got < 0).any() and (got > 1).any()


def test_export_is_compact_and_the_dump_rebuilds_the_same_model(tmp_path, data):
    y = (data["z"] > 0.5).astype(int)
    booster = lgb.train(params(objective="binary"), dataset(data, y), num_boost_round=20)
    path = export_booster(booster, tmp_path / "m.json", feature_spec=data["spec"])
    compact = json.loads(path.read_text())
    assert len(path.read_text()) < 0.6 * len(json.dumps(booster.dump_model(), separators=(",", ":")))
    assert "feature_importances" not in compact and "split_gain" not in path.read_text()
    rebuilt = lgb.Booster(model_str=dump_to_model_string(compact))
    X = data["X"][:500]
    np.testing.assert_array_equal(rebuilt.predict(X), booster.predict(X))
    with pytest.raises(LightgbmError, match="feature spec makes 5"):
        export_booster(lgb.train(params(objective="binary"), lgb.Dataset(data["X"][:, :4], y), 2),
                       tmp_path / "bad.json", feature_spec=data["spec"])
    with pytest.raises(LightgbmError, match="model takes 5 features"):
        lightgbm_predict(path, data["X"][:, :3])


def test_the_edge_scorer_names_the_first_row_its_bundle_refuses(tmp_path, data):
    """Re-scoring a champion whose spec refuses a missing value: a ScoringError naming the row and
    field (the gate then says why it compared with the recorded figure), never a shifted output."""
    from kit.gates.scorers import ModelFiles, ScoringError, predict

    train = data["test"].assign(a=lambda f: f["a"].fillna(0.0))
    spec = FeatureSpec.of(numeric("a", train["a"], transform="identity", missing="error"),
                          numeric("c", train["c"], transform="identity", missing="nan"))
    booster = lgb.train(params(objective="binary"), lgb.Dataset(spec.transform(train[spec.input_names]),
                                                                   (train["c"] > 0).astype(int)), num_boost_round=3)
    exported = export_booster(booster, tmp_path / "json")
    bundle = write_bundle(tmp_path / "bundle", model_dir=exported.parent, kind="lightgbm-json", task="binary",
                          labels=["no", "yes"], feature_spec=spec, model_name="strict")
    scored = predict(ModelFiles(bundle), train.head(50))
    np.testing.assert_allclose(scored.values, booster.predict(spec.transform(train.head(50)[spec.input_names])))
    rows = train.head(50).copy()
    rows.loc[[7, 9], "a"] = np.nan
    with pytest.raises(ScoringError, match=r"refused 2 of 50 evaluation rows; row 7: .*\"a\" is missing"):
        predict(ModelFiles(bundle), rows)
