"""Applying a feature spec to raw rows: the Python twin of the runtime's `features.js`.

Semantics (FORMAT.md), and how Python values map onto the JSON values a request carries:

- missing = field absent, None, "" — and NaN / pd.NA / NaT, which is how pandas writes a null
  (JSON has no NaN, so a Python NaN can only stand for a JSON null). The *string* "NaN" and
  explicit ±inf are errors, as at the edge.
- numeric: ints, floats, numpy numbers, Decimal, or a decimal string matching `NUMBER_TEXT`
  ("5.1", "-3", "1e3"; no spaces, no "0x", no "Infinity"). Booleans are not numbers.
- categorical: a str; a number becomes its shortest decimal form exactly as JavaScript's
  `String(x)` writes it (3 and 3.0 -> "3", 1e21 -> "1e+21", 1e-7 -> "1e-7").
- ranges are checked on the raw value (not on a fill value), inclusive, only when asked.
- bucket i = number of boundaries <= x (numpy `searchsorted(..., side="right")`).
"""

from __future__ import annotations

import decimal
import math
import numbers
import re
import sys
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from kit.errors import LibraryError

if TYPE_CHECKING:  # only for annotations: kit.features.spec imports this module
    from kit.features.spec import CategoricalInput, FeatureSpec, NumericInput

NUMBER_TEXT = re.compile(r"[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?")


class RowError(LibraryError):
    """A raw row does not fit the feature spec (the edge would answer HTTP 400 for it).

    `field` is the offending field (None when the row itself is malformed), `row` its 0-based
    position in the rows given (None when the problem is a whole DataFrame column).
    """

    def __init__(self, field: str | None, message: str, row: int | None = None):
        self.field = field
        self.row = row
        self.reason = message
        where = []
        if row is not None:
            where.append(f"row {row}")
        if field is not None:
            where.append(f"field {field!r}")
        super().__init__(f"{', '.join(where)}: {message}" if where else message)


class _Bad(Exception):
    """One value is not acceptable; the message says why."""


def _is_null_object(v: Any) -> bool:
    # pd.NA and pd.NaT without importing pandas
    return type(v).__name__ in ("NAType", "NaTType")


def parse_number(v: Any) -> float | None:
    """A raw numeric value -> float, or None when missing. Raises _Bad for anything else."""
    if v is None:
        return None
    if isinstance(v, str):
        if v == "":
            return None
        if NUMBER_TEXT.fullmatch(v):
            x = float(v)
            if math.isinf(x):
                raise _Bad(f"{v!r} is too large for a double; send a finite number")
            return x
        raise _Bad(f"{_short(v)} is not a number; send a number such as 5.1")
    if isinstance(v, (bool, np.bool_)):
        raise _Bad(f"{v!r} is a boolean, not a number; send a number")
    if isinstance(v, (numbers.Real, decimal.Decimal)):
        try:
            x = float(v)
        except OverflowError:
            raise _Bad(f"{_short(v)} is too large for a double; send a finite number") from None
        if math.isnan(x):
            return None
        if math.isinf(x):
            raise _Bad(f"{x} is not a finite number; send a finite number (or nothing, if the value is missing)")
        return x
    if _is_null_object(v):
        return None
    raise _Bad(f"a {type(v).__name__} ({_short(v)}) is not a number; send a number")


def category_text(v: Any) -> str | None:
    """A raw categorical value -> its string, or None when missing. Raises _Bad for anything else."""
    if v is None:
        return None
    if isinstance(v, str):
        return None if v == "" else str(v)
    if isinstance(v, (bool, np.bool_)):
        raise _Bad(f"{v!r} is a boolean; send a string (or a number)")
    if isinstance(v, (numbers.Real, decimal.Decimal)):
        try:
            x = float(v)
        except OverflowError:
            raise _Bad(f"{_short(v)} is too large for a double; send it as a string") from None
        if math.isnan(x):
            return None
        if math.isinf(x):
            raise _Bad(f"{x} is not a finite number; send a string")
        return js_number_string(x)
    if _is_null_object(v):
        return None
    raise _Bad(f"a {type(v).__name__} ({_short(v)}) is not a string; send a string")


