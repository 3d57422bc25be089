"""Normalizing a dataset's dtypes for validation (reading it: kit.tables)."""

from __future__ import annotations


def normalize(df, keep_text_as_object: set[str] | frozenset = frozenset()):
    """Dtypes GX validates quickly and correctly (measured in benchmarks/contracts.py):
    datetime64[us] (pandas 3's default) makes GX ~10x slower than [ns]; pandas 3's string
    dtype breaks type-list expectations; text becomes `category`, because GX calls isna()
    and per-value map() once per expectation and both are row-by-row on object arrays but
    work on codes and categories for a categorical (except columns a type expectation names:
    GX judges those by dtype, so they stay object); narrow and nullable numerics become 64-bit."""
    import numpy as np
    import pandas as pd

    converted = {}
    for name, dtype in df.dtypes.items():
        if isinstance(dtype, pd.DatetimeTZDtype):
            converted[name] = df[name].dt.tz_convert("UTC").dt.tz_localize(None).astype("datetime64[ns]")
        elif pd.api.types.is_datetime64_dtype(dtype) and dtype != np.dtype("datetime64[ns]"):
            converted[name] = df[name].astype("datetime64[ns]")
        elif pd.api.types.is_bool_dtype(dtype):
            continue
        elif pd.api.types.is_float_dtype(dtype) and dtype != np.float64:
            converted[name] = df[name].astype(np.float64)
        elif pd.api.types.is_integer_dtype(dtype) and dtype != np.int64:
            has_missing = isinstance(dtype, pd.api.extensions.ExtensionDtype) and df[name].isna().any()
            converted[name] = df[name].astype(np.float64 if has_missing else np.int64)
        elif _is_text(df[name]):
            if name in keep_text_as_object:  # GX's type expectations need object dtype for text
                if dtype != object:
                    converted[name] = df[name].astype(object).where(df[name].notna(), None)
            else:
                converted[name] = df[name].astype("category")
    return df.assign(**converted) if converted else df


def _is_text(series) -> bool:
    """String columns (pandas 3's `str`, or object columns holding only strings)."""
    import pandas as pd

    if isinstance(series.dtype, pd.CategoricalDtype):
        return False
    if pd.api.types.is_string_dtype(series.dtype) and series.dtype != object:
        return True
    return series.dtype == object and pd.api.types.infer_dtype(series, skipna=True) == "string"
