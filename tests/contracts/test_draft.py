"""`kit contract draft`: robust ranges that suit heavy tails, and honest warnings on tiny or
degenerate samples (with real Great Expectations where a contract is checked)."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from kit.cli import main
from kit.contracts import check
from kit.contracts.draft import MIN_ROWS, numeric_bounds


def drafted(capsys, data, out):
    capsys.readouterr()
    code = main(["contract", "draft", str(data), "--out", str(out)])
    output = capsys.readouterr()
    assert code == 0, output.err
    return json.loads(out.read_text()), output.out, output.err


@pytest.mark.parametrize("name, draw", [
    ("lognormal", lambda rng, n: rng.lognormal(0, 1, n)),
    ("normal", lambda rng, n: rng.normal(5, 2, n)),
    ("exponential", lambda rng, n: rng.exponential(3, n)),
])
def test_a_range_drafted_from_455_rows_accepts_114_fresh_rows_of_the_same_distribution(name, draw):
    rejected = []
    for seed in range(1000):
        rng = np.random.default_rng(seed)
        low, high, _ = numeric_bounds(draw(rng, 455))
        fresh = draw(rng, 114)
        if ((fresh < low) | (fresh > high)).any():
            rejected.append(seed)
    assert rejected == [], f"{name}: {len(rejected)} of 1000 fresh batches had a row outside the drafted range"


def test_the_lognormal_draft_passes_fresh_rows_through_real_gx_and_says_how_bounds_were_chosen(tmp_path, capsys):
    rng = np.random.default_rng(2026)
    pd.DataFrame({"amount": rng.lognormal(0, 1, 455)}).to_csv(tmp_path / "sample.csv", index=False)
    pd.DataFrame({"amount": rng.lognormal(0, 1, 114)}).to_csv(tmp_path / "fresh.csv", index=False)
    contract, out, _ = drafted(capsys, tmp_path / "sample.csv", tmp_path / "c.json")
    between = next(e for e in contract["expectations"] if e["type"] == "expect_column_values_to_be_between")
    assert between["meta"]["bound"].startswith("log scale")
    assert between["kwargs"]["min_value"] > 0  # a positive column keeps a positive floor
    assert f"amount: [{between['kwargs']['min_value']}, {between['kwargs']['max_value']}]: log scale" in out
    assert check(tmp_path / "c.json", tmp_path / "fresh.csv").success
    pd.DataFrame({"amount": rng.lognormal(0, 1, 114) * 1000}).to_csv(tmp_path / "drift.csv", index=False)
    assert not check(tmp_path / "c.json", tmp_path / "drift.csv").success


def test_a_tiny_sample_warns_and_leaves_value_sets_out(tmp_path, capsys):
    pd.DataFrame({"x": np.arange(MIN_ROWS - 1) / 10, "c": ["a", "b", "c"] * ((MIN_ROWS - 1) // 3) + ["a"] * ((MIN_ROWS - 1) % 3)}
                 ).to_csv(tmp_path / "tiny.csv", index=False)
    contract, _, err = drafted(capsys, tmp_path / "tiny.csv", tmp_path / "c.json")
    assert f"only {MIN_ROWS - 1} rows (fewer than {MIN_ROWS})" in err
    assert "column 'c': left out its value set" in err
    assert not any(e["type"] == "expect_column_values_to_be_in_set" for e in contract["expectations"])
    assert contract["meta"]["warnings"]
    assert check(tmp_path / "c.json", tmp_path / "tiny.csv").success


def test_constant_and_all_null_columns_are_left_out_with_a_warning(tmp_path, capsys):
    rows = 100
    pd.DataFrame({"x": np.linspace(0, 1, rows), "k": [7] * rows, "gone": [None] * rows}).to_csv(tmp_path / "d.csv",
                                                                                                  index=False)
    contract, _, err = drafted(capsys, tmp_path / "d.csv", tmp_path / "c.json")
    assert "column 'k' has one distinct value (7)" in err and "left out its value-set / range expectation" in err
    assert "column 'gone' is empty (all 100 values missing): left out its type, null, range" in err
    named = {e["kwargs"].get("column") for e in contract["expectations"]}
    assert "gone" not in named
    assert not any(e["kwargs"].get("column") == "k" and e["type"] in ("expect_column_values_to_be_in_set",
                                                                      "expect_column_values_to_be_between")
                   for e in contract["expectations"])
    assert check(tmp_path / "c.json", tmp_path / "d.csv").success


def test_a_header_only_file_drafts_the_columns_alone(tmp_path, capsys):
    (tmp_path / "h.csv").write_text("a,b,c\n")
    contract, _, err = drafted(capsys, tmp_path / "h.csv", tmp_path / "c.json")
    assert "no rows (a header only)" in err
    assert [e["type"] for e in contract["expectations"]] == ["expect_table_columns_to_match_set",
                                                             "expect_table_row_count_to_be_between"]
    assert contract["expectations"][0]["kwargs"]["column_set"] == ["a", "b", "c"]