def js_number_string(x: float) -> str:
    """`String(x)` of JavaScript (ECMAScript Number::toString) for a finite double."""
    x = float(x)
    if x == 0:
        return "0"
    sign = "-" if x < 0 else ""
    mantissa, _, exp = repr(abs(x)).partition("e")  # repr gives the shortest round-trip digits
    whole, _, frac = mantissa.partition(".")
    digits = whole + frac
    n = len(whole) + (int(exp) if exp else 0)  # value = 0.digits * 10**n
    stripped = digits.lstrip("0")
    n -= len(digits) - len(stripped)
    digits = stripped.rstrip("0")
    k = len(digits)
    if k <= n <= 21:
        return sign + digits + "0" * (n - k)
    if 0 < n <= 21:
        return sign + digits[:n] + "." + digits[n:]
    if -6 < n <= 0:
        return sign + "0." + "0" * (-n) + digits
    e = n - 1
    return sign + digits[0] + ("." + digits[1:] if k > 1 else "") + "e" + ("+" if e >= 0 else "-") + str(abs(e))


def _short(v: Any) -> str:
    text = repr(v)
    return text if len(text) <= 40 else text[:37] + "..."


# -- row sources -------------------------------------------------------------------------------

def _is_dataframe(rows: Any) -> bool:
    pd = sys.modules.get("pandas")
    return pd is not None and isinstance(rows, pd.DataFrame)


def _is_series(values: Any) -> bool:
    pd = sys.modules.get("pandas")
    return pd is not None and isinstance(values, pd.Series)


class _Rows:
    """Uniform column access over a DataFrame or a list of dicts."""

    def __init__(self, rows: Any, names: list[str], unknown: str):
        self.frame = None
        self.records: list[Mapping] = []
        self.errors: list[tuple[int, int, RowError]] = []
        if _is_dataframe(rows):
            self.frame = rows
            self.n = len(rows)
            doubled = sorted({str(c) for c in rows.columns[rows.columns.duplicated()] if c in names})
            if doubled:
                raise RowError(doubled[0], f"column {doubled[0]!r} appears more than once in the DataFrame; keep one")
            if unknown == "error":
                known = set(names)
                extra = [c for c in rows.columns if c not in known]
                if extra:
                    raise RowError(str(extra[0]), f"column {extra[0]!r} is not in the feature spec (inputs: {names});"
                                   " drop it (e.g. the label column) or pass unknown='ignore'")
            return
        if isinstance(rows, Mapping):
            rows = [rows]
        if not isinstance(rows, Sequence) or isinstance(rows, (str, bytes)):
            raise RowError(None, f"rows must be a pandas DataFrame, a list of dicts or one dict, got {type(rows).__name__}")
        known = set(names)
        for i, row in enumerate(rows):
            if not isinstance(row, Mapping):
                raise RowError(None, f"a row must be a dict of field -> raw value, got {type(row).__name__}", row=i)
            if unknown == "error":
                for key in row:
                    if key not in known:
                        self.errors.append((i, -1, RowError(str(key), f"unknown field; the spec's inputs are {names}"
                                                            " (remove it, or pass unknown='ignore')", row=i)))
                        break
        self.records = list(rows)
        self.n = len(self.records)

    def objects(self, name: str) -> np.ndarray:
        """The raw values of one field as an object array (None where absent)."""
        if self.frame is not None:
            if name not in self.frame.columns:
                return np.full(self.n, None, dtype=object)
            return self.frame[name].to_numpy(dtype=object)
        return np.fromiter((r.get(name) for r in self.records), dtype=object, count=self.n)

    def typed_column(self, name: str):
        """A DataFrame column whose dtype guarantees one kind of value (not object, not bool):
        its distinct values can then be judged once each instead of once per row."""
        if self.frame is None or name not in self.frame.columns:
            return None
        from pandas.api.types import is_bool_dtype

        column = self.frame[name]
        return None if column.dtype == object or is_bool_dtype(column.dtype) else column

    def floats(self, name: str) -> np.ndarray | None:
        """Fast path: a numeric (non-bool) DataFrame column as float64 with NaN for nulls."""
        if self.frame is None or name not in self.frame.columns:
            return None
        from pandas.api.types import is_bool_dtype, is_numeric_dtype

        column = self.frame[name]
        if is_numeric_dtype(column.dtype) and not is_bool_dtype(column.dtype) and column.dtype.kind != "c":
            return column.to_numpy(dtype="float64", na_value=np.nan)
        return None


