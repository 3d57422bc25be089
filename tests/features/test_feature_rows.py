"""request_rows: DataFrame rows as the JSON rows a client sends (edge bridge, cloud scoring);
request_columns: the same values by column, for scoring many rows at once."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd

from kit.features.rows import request_columns, request_rows


def test_rows_are_plain_json_with_missing_values_left_out():
    frame = pd.DataFrame({
        "age": np.array([31, 40, 22], dtype=np.int32),
        "score": np.array([0.5, np.nan, 2.25], dtype=np.float32),
        "device": pd.array(["ios", None, "web"], dtype="string"),
        "clicks": pd.array([1, None, 3], dtype="Int64"),
        "seen": pd.to_datetime(["2026-01-01", None, "2026-01-03"]),
        "member": np.array([True, False, True]),
        "label": [1, 0, 1],
    })
    rows = request_rows(frame, ["age", "score", "device", "clicks", "seen", "member"])
    assert rows == [
        {"age": 31, "score": 0.5, "device": "ios", "clicks": 1, "seen": "2026-01-01 00:00:00", "member": True},
        {"age": 40, "member": False},
        {"age": 22, "score": 2.25, "device": "web", "clicks": 3, "seen": "2026-01-03 00:00:00", "member": True},
    ]
    assert [type(v) for v in rows[0].values()] == [int, float, str, int, str, bool]
    assert json.loads(json.dumps(rows, allow_nan=False)) == rows  # strict JSON, no NaN


def test_only_the_named_columns_in_their_order_or_every_column():
    frame = pd.DataFrame({"b": [1.0, None], "a": ["x", "y"], "label": [0, 1]})
    assert request_rows(frame, ["a", "b"]) == [{"a": "x", "b": 1.0}, {"a": "y"}]
    assert list(request_rows(frame, ["a", "b"])[0]) == ["a", "b"]
    assert request_rows(frame) == [{"b": 1.0, "a": "x", "label": 0}, {"a": "y", "label": 1}]
    assert request_rows(frame.head(0), ["a"]) == []


def decoded(encoded: dict) -> list[dict]:
    """request_columns' document read back as the edge bridge reads it (NaN / -1 / None: missing)."""
    import base64

    columns = {}
    for name, column in encoded.items():
        if isinstance(column, list):
            columns[name] = column
        elif "float64" in column:
            values = np.frombuffer(base64.b64decode(column["float64"]), dtype="<f8")
            columns[name] = [None if np.isnan(v) else float(v) for v in values]
        else:
            codes = np.frombuffer(base64.b64decode(column["codes"]), dtype="<i4")
            columns[name] = [None if c < 0 else column["categories"][c] for c in codes]
    n = len(next(iter(columns.values())))
    return [{k: v[i] for k, v in columns.items() if v[i] is not None} for i in range(n)]


def test_columns_carry_exactly_the_values_rows_carry():
    frame = pd.DataFrame({
        "age": np.array([31, 40, 22], dtype=np.int8),
        "score": np.array([0.533, np.nan, 1 / 3], dtype=np.float32),  # float32 bit for bit
        "device": pd.Categorical(["ios", None, "web"]),
        "city": pd.array(["x", None, "z"], dtype="string"),
        "clicks": pd.array([1, None, 3], dtype="Int64"),
        "user": np.array([2**60 + 1, 5, 7], dtype=np.int64),  # beyond float64's exact integers
        "seen": pd.to_datetime(["2026-01-01", None, "2026-01-03"]),
        "member": np.array([True, False, True]),
    })
    columns = list(frame.columns)
    encoded = request_columns(frame, columns)
    assert decoded(encoded) == request_rows(frame, columns)
    assert "float64" in encoded["score"] and "codes" in encoded["device"]
    assert isinstance(encoded["user"], list) and encoded["user"][0] == 2**60 + 1  # sent as JSON, exactly
    assert json.loads(json.dumps(encoded, allow_nan=False)) == encoded
