"""Reading a dataset (CSV or Parquet) and normalizing its dtypes for validation."""

from __future__ import annotations

import hashlib
from pathlib import Path

from kit.errors import SpecError

READERS = {".csv": "read_csv", ".parquet": "read_parquet", ".pq": "read_parquet"}


def read_table(path: Path):
    import pandas as pd

    path = Path(path)
    reader = READERS.get(path.suffix.lower())
    if reader is None:
        raise SpecError(f"{path}: cannot read {path.suffix or 'a file without extension'} as a table; "
                        f"use one of {', '.join(READERS)}")
    if not path.is_file():
        raise SpecError(f"{path}: no such data file")
    try:
        return getattr(pd, reader)(path)
    except UnicodeDecodeError as exc:
        raise SpecError(f"{path}: not UTF-8 text (byte {exc.start}: {exc.object[exc.start:exc.start + 1]!r}); "
                        "save the file as UTF-8") from None
    except Exception as exc:  # pandas/pyarrow raise many types for a corrupt file
        raise SpecError(f"{path}: cannot read as {path.suffix[1:]}: {type(exc).__name__}: {exc}") from None


def normalize(df, keep_text_as_object: set[str] | frozenset = frozenset()):
    """Dtypes GX validates quickly and correctly (measured, DESIGN.md and benchmarks/contracts.py):
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


def file_sha256(path: Path) -> str:
    with open(path, "rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()