# -- the transform -----------------------------------------------------------------------------

class _ColumnError(Exception):
    def __init__(self, row: int, message: str, count: int):
        self.row, self.message, self.count = row, message, count


def _first(mask: np.ndarray) -> tuple[int, int]:
    bad = np.flatnonzero(mask)
    return int(bad[0]), len(bad)


def _counted(message: str, count: int) -> str:
    return message if count == 1 else f"{message} ({count} rows have this problem)"


def numeric_values(values: np.ndarray | None, objects: np.ndarray | None) -> np.ndarray:
    """Raw values -> float64 with NaN for missing; raises _ColumnError for the first bad value."""
    if values is not None:
        inf = np.isinf(values)
        if inf.any():
            row, count = _first(inf)
            raise _ColumnError(row, _counted(f"{values[row]} is not a finite number; send a finite number", count), count)
        return values
    out = np.empty(len(objects), dtype=np.float64)
    first: tuple[int, str] | None = None
    count = 0
    for i, v in enumerate(objects):
        try:
            x = parse_number(v)
        except _Bad as bad:
            count += 1
            if first is None:
                first = (i, str(bad))
            continue
        out[i] = np.nan if x is None else x
    if first is not None:
        raise _ColumnError(first[0], _counted(first[1], count), count)
    return out


def _numeric(item: NumericInput, rows: _Rows, reject_out_of_range: bool) -> np.ndarray:
    floats = rows.floats(item.name)
    x = numeric_values(floats, rows.objects(item.name) if floats is None else None)
    x = np.array(x, dtype=np.float64, copy=True)
    missing = np.isnan(x)
    problems: list[_ColumnError] = []
    if reject_out_of_range and item.range is not None:
        out = ~missing & ((x < item.range.min) | (x > item.range.max))
        if out.any():
            row, count = _first(out)
            problems.append(_ColumnError(row, _counted(f"{x[row]} is out of range [{item.range.min}, {item.range.max}]"
                                                       " (the edge rejects it too when rejectOutOfRange is on)", count),
                                         count))
    if missing.any():
        if item.missing.strategy == "fill":
            x[missing] = item.missing.value
        elif item.missing.strategy != "nan":
            row, count = _first(missing)
            problems.append(_ColumnError(row, _counted("missing value; send a number (this input's missing strategy"
                                                       " is 'error')", count), count))
    if problems:
        raise min(problems, key=lambda p: p.row)
    t = item.transform
    if t.type == "standardize":
        return ((x - t.mean) / t.std)[:, None]
    if t.type == "minmax":
        return ((x - t.min) / (t.max - t.min))[:, None]
    if t.type == "bucketize":
        nan = np.isnan(x)
        index = np.searchsorted(np.asarray(t.boundaries, dtype=np.float64), x, side="right")
        if t.output == "index":
            out = index.astype(np.float64)
            out[nan] = np.nan
            return out[:, None]
        onehot = np.zeros((len(x), len(t.boundaries) + 1), dtype=np.float64)
        ok = np.flatnonzero(~nan)
        onehot[ok, index[ok]] = 1.0
        return onehot
    return x[:, None]  # identity


_LOOKUPS: dict[int, tuple[list[str], dict[str, int]]] = {}


