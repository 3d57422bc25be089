"""Draft a starting contract from a data sample, for a person to edit (GX 1.x has no profiler)."""

from __future__ import annotations

import json
from pathlib import Path

from kit.contracts.data import normalize
from kit.tables import read_table

MAX_CATEGORIES = 20


def draft(data_path: Path, name: str | None = None, margin: float = 0.1) -> dict:
    """Columns and types, null rates, numeric ranges widened by `margin`, small category sets."""
    import pandas as pd

    df = normalize(read_table(Path(data_path)))
    expectations = [{"type": "expect_table_columns_to_match_set", "kwargs": {"column_set": list(map(str, df.columns))}},
                    {"type": "expect_table_row_count_to_be_between", "kwargs": {"min_value": 1}}]
    for column in df.columns:
        series = df[column]
        if not isinstance(series.dtype, pd.CategoricalDtype):  # a text column's type is its value set
            expectations.append({"type": "expect_column_values_to_be_of_type",
                                 "kwargs": {"column": column, "type_": str(series.dtype)}})
        null_rate = float(series.isna().mean())
        if null_rate == 0:
            expectations.append({"type": "expect_column_values_to_not_be_null", "kwargs": {"column": column}})
        elif null_rate < 1:
            mostly = max(0.0, round(1 - null_rate - margin * max(null_rate, 0.01), 4))
            expectations.append({"type": "expect_column_values_to_not_be_null", "kwargs": {"column": column, "mostly": mostly},
                                 "meta": {"notes": f"{null_rate:.2%} missing in the sample"}})
        values = series.dropna()
        if values.empty:
            continue
        distinct = values.nunique()
        if pd.api.types.is_bool_dtype(series) or (distinct <= MAX_CATEGORIES and not pd.api.types.is_float_dtype(series)
                                                   and not pd.api.types.is_datetime64_any_dtype(series)):
            expectations.append({"type": "expect_column_values_to_be_in_set",
                                 "kwargs": {"column": column, "value_set": sorted(map(_plain, values.unique()), key=str)}})
        elif pd.api.types.is_numeric_dtype(series):
            low, high = float(values.min()), float(values.max())
            pad = (high - low) * margin
            expectations.append({"type": "expect_column_values_to_be_between",
                                 "kwargs": {"column": column, "min_value": _round(low - pad), "max_value": _round(high + pad)}})
        elif pd.api.types.is_datetime64_any_dtype(series):
            expectations.append({"type": "expect_column_values_to_be_between",
                                 "kwargs": {"column": column, "min_value": str(values.min()), "max_value": str(values.max())},
                                 "meta": {"notes": "the sample's time span; widen it for newer data"}})
    return {"name": name or Path(data_path).stem, "expectations": expectations,
            "meta": {"drafted_from": str(data_path), "rows_in_sample": len(df),
                     "notes": "A draft: review every expectation before relying on it."}}


def write_draft(data_path: Path, out: Path, name: str | None = None) -> dict:
    contract = draft(data_path, name or out.stem)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(contract, indent=2) + "\n", encoding="utf-8")
    return contract


def _plain(value):
    return value.item() if hasattr(value, "item") else value


def _round(value: float) -> float:
    return float(f"{value:.6g}")
