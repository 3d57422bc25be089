"""Data contracts with the real Great Expectations."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from kit.cli import main
from kit.contracts import ContractError, check, load_contract, validate
from kit.contracts.data import normalize
from kit.contracts.draft import write_draft
from kit.contracts.report import text_table, write_html

CONTRACT = {
    "name": "t",
    "expectations": [
        {"type": "expect_column_values_to_not_be_null", "kwargs": {"column": "x"}},
        {"type": "expect_column_values_to_be_between", "kwargs": {"column": "x", "min_value": 0, "max_value": 1}},
        {"type": "expect_column_values_to_be_in_set", "kwargs": {"column": "c", "value_set": ["a", "b"]}},
    ],
}


@pytest.fixture
def files(tmp_path):
    rng = np.random.default_rng(0)
    good = pd.DataFrame({"x": rng.random(200), "c": rng.choice(["a", "b"], 200)})
    good.to_csv(tmp_path / "good.csv", index=False)
    bad = good.copy()
    bad.loc[:9, "x"] = 7.5
    bad.loc[3, "c"] = "zz"
    bad.to_parquet(tmp_path / "bad.parquet")
    contract = tmp_path / "t.json"
    contract.write_text(json.dumps(CONTRACT, indent=2))
    return tmp_path, contract


def test_good_data_passes(files):
    folder, contract = files
    result = check(contract, folder / "good.csv")
    assert result.success and len(result.outcomes) == 3 and len(result.data_sha256) == 64


def test_corrupted_copy_fails_with_the_offending_values(files, tmp_path):
    folder, contract = files
    result = check(contract, folder / "bad.parquet")
    assert not result.success
    by_type = {o.expectation: o for o in result.failed}
    between = by_type["expect_column_values_to_be_between"]
    assert between.column == "x" and between.unexpected_percent == pytest.approx(5.0) and between.examples[0] == 7.5
    assert by_type["expect_column_values_to_be_in_set"].examples == ["zz"]
    table = text_table(result)
    assert "FAILED (2 of 3 expectations)" in table and "'zz'" in table and "5.00" in table
    page = write_html(result, tmp_path / "r.html").read_text()
    assert "Contract FAILED" in page and "expect_column_values_to_be_in_set" in page


@pytest.mark.parametrize("text, message", [
    ('{"expectations": [', "t.json:1:19: not valid JSON"),
    ('{"name": "x"}', 'list under "expectations"'),
    ('{"expectations": [{"type": "expect_no_such_thing", "kwargs": {"column": "x"}}]}',
     "expectation 1 (expect_no_such_thing): unknown expectation type"),
    ('{"expectations": [{"type": "expect_column_values_to_be_between", "kwargs": {"colum": "x", "min_value": 0}}]}',
     "expectation 1 (expect_column_values_to_be_between): missing argument 'column'; unknown argument 'colum'"),
    ('{"expectations": [{"kwargs": {}}]}', 'expectation 1: needs a "type"'),
])
def test_broken_contract_files_name_the_file_and_expectation(tmp_path, text, message):
    path = tmp_path / "t.json"
    path.write_text(text)
    with pytest.raises(ContractError) as caught:
        load_contract(path)
    assert message in str(caught.value)


def test_a_column_the_data_lacks_is_named(files):
    folder, contract = files
    data = pd.DataFrame({"x": [0.5], "category": ["a"]})
    result = validate(load_contract(contract), data)
    assert not result.success
    assert result.failed[0].column == "c" and "column missing; data has: x, category" in result.failed[0].observed


def test_normalization_makes_pandas3_dtypes_safe():
    frame = pd.DataFrame({
        "t": pd.Series(pd.date_range("2026-01-01", periods=3, freq="D")).astype("datetime64[us]"),
        "s": pd.Series(["a", "b", None], dtype="str"),
        "f": pd.Series([1, 2, 3], dtype="float32"),
        "i": pd.Series([1, None, 3], dtype="Int32"),
    })
    out = normalize(frame)
    assert str(out["t"].dtype) == "datetime64[ns]" and isinstance(out["s"].dtype, pd.CategoricalDtype)
    assert normalize(frame, keep_text_as_object={"s"})["s"].dtype == object
    assert out["f"].dtype == np.float64 and out["i"].dtype == np.float64


def test_type_list_expectation_works_on_a_pandas3_string_column(tmp_path):
    path = tmp_path / "t.json"
    path.write_text(json.dumps({"expectations": [
        {"type": "expect_column_values_to_be_in_type_list", "kwargs": {"column": "s", "type_list": ["str", "object"]}}]}))
    data = pd.DataFrame({"s": pd.Series(["a", "b"], dtype="str")})
    assert validate(load_contract(path), data).success


def test_draft_passes_on_its_sample_and_catches_drift(tmp_path):
    rng = np.random.default_rng(1)
    sample = pd.DataFrame({"price": rng.uniform(10, 20, 500), "device": rng.choice(["mobile", "desktop"], 500),
                           "age": rng.integers(18, 80, 500).astype(float)})
    sample.loc[:24, "age"] = np.nan  # 5% missing
    sample.to_parquet(tmp_path / "sample.parquet")
    contract = write_draft(tmp_path / "sample.parquet", tmp_path / "c.json")
    kinds = {(e["type"], e["kwargs"].get("column")) for e in contract["expectations"]}
    assert ("expect_column_values_to_be_in_set", "device") in kinds
    assert ("expect_column_values_to_be_between", "price") in kinds
    nulls = next(e for e in contract["expectations"]
                 if e["type"] == "expect_column_values_to_not_be_null" and e["kwargs"]["column"] == "age")
    assert 0.9 < nulls["kwargs"]["mostly"] < 0.95
    assert check(tmp_path / "c.json", tmp_path / "sample.parquet").success
    drifted = sample.assign(price=sample["price"] * 3)
    drifted.to_csv(tmp_path / "drifted.csv", index=False)
    assert not check(tmp_path / "c.json", tmp_path / "drifted.csv").success


def test_cli_contract_commands(files, capsys):
    folder, contract = files
    assert main(["contract", "check", str(contract), str(folder / "good.csv")]) == 0
    assert main(["contract", "check", str(contract), str(folder / "bad.parquet"), "--html", str(folder / "r.html")]) == 3
    assert "does not meet" in capsys.readouterr().err and (folder / "r.html").is_file()
    assert main(["contract", "draft", str(folder / "good.csv"), "--out", str(contract)]) == 2
    assert "exists" in capsys.readouterr().err
    assert main(["contract", "check", str(contract), str(folder / "missing.csv")]) == 2
    assert main(["contract", "check", str(contract), str(folder / "t.json")]) == 2  # not a table


def test_iso_datetime_bounds_work_on_datetime_columns(tmp_path):
    path = tmp_path / "t.json"
    path.write_text(json.dumps({"expectations": [{"type": "expect_column_values_to_be_between",
                                                  "kwargs": {"column": "t", "min_value": "2026-01-01",
                                                             "max_value": "2026-02-01T00:00:00"}}]}))
    times = pd.Series(pd.date_range("2026-01-01", periods=48, freq="h")).astype("datetime64[us]")
    assert validate(load_contract(path), pd.DataFrame({"t": times})).success
    late = pd.DataFrame({"t": pd.concat([times, pd.Series([pd.Timestamp("2026-03-01")])]).astype("datetime64[us]")})
    result = validate(load_contract(path), late)
    assert not result.success and result.failed[0].examples == ["2026-03-01 00:00:00"]


def test_an_expectation_that_raises_shows_the_error(tmp_path):
    path = tmp_path / "t.json"
    path.write_text(json.dumps({"expectations": [{"type": "expect_column_values_to_be_between",
                                                  "kwargs": {"column": "s", "min_value": 0, "max_value": 1}}]}))
    result = validate(load_contract(path), pd.DataFrame({"s": ["a", "b"]}))
    assert not result.success and result.failed[0].observed.startswith("error: ")


def test_text_columns_keep_gx_type_semantics_when_a_type_expectation_names_them(tmp_path):
    path = tmp_path / "t.json"
    path.write_text(json.dumps({"expectations": [
        {"type": "expect_column_values_to_be_of_type", "kwargs": {"column": "a", "type_": "object"}},
        {"type": "expect_column_values_to_be_in_set", "kwargs": {"column": "b", "value_set": ["x", "y"]}}]}))
    data = pd.DataFrame({"a": pd.Series(["p", "q"], dtype="str"), "b": pd.Series(["x", None], dtype="str")})
    assert validate(load_contract(path), data).success
