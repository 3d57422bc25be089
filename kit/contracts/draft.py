"""Draft a starting contract from a data sample, for a person to edit (GX 1.x has no profiler).

A sample is evidence about new data only as far as it goes: on a tiny or degenerate sample
the draft leaves expectations out or widens them, and says so (`meta.warnings` of the
contract, and the command's output). Every numeric bound says how it was chosen (`meta.bound`).
"""

from __future__ import annotations

import json
import math
from pathlib import Path

from kit.contracts.data import normalize
from kit.tables import read_table

MAX_CATEGORIES = 20
MIN_ROWS = 30  # below this, value sets and null rates say little about new data
# A bound goes this many times the sample's tail length (quartile -> extreme) past the extreme;
# chosen on 2000 seeds of "draft on 455 rows, check 114 fresh": 0 rejections for normal,
# exponential and lognormal data, 3 for Pareto(3) (tests/contracts/test_draft.py).
TAIL_FACTOR = 3.0
LOG_TAIL_FACTOR = 1.5  # the same, in log terms, for a skewed positive column
SKEWED = 1.0  # |skewness| above which a positive column's bounds are chosen on a log scale


def draft(data_path: Path, name: str | None = None, margin: float = 0.1) -> dict:
    """Columns and types, null rates, robust numeric ranges, small category sets."""
    import numpy as np
    import pandas as pd

    df = normalize(read_table(Path(data_path)))
    rows = len(df)
    warnings: list[str] = []
    expectations = [{"type": "expect_table_columns_to_match_set", "kwargs": {"column_set": list(map(str, df.columns))}},
                    {"type": "expect_table_row_count_to_be_between", "kwargs": {"min_value": 1}}]
    if rows == 0:
        warnings.append("the sample has no rows (a header only): drafted the column names and 'at least 1 row' "
                        "(which this sample itself fails) alone; left out every type, null, range and value-set "
                        "expectation")
        return _contract(data_path, name, expectations, rows, warnings)
    tiny = rows < MIN_ROWS
    if tiny:
        warnings.append(f"the sample has only {rows} rows (fewer than {MIN_ROWS}): left out value sets, and drafted "
                        "null checks and ranges that new data may well break; draft again from a larger sample")

    for column in df.columns:
        series = df[column]
        label = f"column {column!r}"
        if not str(column):  # GX refuses an expectation on a column with an empty name
            warnings.append(f"{label} has an empty name, which Great Expectations cannot check: left out its "
                            "expectations (give the column a name)")
            continue
        null_rate = float(series.isna().mean())
        values = series.dropna()
        if values.empty:
            warnings.append(f"{label} is empty (all {rows} values missing): left out its type, null, range and "
                            "value-set expectations")
            continue
        if not isinstance(series.dtype, pd.CategoricalDtype):  # a text column's type is its value set
            expectations.append({"type": "expect_column_values_to_be_of_type",
                                 "kwargs": {"column": column, "type_": str(series.dtype)}})
        if null_rate == 0:
            expectations.append({"type": "expect_column_values_to_not_be_null", "kwargs": {"column": column}})
        else:
            mostly = max(0.0, round(1 - null_rate - margin * max(null_rate, 0.01), 4))
            expectations.append({"type": "expect_column_values_to_not_be_null", "kwargs": {"column": column, "mostly": mostly},
                                 "meta": {"notes": f"{null_rate:.2%} missing in the sample"}})
        distinct = values.nunique()
        is_set = pd.api.types.is_bool_dtype(series) or (
            distinct <= MAX_CATEGORIES and not pd.api.types.is_float_dtype(series)
            and not pd.api.types.is_datetime64_any_dtype(series))
        if distinct == 1:
            warnings.append(f"{label} has one distinct value ({_plain(values.iloc[0])!r}) in the sample: left out "
                            "its value-set / range expectation (a constant in a sample says little about new data)")
        elif is_set:
            if tiny:
                warnings.append(f"{label}: left out its value set ({distinct} values seen in {rows} rows)")
            else:
                expectations.append({"type": "expect_column_values_to_be_in_set",
                                     "kwargs": {"column": column,
                                                "value_set": sorted(map(_plain, values.unique()), key=str)}})
        elif pd.api.types.is_numeric_dtype(series):
            numbers = values.to_numpy(dtype="float64")
            if not np.isfinite(numbers).all():  # a bound cannot admit inf, and GX would fail the sample itself
                warnings.append(f"{label} holds infinite values: left out its range")
                continue
            low, high, how = numeric_bounds(numbers)
            finite = [b for b in (low, high) if b is not None]
            kwargs = {"column": column, "min_value": low, "max_value": high}
            if not finite:
                warnings.append(f"{label}: left out its range ({how})")
                continue
            expectations.append({"type": "expect_column_values_to_be_between", "kwargs": kwargs, "meta": {"bound": how}})
        elif pd.api.types.is_datetime64_any_dtype(series):
            expectations.append({"type": "expect_column_values_to_be_between",
                                 "kwargs": {"column": column, "min_value": str(values.min()), "max_value": str(values.max())},
                                 "meta": {"bound": "the sample's time span; widen it for newer data"}})
    return _contract(data_path, name, expectations, rows, warnings)


