"""One preprocessing, two languages: the feature spec applied by Python (kit.features) and by
the JavaScript runtime in a real Node process gives the same vectors, for every transform,
on real rows with missing values and categories never seen in training."""

from __future__ import annotations

import lightgbm as lgb
import numpy as np
import pandas as pd
import pytest

from kit.examples import ad_logs
from kit.features import FeatureSpec, bucketized, categorical, numeric
from kit.features.rows import request_rows
from kit.targets.edge import write_bundle
from kit.targets.edge.lightgbm import export_booster
from kit.targets.edge.node import bridge

pytestmark = pytest.mark.e2e


def test_every_transform_agrees_between_python_and_node(tmp_path):
    logs = ad_logs.generate(6000, seed=3)
    train, held_out = logs.iloc[:4000], logs.iloc[4000:]
    spec = FeatureSpec.of(
        numeric("bid_floor", train["bid_floor"], transform="standardize", missing="fill"),
        numeric("time_on_site_s", train["time_on_site_s"], transform="minmax", missing="fill"),
        numeric("user_ctr_7d", train["user_ctr_7d"], transform="identity", missing="nan"),
        bucketized("session_depth", train["session_depth"], n_buckets=5, output="one_hot", missing="nan"),
        bucketized("hour", train["hour"], boundaries=[6, 12, 18], output="index", missing="fill"),
        categorical("device", train["device"], output="one_hot"),
        categorical("creative_id", train["creative_id"], output="index", max_categories=200),
        categorical("country", train["country"], output="one_hot", max_categories=5),
    )
    # A model only so that the runtime has a bundle to load: the test compares the features.
    X_train = spec.transform(train[spec.input_names])
    booster = lgb.train({"objective": "binary", "verbosity": -1, "num_leaves": 7}, lgb.Dataset(X_train, train["click"]),
                        num_boost_round=5)
    bundle = write_bundle(tmp_path / "bundle", model_dir=export_booster(booster, tmp_path / "trees.json"),
                          kind="lightgbm-json", task="binary", labels=["no", "yes"], feature_spec=spec, model_name="p")

    rows = held_out[spec.input_names].astype({"device": str, "country": str}).copy()  # free text, like requests
    rows.loc[rows.index[:40], "creative_id"] = 987654321  # never seen: the out-of-vocabulary bucket
    rows.loc[rows.index[40:80], "device"] = "smart_fridge"
    missing = rows.isna().sum()
    assert missing["user_ctr_7d"] > 0 and missing["time_on_site_s"] > 0 and missing["session_depth"] > 0

    expected = spec.transform(rows)
    answered = bridge(bundle, request_rows(rows, spec.input_names))
    got = np.array([[np.nan if v is None else v for v in vector] for vector in answered["features"]], dtype=np.float64)
    assert got.shape == expected.shape == (len(rows), spec.width)
    np.testing.assert_array_equal(np.isnan(got), np.isnan(expected))
    assert np.nanmax(np.abs(got - expected)) <= 1e-12
    oov = spec.column_names.index("device=<oov>")
    assert expected[40:80, oov].tolist() == [1.0] * 40  # the unseen device went to the OOV column in both
