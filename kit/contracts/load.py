"""Load a contract file into Great Expectations objects, refusing anything GX would drop.

GX 1.24 logs and silently skips an expectation of unknown type when a suite is built from
dicts, so each expectation is built on its own here and every problem is reported with
the file and the expectation's position.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kit.errors import SpecError

COLUMN_KWARGS = ("column", "column_A", "column_B")
TYPE_EXPECTATIONS = {"expect_column_values_to_be_of_type", "expect_column_values_to_be_in_type_list"}


class ContractError(SpecError):
    """The contract file itself is broken (exit 2)."""


@dataclass
class Contract:
    path: Path
    name: str
    expectations: list  # great_expectations Expectation objects, in file order

    def suite(self, expectations: list | None = None):
        import great_expectations as gx

        return gx.ExpectationSuite(name=self.name, expectations=expectations or self.expectations)

    def type_checked_columns(self) -> set[str]:
        return {e.configuration.kwargs["column"] for e in self.expectations
                if e.configuration.type in TYPE_EXPECTATIONS and e.configuration.kwargs.get("column")}

    def columns_needed(self) -> list[tuple[int, str, str]]:
        """(position, expectation type, column) for every column an expectation names."""
        needed = []
        for index, expectation in enumerate(self.expectations, 1):
            config = expectation.configuration
            for key in COLUMN_KWARGS:
                if config.kwargs.get(key) is not None:
                    needed.append((index, config.type, config.kwargs[key]))
            for column in config.kwargs.get("column_list") or []:
                needed.append((index, config.type, column))
        return needed


def load_contract(path: str | Path) -> Contract:
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ContractError(f"{path}: cannot read contract: {exc.strerror}") from None
    except UnicodeDecodeError as exc:
        raise ContractError(f"{path}: not UTF-8 text (byte {exc.start}: {exc.object[exc.start:exc.start + 1]!r}); "
                            "a contract is a JSON file saved as UTF-8") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ContractError(f"{path}:{exc.lineno}:{exc.colno}: not valid JSON: {exc.msg}") from None
    if not isinstance(data, dict) or not isinstance(data.get("expectations"), list):
        raise ContractError(f"{path}: a contract is a JSON object with a list under \"expectations\" "
                            "(draft one with `kit contract draft DATA --out FILE`)")

    from great_expectations.expectations.expectation_configuration import ExpectationConfiguration

    expectations, problems = [], []
    for index, entry in enumerate(data["expectations"], 1):
        where = f"{path}: expectation {index}"
        if not isinstance(entry, dict) or not isinstance(entry.get("type"), str):
            problems.append(f"{where}: needs a \"type\" such as \"expect_column_values_to_not_be_null\"")
            continue
        where += f" ({entry['type']})"
        try:
            config = ExpectationConfiguration(type=entry["type"], kwargs=dict(entry.get("kwargs") or {}),
                                              meta=entry.get("meta") or {})
            expectations.append(config.to_domain_obj())
        except Exception as exc:  # GX raises its own errors and pydantic v1 ValidationErrors
            problems.append(f"{where}: {_explain(exc)}")
    if problems:
        raise ContractError("\n".join(problems))
    return Contract(path=path, name=str(data.get("name") or path.stem), expectations=expectations)


def _explain(exc: Exception) -> str:
    if type(exc).__name__ == "ValidationError" and hasattr(exc, "errors"):
        parts = []
        for error in exc.errors():
            field = ".".join(str(p) for p in error.get("loc", ())) or "kwargs"
            if error.get("type") == "value_error.extra":
                parts.append(f"unknown argument {field!r}")
            elif error.get("type") == "value_error.missing":
                parts.append(f"missing argument {field!r}")
            elif field == "__root__":
                parts.append(error.get("msg", "invalid arguments"))
            else:
                parts.append(f"{field}: {error.get('msg')}")
        return "; ".join(dict.fromkeys(parts))  # pydantic repeats a field once per union member
    message = str(exc).split("\n")[0]
    if "not found" in message:
        return "unknown expectation type (see the Great Expectations gallery for the names)"
    return message