def numeric_bounds(x) -> tuple[float | None, float | None, str]:
    """Bounds for new values of a column, from its sample, and how they were chosen.

    The sample's extremes underestimate the population's (a fresh batch of 114 rows beats
    the maximum of 455 one time in five), and by how much depends on the tail. So each bound
    goes past the sample's extreme by TAIL_FACTOR times the tail length (quartile to extreme),
    measured on a log scale for a strongly right-skewed positive column (lognormal-like data),
    and kept at 0 (and 1) when the sample reaches 0 (and 1) but never goes past."""
    import numpy as np

    x = x[np.isfinite(x)]
    if x.size == 0:
        return None, None, "no finite values in the sample"
    q1, median, q3 = (float(v) for v in np.quantile(x, [0.25, 0.5, 0.75]))
    lo, hi = float(x.min()), float(x.max())
    skew = _skewness(x)
    if lo > 0 and skew > SKEWED:
        logs = np.log(x)
        l1, l3 = (float(v) for v in np.quantile(logs, [0.25, 0.75]))
        low = math.exp(math.log(lo) - LOG_TAIL_FACTOR * (l1 - math.log(lo)))
        high = math.exp(math.log(hi) + LOG_TAIL_FACTOR * (math.log(hi) - l3))
        how = (f"log scale (skewness {skew:.2g}): each bound {LOG_TAIL_FACTOR:g}x the sample's tail (quartile to "
               f"extreme, in log terms) beyond its extreme; sample {_round(lo)}..{_round(hi)}, median {_round(median)}")
    else:
        spread = max(hi - lo, 1e-12)
        low = lo - max(TAIL_FACTOR * (q1 - lo), 0.1 * spread)
        high = hi + max(TAIL_FACTOR * (hi - q3), 0.1 * spread)
        how = (f"each bound {TAIL_FACTOR:g}x the sample's tail (quartile to extreme) beyond its extreme; sample "
               f"{_round(lo)}..{_round(hi)}, median {_round(median)}")
    clamps = []
    if lo == 0 and low < 0:  # counts, amounts, indicators: 0 is a floor, not a sample extreme
        low = 0.0
        clamps.append("min kept at 0: the sample reaches 0 and never goes below")
    if lo >= 0 and hi == 1 and high > 1:
        high = 1.0
        clamps.append("max kept at 1: the sample is a fraction that reaches 1")
    return _outward(low, math.floor), _outward(high, math.ceil), "; ".join([how, *clamps])


def _skewness(x) -> float:
    import numpy as np

    spread = float(np.std(x))
    return 0.0 if spread == 0 else float(np.mean(((x - np.mean(x)) / spread) ** 3))


def _contract(data_path, name, expectations: list, rows: int, warnings: list[str]) -> dict:
    meta = {"drafted_from": str(data_path), "rows_in_sample": rows,
            "notes": "A draft: review every expectation before relying on it."}
    if warnings:
        meta["warnings"] = warnings
    return {"name": name or Path(data_path).stem, "expectations": expectations, "meta": meta}


def write_draft(data_path: Path, out: Path, name: str | None = None) -> dict:
    contract = draft(data_path, name or out.stem)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(contract, indent=2) + "\n", encoding="utf-8")
    return contract


def _plain(value):
    return value.item() if hasattr(value, "item") else value


def _round(value: float) -> float:
    return float(f"{value:.6g}")


def _outward(value: float, direction) -> float:
    """Six significant digits, rounded away from the data (floor for a minimum, ceil for a maximum)."""
    if value == 0 or not math.isfinite(value):
        return value
    scale = 10 ** (math.floor(math.log10(abs(value))) - 5)
    return float(f"{direction(value / scale) * scale:.6g}")
