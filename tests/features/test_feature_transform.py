"""FeatureSpec.transform: every transform, missing strategy, OOV, range rejection, row errors."""

from __future__ import annotations

import math
from decimal import Decimal

import numpy as np
import pandas as pd
import pytest

from kit.errors import KitError
from kit.features import FeatureSpec, RowError
from kit.features.transform import js_number_string

NAN = float("nan")


def spec(*inputs):
    return FeatureSpec.from_dict({"format": "kit-feature-spec/1", "inputs": list(inputs)})


def num(name="x", transform=None, missing=None, range_=None):
    item = {"name": name, "kind": "numeric", "transform": transform or {"type": "identity"}}
    if missing is not None:
        item["missing"] = missing
    if range_ is not None:
        item["range"] = range_
    return item


def cat(name="c", values=("a", "b"), output="one_hot", missing=None):
    item = {"name": name, "kind": "categorical",
            "transform": {"type": "vocabulary", "values": list(values), "output": output}}
    if missing is not None:
        item["missing"] = missing
    return item


def column(s, values):
    """Transform a single-input spec over raw values of its field; absent where value is ... ."""
    name = s.inputs[0].name
    return s.transform([{} if v is ... else {name: v} for v in values])


# -- numeric transforms --------------------------------------------------------------------------

def test_identity_standardize_minmax():
    s = spec(num("a"), num("b", {"type": "standardize", "mean": 2, "std": 4}),
             num("c", {"type": "minmax", "min": -1, "max": 3}))
    out = s.transform([{"a": 1.5, "b": 10, "c": 0}, {"a": -2, "b": 2, "c": 3}])
    assert out.dtype == np.float64 and out.shape == (2, 3)
    np.testing.assert_array_equal(out, [[1.5, 2.0, 0.25], [-2.0, 0.0, 1.0]])


def test_bucketize_index_counts_boundaries_at_or_below():
    s = spec(num(transform={"type": "bucketize", "boundaries": [0, 10, 20], "output": "index"},
                 missing={"strategy": "nan"}))
    out = column(s, [-5, 0, 5, 10, 19.999, 20, 1e9, None])
    assert out.shape == (8, 1)
    np.testing.assert_array_equal(out[:7, 0], [0, 1, 1, 2, 2, 3, 3])
    assert math.isnan(out[7, 0])


def test_bucketize_one_hot_and_nan_is_all_zero():
    s = spec(num("age", {"type": "bucketize", "boundaries": [18, 65], "output": "one_hot"},
                 missing={"strategy": "nan"}))
    assert s.width == 3
    assert s.column_names == ["age[bucket=0]", "age[bucket=1]", "age[bucket=2]"]
    out = column(s, [10, 18, 70, NAN])
    np.testing.assert_array_equal(out, [[1, 0, 0], [0, 1, 0], [0, 0, 1], [0, 0, 0]])
    s = spec(num("age", {"type": "bucketize", "boundaries": [18, 65], "output": "index"}))
    assert s.column_names == ["age[bucket]"]


# -- numeric missing values ----------------------------------------------------------------------

MISSING = [..., None, NAN, "", np.nan, pd.NA]


def test_fill_replaces_every_kind_of_missing():
    s = spec(num(transform={"type": "standardize", "mean": 1, "std": 2}, missing={"strategy": "fill", "value": 5}))
    np.testing.assert_array_equal(column(s, MISSING)[:, 0], [2.0] * len(MISSING))


def test_nan_strategy_passes_nan_through_transforms():
    s = spec(num(transform={"type": "minmax", "min": 0, "max": 4}, missing={"strategy": "nan"}))
    out = column(s, [*MISSING, 2])
    assert np.isnan(out[:-1, 0]).all() and out[-1, 0] == 0.5


@pytest.mark.parametrize("value", MISSING, ids=repr)
def test_error_strategy_is_the_default(value):
    s = spec(num("x"))
    with pytest.raises(RowError) as caught:
        column(s, [1.0, value])
    assert (caught.value.field, caught.value.row) == ("x", 1)
    assert "missing" in str(caught.value) and "row 1" in str(caught.value)


# -- numeric values ------------------------------------------------------------------------------

def test_numeric_strings_and_number_types_are_accepted():
    s = spec(num())
    values = ["5.1", "-3", "+2", "1e3", ".5", "7.", 4, np.int64(3), np.float32(0.5), Decimal("2.5")]
    np.testing.assert_array_equal(column(s, values)[:, 0], [5.1, -3, 2, 1000, 0.5, 7, 4, 3, 0.5, 2.5])