def _lookup(vocabulary: list[str]) -> dict[str, int]:
    """value -> index, built once per vocabulary: a server transforms one row per request,
    and rebuilding a 1,000-value dict per input per request was most of its cost."""
    cached = _LOOKUPS.get(id(vocabulary))
    if cached is None or cached[0] is not vocabulary:
        cached = (vocabulary, {v: i for i, v in enumerate(vocabulary)})
        _LOOKUPS[id(vocabulary)] = cached
    return cached[1]


def _categorical(item: CategoricalInput, rows: _Rows) -> np.ndarray:
    vocabulary = item.transform.values
    lookup = _lookup(vocabulary)
    oov = len(vocabulary)
    missing_error = item.missing.strategy == "error"
    typed = rows.typed_column(item.name)
    if typed is not None:
        index = _categorical_by_distinct_value(typed, lookup, oov, missing_error)
        return _encoded(item, index, oov)
    objects = rows.objects(item.name)
    index = np.empty(len(objects), dtype=np.int64)
    first: tuple[int, str] | None = None
    count = 0
    for i, v in enumerate(objects):
        try:
            text = category_text(v)
            if text is None and missing_error:
                raise _Bad("missing value; send a string (this input's missing strategy is 'error')")
        except _Bad as bad:
            count += 1
            if first is None:
                first = (i, str(bad))
            continue
        index[i] = oov if text is None else lookup.get(text, oov)
    if first is not None:
        raise _ColumnError(first[0], _counted(first[1], count), count)
    return _encoded(item, index, oov)


def _categorical_by_distinct_value(column, lookup: dict[str, int], oov: int, missing_error: bool) -> np.ndarray:
    """The same judgement as the per-row loop, made once per distinct value (pd.factorize):
    an id column of a million rows has a few thousand values."""
    import pandas as pd

    codes, uniques = pd.factorize(column, use_na_sentinel=True)
    by_code = np.empty(len(uniques) + 1, dtype=np.int64)  # the last slot: missing (code -1)
    bad: dict[int, str] = {}
    for j, value in enumerate(uniques):
        try:
            text = category_text(value)
        except _Bad as problem:
            bad[j] = str(problem)
            continue
        by_code[j] = oov if text is None else lookup.get(text, oov)
        if text is None and missing_error:
            bad[j] = "missing value; send a string (this input's missing strategy is 'error')"
    if missing_error:
        bad[-1] = "missing value; send a string (this input's missing strategy is 'error')"
    by_code[-1] = oov
    if bad:
        rows_bad = np.isin(codes, list(bad))
        if rows_bad.any():
            first = int(np.flatnonzero(rows_bad)[0])
            raise _ColumnError(first, _counted(bad[int(codes[first])], int(rows_bad.sum())), int(rows_bad.sum()))
    return by_code[codes]


def _encoded(item: CategoricalInput, index: np.ndarray, oov: int) -> np.ndarray:
    if item.transform.output == "index":
        return index.astype(np.float64)[:, None]
    onehot = np.zeros((len(index), oov + 1), dtype=np.float64)
    onehot[np.arange(len(index)), index] = 1.0
    return onehot


def transform(spec: FeatureSpec, rows: Any, *, reject_out_of_range: bool = False, unknown: str = "error") -> np.ndarray:
    """See `FeatureSpec.transform`."""
    if unknown not in ("error", "ignore"):
        raise ValueError(f"unknown must be 'error' or 'ignore', got {unknown!r}")
    source = _Rows(rows, spec.input_names, unknown)
    errors = list(source.errors)
    parts = []
    for order, item in enumerate(spec.inputs):
        try:
            parts.append(_numeric(item, source, reject_out_of_range) if item.kind == "numeric"
                         else _categorical(item, source))
        except _ColumnError as exc:
            errors.append((exc.row, order, RowError(item.name, exc.message, row=exc.row)))
    if errors:
        raise min(errors, key=lambda e: (e[0], e[1]))[2]
    if source.n == 0:
        return np.empty((0, spec.width), dtype=np.float64)
    return np.concatenate(parts, axis=1)
