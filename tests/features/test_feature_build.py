"""Building spec inputs from training data: numeric, categorical, bucketized."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from kit.features import FeatureSpec, FeatureSpecError, bucketized, categorical, load_spec, numeric


def test_numeric_standardize_fill_and_range():
    item = numeric("x", pd.Series([1.0, 2.0, 3.0, None, 6.0]), range_margin=0.1)
    assert item.transform.type == "standardize"
    assert item.transform.mean == pytest.approx(3.0)
    assert item.transform.std == pytest.approx(np.std([1, 2, 3, 6]))
    assert item.missing.strategy == "fill" and item.missing.value == pytest.approx(3.0)
    assert (item.range.min, item.range.max) == pytest.approx((0.5, 6.5))


def test_numeric_minmax_identity_and_missing_strategies():
    item = numeric("x", [2, 4, "6"], transform="minmax", missing="nan")
    assert (item.transform.min, item.transform.max) == (2.0, 6.0)
    assert item.missing.strategy == "nan"
    assert numeric("x", np.array([1.0, 2.0]), transform="identity", missing="error").missing.strategy == "error"


def test_numeric_refuses_constant_and_empty_columns_and_junk():
    with pytest.raises(FeatureSpecError, match="'x'.*std is 0"):
        numeric("x", [3, 3, 3])
    with pytest.raises(FeatureSpecError, match="min == max"):
        numeric("x", [3, 3], transform="minmax")
    with pytest.raises(FeatureSpecError, match="no non-missing"):
        numeric("x", [None, float("nan")])
    with pytest.raises(FeatureSpecError, match="row 1"):
        numeric("x", [1, "abc"])
    with pytest.raises(FeatureSpecError, match="transform='log'"):
        numeric("x", [1, 2], transform="log")


def test_categorical_vocabulary_sorted_or_by_frequency():
    series = pd.Series(["b", "a", "c", "a", None, "", "c", "a", 7])
    item = categorical("c", series)
    assert item.transform.values == ["7", "a", "b", "c"]
    assert item.transform.output == "one_hot" and item.missing.strategy == "oov"
    top = categorical("c", series, output="index", max_categories=2)
    assert top.transform.values == ["a", "c"]  # a: 3, c: 2
    assert categorical("c", ["x", "y", "z"], max_categories=2).transform.values == ["x", "y"]  # ties by value


def test_bucketized_from_quantiles_or_given_boundaries():
    item = bucketized("n", list(range(1, 101)), n_buckets=4)
    assert item.transform.boundaries == pytest.approx([25.75, 50.5, 75.25])
    assert item.transform.output == "one_hot"
    given = bucketized("n", [1, 2, 3], boundaries=[2], output="index", missing="nan")
    assert given.transform.boundaries == [2.0] and given.missing.strategy == "nan"
    with pytest.raises(FeatureSpecError, match="strictly increasing"):
        bucketized("n", [1, 2, 3], boundaries=[2, 1])
    with pytest.raises(FeatureSpecError, match="constant"):
        bucketized("n", [5, 5, 5, 5])
    skewed = bucketized("n", [0] * 60 + list(range(1, 41)), n_buckets=4)  # quartiles 0, 0, 15.25
    assert skewed.transform.boundaries == [15.25]


def test_built_spec_round_trips_and_transforms_training_data(tmp_path):
    df = pd.DataFrame({"len": [4.9, 5.8, 7.1, np.nan], "device": ["m", "d", "m", None], "n": [1, 5, 9, 3],
                       "label": ["a", "b", "a", "b"]})
    spec = FeatureSpec.of(numeric("len", df["len"]), categorical("device", df["device"]),
                          bucketized("n", df["n"], n_buckets=2))
    again = load_spec(spec.save(tmp_path / "spec.json"))
    assert again == spec
    X = again.transform(df.drop(columns="label"))
    assert X.shape == (4, spec.width) == (4, 1 + 3 + 2)
    assert X[3, 0] == pytest.approx(0.0)  # filled with the mean -> standardized 0
    np.testing.assert_array_equal(X[:, 1:4], [[0, 1, 0], [1, 0, 0], [0, 1, 0], [0, 0, 1]])