@pytest.mark.parametrize("value", ["NaN", "nan", "inf", "Infinity", "abc", " 5", "0x10", "1_000", float("inf"),
                                   -np.inf, True, np.bool_(False), [1], {"a": 1}, "1e999"], ids=repr)
def test_non_numbers_and_infinities_are_row_errors(value):
    s = spec(num("x", missing={"strategy": "fill", "value": 0}))
    with pytest.raises(RowError) as caught:
        column(s, [1, 2, value])
    assert (caught.value.field, caught.value.row) == ("x", 2)
    assert isinstance(caught.value, KitError)


def test_range_is_checked_only_when_asked():
    s = spec(num("x", range_={"min": 0, "max": 10}, missing={"strategy": "fill", "value": 99}))
    rows = [{"x": 0}, {"x": 10}, {"x": 11}, {}]
    np.testing.assert_array_equal(s.transform(rows)[:, 0], [0, 10, 11, 99])
    with pytest.raises(RowError) as caught:
        s.transform(rows, reject_out_of_range=True)
    assert (caught.value.field, caught.value.row) == ("x", 2) and "out of range [0.0, 10.0]" in str(caught.value)
    with pytest.raises(RowError, match="row 0"):
        s.transform([{"x": -0.001}], reject_out_of_range=True)
    # a fill value is not a raw value: never range-checked
    np.testing.assert_array_equal(s.transform([{}], reject_out_of_range=True), [[99]])


# -- categorical ---------------------------------------------------------------------------------

def test_vocabulary_one_hot_with_oov_bucket():
    s = spec(cat("device", ["desktop", "mobile", "tablet"]))
    assert s.column_names == ["device=desktop", "device=mobile", "device=tablet", "device=<oov>"]
    out = column(s, ["mobile", "tv", ..., None, "", NAN, "desktop", "Mobile"])
    expected = [[0, 1, 0, 0], [0, 0, 0, 1], [0, 0, 0, 1], [0, 0, 0, 1], [0, 0, 0, 1], [0, 0, 0, 1],
                [1, 0, 0, 0], [0, 0, 0, 1]]
    np.testing.assert_array_equal(out, expected)


def test_vocabulary_index():
    s = spec(cat("c", ["a", "b", "c"], output="index"))
    np.testing.assert_array_equal(column(s, ["c", "a", "zzz", None])[:, 0], [2, 0, 3, 3])


def test_empty_vocabulary_is_all_oov():
    s = spec(cat("c", [], output="one_hot"))
    np.testing.assert_array_equal(column(s, ["a", None]), [[1], [1]])


def test_numbers_are_categories_in_their_shortest_form():
    s = spec(cat("zip", ["3", "2.5", "1e+21", "-7", "0"], output="index"))
    out = column(s, [3, 3.0, np.int64(3), 2.5, 1e21, -7, "3.0", -0.0, Decimal("3")])
    np.testing.assert_array_equal(out[:, 0], [0, 0, 0, 1, 2, 3, 5, 4, 0])


@pytest.mark.parametrize("x, text", [(3.0, "3"), (0.1, "0.1"), (-2.5, "-2.5"), (1e21, "1e+21"), (1e20, "100000000000000000000"),
                                     (1.5e-7, "1.5e-7"), (1e-6, "0.000001"), (123456.789, "123456.789"),
                                     (2**53, "9007199254740992"), (1.2345678901234567e25, "1.2345678901234566e+25"),
                                     (0.000123, "0.000123"), (5e-324, "5e-324"), (-0.0, "0"), (100.0, "100")])
def test_js_number_string_matches_javascript(x, text):
    assert js_number_string(x) == text


def test_categorical_missing_error_and_bad_types():
    s = spec(cat("c", missing={"strategy": "error"}))
    with pytest.raises(RowError) as caught:
        column(s, ["a", ""])
    assert (caught.value.field, caught.value.row) == ("c", 1)
    for value in [True, ["a"], float("inf")]:
        with pytest.raises(RowError, match="row 0, field 'c'"):
            column(spec(cat("c")), [value])


# -- rows ----------------------------------------------------------------------------------------

IRIS_LIKE = [num("len", {"type": "standardize", "mean": 5, "std": 2}, {"strategy": "fill", "value": 5}),
             cat("device", ["desktop", "mobile"]),
             num("n", {"type": "bucketize", "boundaries": [1, 2], "output": "index"}, {"strategy": "nan"})]


