"""`kit.edge`: from a LightGBM booster to a bundle, verified, and run in a real Node process from
Python, through the public names only."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import kit.edge
from kit.features import FeatureSpec, categorical, numeric

lgb = pytest.importorskip("lightgbm")


def test_booster_to_bundle_to_answers_in_node(tmp_path):
    rng = np.random.default_rng(1)
    df = pd.DataFrame({"x": rng.normal(size=300), "device": rng.choice(["desktop", "mobile"], size=300)})
    spec = FeatureSpec.of(numeric("x", df.x, missing="nan", transform="identity"),
                          categorical("device", df.device, output="index"))
    booster = lgb.train({"objective": "binary", "verbose": -1, "num_leaves": 5},
                        lgb.Dataset(spec.transform(df), (df.x > 0).astype(int)), 8)
    kit.edge.export_booster(booster, tmp_path / "lgb", feature_spec=spec)
    bundle = kit.edge.write_bundle(tmp_path / "bundle", model_dir=tmp_path / "lgb", kind="lightgbm-json",
                                   task="binary", labels=["no", "yes"], feature_spec=spec, model_name="toy")
    manifest = kit.edge.read_bundle(bundle)
    assert isinstance(manifest, kit.edge.Manifest) and [f.name for f in manifest.inputs] == ["x", "device"]

    rows = pd.DataFrame({"x": [1.5, -1.0, np.nan], "device": ["mobile", None, "desktop"], "extra": [1, 2, 3]})
    answers = kit.edge.run_bundle(bundle, rows)  # columns the bundle does not take are left out
    expected = booster.predict(spec.transform(rows[["x", "device"]]))
    assert [a["prediction"] for a in answers] == [["no", "yes"][int(p >= 0.5)] for p in expected]
    np.testing.assert_allclose([a["probabilities"]["yes"] for a in answers], expected, rtol=0, atol=1e-9)
    assert kit.edge.run_bundle(bundle, [{"x": "abc", "device": "mobile"}])[0]["field"] == "x"


def test_a_missing_bundle_is_refused_by_name(tmp_path):
    with pytest.raises(kit.edge.BundleError, match="not found"):
        kit.edge.read_bundle(tmp_path / "nowhere")
