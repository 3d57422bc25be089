"""Fuzzing `kit contract check` and `kit contract draft` with Hypothesis: generated contract
files and data files (empty, wrong encoding, mixed types, huge strings, random bytes) get
exit 0, 2 or 3 with a message, never a traceback.

Seeded (derandomize) so a failure reproduces; most cases run in-process through
kit.cli.main (GX is slow to import), a few through the real `kit` command. Set
KIT_FUZZ_SCALE=10 to run ten times the suite's cases."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kit.cli import main

SCALE = float(os.environ.get("KIT_FUZZ_SCALE", "1"))  # 10 for a long run


def fuzz(examples: int):
    return settings(max_examples=max(1, int(examples * SCALE)), deadline=None, derandomize=True, database=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                           HealthCheck.function_scoped_fixture])
COLUMNS = ["x", "c", "t", "weird name", "ü", ""]
EXPECTATIONS = ["expect_column_values_to_be_between", "expect_column_values_to_be_in_set",
                "expect_column_values_to_not_be_null", "expect_column_values_to_be_of_type",
                "expect_table_columns_to_match_set", "expect_table_row_count_to_be_between",
                "expect_column_values_to_be_in_type_list", "expect_column_values_to_be_unique",
                "expect_column_values_to_match_regex", "expect_column_mean_to_be_between",
                "expect_column_quantile_values_to_be_between", "expect_nothing_like_this"]
KWARG_NAMES = ["column", "min_value", "max_value", "value_set", "mostly", "type_", "type_list", "column_set",
               "regex", "strict_min", "quantile_ranges", "bogus"]

scalars = st.one_of(st.none(), st.booleans(), st.integers(-10**20, 10**20),
                    st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=20),
                    st.sampled_from(COLUMNS), st.sampled_from(["2026-01-01", "int64", "float64", "object", "[a-z]+"]))
json_values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=4)
                           | st.dictionaries(st.text(max_size=8), inner, max_size=4), max_leaves=12)
expectation = st.fixed_dictionaries(
    {"type": st.one_of(st.sampled_from(EXPECTATIONS), st.text(max_size=10), st.integers())},
    optional={"kwargs": st.one_of(st.dictionaries(st.sampled_from(KWARG_NAMES), json_values, max_size=5), json_values),
              "meta": json_values})
contract_text = st.one_of(
    st.builds(lambda e, extra: json.dumps({"name": "fuzz", "expectations": e, **extra}),
              st.lists(expectation, max_size=5), st.dictionaries(st.text(max_size=5), json_values, max_size=2)),
    st.builds(json.dumps, json_values),
    st.text(max_size=60),
)
contract_file = st.one_of(contract_text.map(lambda t: t.encode("utf-8")),
                          st.binary(max_size=80),
                          contract_text.map(lambda t: t.encode("utf-16")))

cells = st.one_of(st.integers(-10**6, 10**6).map(str), st.floats(allow_nan=True).map(str),
                  st.sampled_from(["", "NA", "null", "nan", "inf", "-inf", "true", "a", "b", "2026-01-01", "1e309",
                                   '"quoted, comma"', "ü", "\t"]),
                  st.text(max_size=12).filter(lambda s: "\n" not in s and "\r" not in s))
huge = st.sampled_from(["x" * 100_000, "é" * 50_000, "9" * 5000])


@st.composite
def csv_bytes(draw) -> bytes:
    kind = draw(st.sampled_from(["table", "table", "table", "empty", "header", "bytes", "huge"]))
    if kind == "empty":
        return b""
    if kind == "bytes":
        return draw(st.binary(max_size=200))
    columns = draw(st.lists(st.sampled_from(COLUMNS), min_size=1, max_size=4))
    if kind == "header":
        return (",".join(columns) + "\n").encode()
    rows = draw(st.lists(st.lists(cells, min_size=len(columns), max_size=len(columns)), max_size=30))
    if kind == "huge":
        rows.append([draw(huge)] + ["1"] * (len(columns) - 1))
    if draw(st.booleans()):  # ragged: a row with too many or too few fields
        rows.append(draw(st.lists(cells, max_size=len(columns) + 2)))
    text = "\n".join(",".join(row) for row in [columns, *rows]) + "\n"
    encoding = draw(st.sampled_from(["utf-8", "utf-8", "latin-1", "utf-16", "cp1252"]))
    return text.encode(encoding, errors="replace")


@st.composite
def parquet_bytes(draw) -> bytes | None:
    import io

    import numpy as np
    import pandas as pd

    n = draw(st.integers(0, 20))
    columns = {}
    for name in draw(st.lists(st.sampled_from(COLUMNS), min_size=1, max_size=3, unique=True)):
        kind = draw(st.sampled_from(["float", "int", "text", "bool", "time", "null", "mixed"]))
        values = {"float": lambda: draw(st.lists(st.floats(allow_nan=True), min_size=n, max_size=n)),
                  "int": lambda: draw(st.lists(st.integers(-2**63, 2**63 - 1), min_size=n, max_size=n)),
                  "text": lambda: draw(st.lists(st.text(max_size=10) | huge, min_size=n, max_size=n)),
                  "bool": lambda: draw(st.lists(st.booleans(), min_size=n, max_size=n)),
                  "time": lambda: list(pd.date_range("2026-01-01", periods=n, freq="h", tz="UTC")),
                  "null": lambda: [None] * n,
                  "mixed": lambda: [str(v) for v in draw(st.lists(cells, min_size=n, max_size=n))]}[kind]()
        columns[name] = values
    buffer = io.BytesIO()
    try:
        pd.DataFrame(columns).to_parquet(buffer)
    except Exception:  # pyarrow refuses some mixes; those files cannot exist
        return None
    del np
    return buffer.getvalue()


data_file = st.one_of(csv_bytes().map(lambda b: ("data.csv", b)),
                      parquet_bytes().map(lambda b: ("data.parquet", b)),
                      st.binary(max_size=100).map(lambda b: ("data.parquet", b)))


def run_in_process(capsys, argv: list[str], allowed: set[int]) -> tuple[int, str]:
    capsys.readouterr()
    code = main(argv)  # anything but a KitError escapes here and fails the test with its traceback
    out, err = capsys.readouterr()
    assert code in allowed, (argv, code, err)
    if code != 0:
        assert err.strip(), f"exit {code} without a message: {argv}"
    assert "Traceback" not in out + err
    return code, err


GOOD_DATA = b"x,c\n0.5,a\n0.7,b\n"
GOOD_CONTRACT = json.dumps({"expectations": [
    {"type": "expect_column_values_to_be_between", "kwargs": {"column": "x", "min_value": 0, "max_value": 1}}]}).encode()


@fuzz(25)
@given(contract=contract_file)
def test_check_with_generated_contract_files(capsys, contract):
    with tempfile.TemporaryDirectory() as folder:
        (Path(folder) / "c.json").write_bytes(contract)
        (Path(folder) / "d.csv").write_bytes(GOOD_DATA)
        run_in_process(capsys, ["contract", "check", f"{folder}/c.json", f"{folder}/d.csv"], {0, 2, 3})


@fuzz(40)
@given(data=data_file)
def test_check_with_generated_data_files(capsys, data):
    name, content = data
    if content is None:
        return
    with tempfile.TemporaryDirectory() as folder:
        (Path(folder) / "c.json").write_bytes(GOOD_CONTRACT)
        (Path(folder) / name).write_bytes(content)
        run_in_process(capsys, ["contract", "check", f"{folder}/c.json", f"{folder}/{name}"], {0, 2, 3})


@fuzz(30)
@given(data=data_file)
def test_draft_from_generated_data_files_then_check_the_sample_against_its_draft(capsys, data):
    name, content = data
    if content is None:
        return
    with tempfile.TemporaryDirectory() as folder:
        (Path(folder) / name).write_bytes(content)
        code, _ = run_in_process(capsys, ["contract", "draft", f"{folder}/{name}", "--out", f"{folder}/c.json"], {0, 2})
        if code == 0:  # a draft is a contract its own sample meets (but for `at least 1 row` on an empty one)
            rows = json.loads((Path(folder) / "c.json").read_text())["meta"]["rows_in_sample"]
            run_in_process(capsys, ["contract", "check", f"{folder}/c.json", f"{folder}/{name}"], {0} if rows else {3})


# Shapes the in-process fuzzers found or that matter most, once through the real command
# (each process imports GX: a few cases only).
REAL = [
    pytest.param(["check", "c.json", "d.csv"], {"c.json": b"\xff\xfe{", "d.csv": GOOD_DATA}, 2, id="check-non-utf8-contract"),
    pytest.param(["draft", "d.csv", "--out", "new.json"], {"d.csv": b""}, 2, id="draft-empty-file"),
    pytest.param(["draft", "d.csv", "--out", "new.json"], {"d.csv": "x,c\n1,\xe9\n".encode("utf-16")}, 2,
                 id="draft-utf16-file"),
    pytest.param(["check", "c.json", "d.csv"], {"c.json": GOOD_CONTRACT, "d.csv": b"x,c\n" + b"9" * 5000 + b",a\n"}, 3,
                 id="check-huge-number"),
]


@pytest.mark.parametrize("argv, files, code", REAL)
def test_the_real_command_exits_with_a_message_never_a_traceback(tmp_path, argv, files, code):
    for name, content in files.items():
        (tmp_path / name).write_bytes(content)
    done = subprocess.run([sys.executable, "-m", "kit.cli", "contract", *argv], cwd=tmp_path, capture_output=True,
                          text=True, timeout=300, env={**os.environ, "KIT_PROJECT_ROOT": str(tmp_path)})
    assert "Traceback" not in done.stderr, done.stderr
    assert done.returncode == code, done.stderr
    if code:
        assert done.stderr.startswith("kit contract: "), done.stderr
