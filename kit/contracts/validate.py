"""Validate a table against a contract with real Great Expectations, and describe the outcome."""

from __future__ import annotations

import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from kit.contracts.data import normalize
from kit.tables import read_table
from kit.contracts.load import Contract, load_contract
from kit.files import sha256_file

_GX_LOCK = threading.Lock()  # GX contexts are not documented as thread-safe; steps run in threads
_IGNORED_KWARGS = {"batch_id", "column", "result_format", "catch_exceptions", "include_config"}


@dataclass
class Outcome:
    index: int
    expectation: str
    column: str | None
    expected: str
    observed: str
    unexpected_percent: float | None
    examples: list[Any]
    success: bool


@dataclass
class ContractResult:
    contract: str
    data: str
    rows: int
    success: bool
    outcomes: list[Outcome]
    seconds: float
    data_sha256: str | None = None
    raw: dict = field(default_factory=dict, repr=False)  # GX's own JSON result

    @property
    def failed(self) -> list[Outcome]:
        return [o for o in self.outcomes if not o.success]

    def to_dict(self) -> dict:
        return {k: v for k, v in asdict(self).items() if k != "raw"} | {"gx_result": self.raw}


def check(contract_path: str | Path, data_path: str | Path) -> ContractResult:
    """Load both files and validate: what `kit contract check` and the runner call."""
    contract = load_contract(contract_path)
    df = read_table(Path(data_path))
    result = validate(contract, df, data_name=str(data_path))
    result.data_sha256 = sha256_file(data_path)
    return result


def validate(contract: Contract, df, data_name: str = "dataframe", normalize_dtypes: bool = True) -> ContractResult:
    started = time.perf_counter()
    missing = [(i, kind, col) for i, kind, col in contract.columns_needed() if col not in df.columns]
    if missing:
        # GX would report these as bare failures with no reason; say what is wrong instead.
        outcomes = [Outcome(i, kind, col, "column present", f"column missing; data has: {', '.join(map(str, df.columns))}",
                            None, [], False) for i, kind, col in missing]
        return ContractResult(str(contract.path), data_name, len(df), False, outcomes, time.perf_counter() - started)

    if normalize_dtypes:
        df = normalize(df, keep_text_as_object=contract.type_checked_columns())
    expectations = _for_data(contract, df)
    with _GX_LOCK:
        raw = _run_gx(contract, expectations, df)
    outcomes = [_outcome(i, r) for i, r in enumerate(raw.results, 1)]
    return ContractResult(str(contract.path), data_name, len(df), all(o.success for o in outcomes), outcomes,
                          time.perf_counter() - started, raw=raw.to_json_dict())


def _for_data(contract: Contract, df) -> list:
    """JSON can only carry datetime bounds as strings, which pandas will not compare with a
    datetime column: parse them (ISO 8601) for the datetime columns of this data."""
    import datetime as dt

    import pandas as pd

    from kit.contracts.load import ContractError

    adapted = []
    for index, expectation in enumerate(contract.expectations, 1):
        column = expectation.configuration.kwargs.get("column")
        updates = {}
        if column in df.columns and pd.api.types.is_datetime64_any_dtype(df[column]):
            for key in ("min_value", "max_value"):
                value = getattr(expectation, key, None)
                if isinstance(value, (str, dt.date)) and not isinstance(value, dt.datetime):
                    try:
                        updates[key] = pd.Timestamp(value).to_pydatetime()
                    except ValueError:
                        raise ContractError(f"{contract.path}: expectation {index} ({expectation.configuration.type}): "
                                            f"{key} {value!r} is not an ISO date or time for datetime column "
                                            f"{column!r}") from None
        adapted.append(expectation.copy(update=updates) if updates else expectation)
    return adapted


def _run_gx(contract: Contract, expectations: list, df):
    import great_expectations as gx
    from great_expectations.data_context.types.base import ProgressBarsConfig

    context = gx.get_context(mode="ephemeral")
    context.variables.progress_bars = ProgressBarsConfig(globally=False)
    batch = (context.data_sources.add_pandas("kit").add_dataframe_asset("table")
             .add_batch_definition_whole_dataframe("whole").get_batch(batch_parameters={"dataframe": df}))
    return batch.validate(contract.suite(expectations), result_format={"result_format": "SUMMARY", "partial_unexpected_count": 5})


def _outcome(index: int, result) -> Outcome:
    config = result.expectation_config
    kwargs = {k: v for k, v in config.kwargs.items() if k not in _IGNORED_KWARGS and v is not None}
    details = result.result or {}
    error = _exception_message(result.exception_info or {})
    if error:
        observed = f"error: {error[:200]}"
    elif details.get("observed_value") is not None:
        observed = _short(details["observed_value"])
    elif details.get("unexpected_count") is not None:
        observed = f"{details['unexpected_count']} unexpected of {details.get('element_count', '?')}"
    else:
        observed = ""
    return Outcome(
        index=index,
        expectation=config.type,
        column=config.kwargs.get("column"),
        expected=", ".join(f"{k}={_short(v)}" for k, v in kwargs.items()),
        observed=observed,
        unexpected_percent=details.get("unexpected_percent"),
        examples=[_plain(v) for v in (details.get("partial_unexpected_list") or [])[:5]],
        success=bool(result.success),
    )


def _exception_message(info: dict) -> str | None:
    """GX puts exception info either at the top or under each metric's id."""
    entries = [info] if "raised_exception" in info else [v for v in info.values() if isinstance(v, dict)]
    for entry in entries:
        if entry.get("raised_exception"):
            return str(entry.get("exception_message") or "the expectation raised an error")
    return None


def _short(value: Any, limit: int = 80) -> str:
    text = str(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _plain(value: Any) -> Any:
    """JSON-friendly example values (numpy scalars, timestamps, NaN)."""
    if hasattr(value, "item"):
        value = value.item()
    if isinstance(value, float) and value != value:
        return None
    return value if isinstance(value, (str, int, float, bool, type(None))) else str(value)