def test_dataframe_and_list_of_dicts_agree():
    s = spec(*IRIS_LIKE)
    df = pd.DataFrame({"len": [7.0, None, 3.0], "device": ["mobile", None, "tv"], "n": pd.array([1, None, 5], dtype="Int64")})
    rows = [{"len": 7.0, "device": "mobile", "n": 1}, {"device": None}, {"len": "3", "device": "tv", "n": 5}]
    expected = [[1, 0, 1, 0, 1], [0, 0, 0, 1, NAN], [-1, 0, 0, 1, 2]]
    np.testing.assert_array_equal(s.transform(df), expected)
    np.testing.assert_array_equal(s.transform(rows), expected)
    one = s.transform({"len": 7.0, "device": "mobile", "n": 1})
    np.testing.assert_array_equal(one, [expected[0]])


def test_dataframe_with_object_and_string_columns():
    s = spec(num("x", missing={"strategy": "nan"}), cat("c", ["1", "2"], output="index"))
    df = pd.DataFrame({"x": pd.Series(["1.5", None, 2], dtype=object), "c": pd.Series([1, 2, None], dtype="float64")})
    np.testing.assert_array_equal(s.transform(df), [[1.5, 0], [NAN, 1], [2, 2]])
    df = pd.DataFrame({"x": [1.0, 2.0], "c": pd.Series(["2", None], dtype="string")})
    np.testing.assert_array_equal(s.transform(df), [[1, 1], [2, 2]])


def test_dataframe_infinity_and_bool_columns_are_errors():
    s = spec(num("x"))
    with pytest.raises(RowError, match="row 1, field 'x'"):
        s.transform(pd.DataFrame({"x": [1.0, np.inf]}))
    with pytest.raises(RowError, match="boolean"):
        s.transform(pd.DataFrame({"x": [True, False]}))


def test_unknown_fields_are_errors_unless_ignored():
    s = spec(num("x"))
    with pytest.raises(RowError) as caught:
        s.transform([{"x": 1}, {"x": 1, "y": 2}])
    assert (caught.value.field, caught.value.row) == ("y", 1)
    df = pd.DataFrame({"x": [1.0], "label": ["a"]})
    with pytest.raises(RowError, match="'label'.*unknown='ignore'"):
        s.transform(df)
    np.testing.assert_array_equal(s.transform(df, unknown="ignore"), [[1.0]])
    np.testing.assert_array_equal(s.transform([{"x": 1, "y": 2}], unknown="ignore"), [[1.0]])


def test_the_first_bad_row_is_reported_with_a_count():
    s = spec(num("a", missing={"strategy": "nan"}), num("b", missing={"strategy": "nan"}))
    rows = [{"a": 1, "b": 1}, {"a": 1, "b": "x"}, {"a": "y", "b": 1}, {"a": "z", "b": 1}]
    with pytest.raises(RowError) as caught:
        s.transform(rows)
    assert (caught.value.field, caught.value.row) == ("b", 1)
    rows[1]["b"] = 2
    with pytest.raises(RowError, match=r"row 2, field 'a'.*\(2 rows have this problem\)"):
        s.transform(rows)


def test_malformed_rows():
    s = spec(num("x"))
    with pytest.raises(RowError, match="got str"):
        s.transform(["x"])
    with pytest.raises(RowError, match="got ndarray"):
        s.transform(np.zeros((2, 1)))
    assert s.transform([]).shape == (0, 1)
    assert s.transform(pd.DataFrame({"x": pd.Series([], dtype=float)})).shape == (0, 1)


def test_large_frame_is_vectorized():
    s = spec(*IRIS_LIKE)
    n = 200_000
    rng = np.random.default_rng(0)
    df = pd.DataFrame({"len": rng.normal(5, 2, n), "device": rng.choice(["desktop", "mobile", "tv"], n),
                       "n": rng.integers(0, 4, n)})
    out = s.transform(df)
    assert out.shape == (n, 5)
    np.testing.assert_allclose(out[:, 0], (df["len"] - 5) / 2)
    np.testing.assert_array_equal(out[:, 1:4].sum(axis=1), 1)


def test_duplicate_dataframe_columns_are_refused():
    s = spec(num("x"))
    df = pd.DataFrame([[1.0, 2.0]], columns=["x", "x"])
    with pytest.raises(RowError, match="'x' appears more than once"):
        s.transform(df)
