"""The edge latency gate, in a real Node process on a small JSON-tree bundle: its figure is the
nearest-rank p99 the runtime reports, and its detail names that definition."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from kit.features import FeatureSpec, numeric
from kit.gates import GateContext
from kit.stats import DEFINITION
from kit.targets.edge import write_bundle
from kit.targets.edge.gates import EdgeLatency
from kit.targets.edge.lightgbm import export_booster

lgb = pytest.importorskip("lightgbm")


def test_latency_gate_reports_nearest_rank_percentiles(tmp_path):
    rng = np.random.default_rng(3)
    frame = pd.DataFrame({"a": rng.normal(size=400), "b": rng.uniform(-1, 1, size=400)})
    frame.loc[::7, "b"] = np.nan  # left out of the request rows, as a client would
    spec = FeatureSpec.of(numeric("a", frame["a"], transform="identity", missing="nan"),
                          numeric("b", frame["b"], transform="identity", missing="nan"))
    booster = lgb.train({"objective": "binary", "num_leaves": 4, "verbosity": -1, "num_threads": 1},
                        lgb.Dataset(spec.transform(frame), (frame["a"] > 0).astype(int)), num_boost_round=5)
    exported = export_booster(booster, tmp_path / "json")
    bundle = write_bundle(tmp_path / "bundle", model_dir=exported.parent, kind="lightgbm-json", task="binary",
                          labels=["no", "yes"], feature_spec=spec, model_name="tiny")
    frame.to_parquet(tmp_path / "rows.parquet")
    context = GateContext(model_name="tiny", alias=None, metrics=lambda step: {}, champion=None, candidate=None,
                          outputs={"convert": {"bundle": bundle}, "data": {"rows": tmp_path / "rows.parquet"}})
    gate = EdgeLatency(bundle={"step": "convert", "output": "bundle"}, rows={"step": "data", "output": "rows"},
                       p99_ms=10_000, calls=200, warmup=50, rounds=1)

    result = gate.evaluate(context)

    assert result.passed and result.figure is not None and result.figure > 0
    assert f"p99 {result.figure:.3f} ms" in result.detail
    assert result.detail.endswith(f"p50, p99: {DEFINITION})")
