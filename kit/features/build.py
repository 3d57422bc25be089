"""Building spec inputs from training data (in a features notebook).

    from kit.features import FeatureSpec, bucketized, categorical, numeric
    spec = FeatureSpec.of(
        numeric("sepal_length", train["sepal_length"]),                 # standardize, fill = mean
        numeric("age", train["age"], transform="minmax", range_margin=0.1),
        bucketized("income", train["income"], n_buckets=4),            # quartile boundaries
        categorical("device", train["device"], max_categories=20),
    )
    spec.save(feature_spec_path)

Values are read with the same rules as `FeatureSpec.transform` (missing = None/NaN/"";
junk is an error naming the input and row).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from typing import Any, Literal

import numpy as np
from pydantic import ValidationError

from kit.features.spec import (
    CategoricalInput,
    FeatureSpecError,
    NumericInput,
    Vocabulary,
)
from kit.features.transform import _Bad, _is_series, category_text, parse_number


def _objects(values: Any) -> Sequence[Any]:
    if _is_series(values):
        return values.to_numpy(dtype=object)
    if isinstance(values, np.ndarray):
        return values.astype(object).ravel()
    if isinstance(values, (str, bytes)) or not isinstance(values, Iterable):
        raise FeatureSpecError(f"training values must be a pandas Series, a numpy array or a list, got {type(values).__name__}")
    return list(values)


def _distinct(values: Any):
    """(first row, value, count) per distinct value for a typed pandas column (one kind of value,
    so no bool/int mixing can merge), else (row, value, 1) per row: the same counts either way."""
    if _is_series(values):
        from pandas.api.types import is_bool_dtype

        if values.dtype != object and not is_bool_dtype(values.dtype):
            import pandas as pd

            codes, uniques = pd.factorize(values, use_na_sentinel=True)
            tally = np.bincount(codes[codes >= 0], minlength=len(uniques))
            firsts = np.full(len(uniques), -1, dtype=np.int64)
            seen = codes >= 0
            firsts[codes[seen][::-1]] = np.flatnonzero(seen)[::-1]  # the first row of each value
            return [(int(firsts[j]), uniques[j], int(tally[j])) for j in range(len(uniques))]
    return [(i, v, 1) for i, v in enumerate(_objects(values))]


def _numbers(name: str, values: Any) -> np.ndarray:
    """Finite training values (missing ones dropped)."""
    if _is_series(values):
        from pandas.api.types import is_bool_dtype, is_numeric_dtype

        if is_numeric_dtype(values.dtype) and not is_bool_dtype(values.dtype) and values.dtype.kind != "c":
            x = values.to_numpy(dtype="float64", na_value=np.nan)  # parse_number's rules, vectorized
            infinite = np.flatnonzero(np.isinf(x))
            if len(infinite):
                i = int(infinite[0])
                raise FeatureSpecError(f"input {name!r}: training value at row {i}: {x[i]} is not a finite number; "
                                       "send a finite number (or nothing, if the value is missing)")
            x = x[~np.isnan(x)]
            if not len(x):
                raise FeatureSpecError(f"input {name!r}: no non-missing training values; check the column name and the data")
            return x
    out = []
    for i, v in enumerate(_objects(values)):
        try:
            x = parse_number(v)
        except _Bad as bad:
            raise FeatureSpecError(f"input {name!r}: training value at row {i}: {bad}") from None
        if x is not None:
            out.append(x)
    if not out:
        raise FeatureSpecError(f"input {name!r}: no non-missing training values; check the column name and the data")
    return np.asarray(out, dtype=np.float64)


def _missing(name: str, strategy: str, x: np.ndarray) -> dict[str, Any]:
    if strategy == "fill":
        return {"strategy": "fill", "value": float(x.mean())}
    if strategy in ("nan", "error"):
        return {"strategy": strategy}
    raise FeatureSpecError(f"input {name!r}: missing={strategy!r}; use 'fill', 'nan' or 'error'")


def _range(x: np.ndarray, margin: float) -> dict[str, float]:
    lo, hi = float(x.min()), float(x.max())
    pad = margin * (hi - lo)
    return {"min": lo - pad, "max": hi + pad}


def numeric(name: str, series: Any, transform: Literal["standardize", "minmax", "identity"] = "standardize",
            missing: Literal["fill", "nan", "error"] = "fill", range_margin: float = 0.0) -> NumericInput:
    """A numeric input from training values: mean/std (population, ddof=0) or min/max; fill = mean;
    range = training [min, max] widened by `range_margin * (max - min)` on each side."""
    x = _numbers(name, series)
    if transform == "standardize":
        std = float(x.std())
        if not std > 0:
            raise FeatureSpecError(f"input {name!r}: every training value is {x[0]}, so std is 0;"
                                   " use transform='identity' or drop the input")
        spec_transform: dict[str, Any] = {"type": "standardize", "mean": float(x.mean()), "std": std}
    elif transform == "minmax":
        if not x.max() > x.min():
            raise FeatureSpecError(f"input {name!r}: every training value is {x[0]}, so min == max;"
                                   " use transform='identity' or drop the input")
        spec_transform = {"type": "minmax", "min": float(x.min()), "max": float(x.max())}
    elif transform == "identity":
        spec_transform = {"type": "identity"}
    else:
        raise FeatureSpecError(f"input {name!r}: transform={transform!r}; use 'standardize', 'minmax' or 'identity'")
    return _numeric_input(name, _missing(name, missing, x), _range(x, range_margin), spec_transform)


def bucketized(name: str, series: Any, boundaries: Sequence[float] | None = None, *, n_buckets: int = 4,
               output: Literal["one_hot", "index"] = "one_hot", missing: Literal["fill", "nan", "error"] = "fill",
               range_margin: float = 0.0) -> NumericInput:
    """A bucketized numeric input: given `boundaries`, or the training quantiles that cut it into
    `n_buckets` (duplicates dropped, so a skewed column may get fewer buckets)."""
    x = _numbers(name, series)
    if boundaries is None:
        if n_buckets < 2:
            raise FeatureSpecError(f"input {name!r}: n_buckets={n_buckets}; use 2 or more")
        cuts = np.unique(np.quantile(x, [i / n_buckets for i in range(1, n_buckets)]))
        boundaries = [float(b) for b in cuts if b > x.min()] or []
        if not boundaries:
            raise FeatureSpecError(f"input {name!r}: the training values are (almost) constant, so no bucket"
                                   " boundaries can be drawn from quantiles; pass boundaries=[...] yourself")
    if output not in ("one_hot", "index"):
        raise FeatureSpecError(f"input {name!r}: output={output!r}; use 'one_hot' or 'index'")
    spec_transform = {"type": "bucketize", "boundaries": [float(b) for b in boundaries], "output": output}
    return _numeric_input(name, _missing(name, missing, x), _range(x, range_margin), spec_transform)


def categorical(name: str, series: Any, output: Literal["one_hot", "index"] = "one_hot",
                max_categories: int | None = None, missing: Literal["oov", "error"] = "oov") -> CategoricalInput:
    """A categorical input: vocabulary = the sorted distinct non-missing values (numbers written as
    at the edge, e.g. 3 -> "3"); with `max_categories`, the most frequent ones (ties by value),
    most frequent first. Everything else maps to the OOV bucket."""
    counts: Counter[str] = Counter()
    for i, v, times in _distinct(series):
        try:
            text = category_text(v)
        except _Bad as bad:
            raise FeatureSpecError(f"input {name!r}: training value at row {i}: {bad}") from None
        if text is not None:
            counts[text] += times
    if max_categories is not None and max_categories < len(counts):
        if max_categories < 1:
            raise FeatureSpecError(f"input {name!r}: max_categories={max_categories}; use 1 or more (or None)")
        values = [v for v, _ in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[:max_categories]]
    else:
        values = sorted(counts)
    if output not in ("one_hot", "index"):
        raise FeatureSpecError(f"input {name!r}: output={output!r}; use 'one_hot' or 'index'")
    if missing not in ("oov", "error"):
        raise FeatureSpecError(f"input {name!r}: missing={missing!r}; use 'oov' or 'error'")
    return CategoricalInput(name=name, kind="categorical", missing={"strategy": missing},  # type: ignore[arg-type]
                            transform=Vocabulary(type="vocabulary", values=values, output=output))


def _numeric_input(name: str, missing: dict, range_: dict, transform: dict) -> NumericInput:
    try:
        return NumericInput.model_validate({"name": name, "kind": "numeric", "missing": missing,
                                            "range": range_, "transform": transform})
    except ValidationError as exc:  # e.g. boundaries given by hand that are not increasing
        problems = "; ".join(e["msg"].removeprefix("Value error, ") for e in exc.errors(include_url=False))
        raise FeatureSpecError(f"input {name!r}: {problems}") from None
