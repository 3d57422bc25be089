"""Regression tests for what the contract and data fuzzers (test_fuzz_contracts.py) found."""

from __future__ import annotations

from kit.cli import main

GOOD_DATA = b"x,c\n0.5,a\n0.7,b\n"


def check(capsys, tmp_path, contract: bytes, data: bytes, data_name: str = "d.csv") -> tuple[int, str]:
    (tmp_path / "c.json").write_bytes(contract)
    (tmp_path / data_name).write_bytes(data)
    capsys.readouterr()
    code = main(["contract", "check", str(tmp_path / "c.json"), str(tmp_path / data_name)])
    return code, capsys.readouterr().err


def test_a_contract_that_is_not_utf8_is_named_with_exit_2(capsys, tmp_path):
    code, err = check(capsys, tmp_path, b"\x80", GOOD_DATA)
    assert code == 2 and "c.json: not UTF-8 text (byte 0: b'\\x80')" in err


def test_a_data_file_that_is_not_utf8_says_so_and_how_to_fix_it(capsys, tmp_path):
    (tmp_path / "d.csv").write_bytes("x,c\n1,\xe9\n".encode("utf-16"))
    assert main(["contract", "draft", str(tmp_path / "d.csv"), "--out", str(tmp_path / "c.json")]) == 2
    assert "d.csv: not UTF-8 text (byte 0: b'\\xff'); save the file as UTF-8" in capsys.readouterr().err


def test_a_column_with_an_empty_name_is_left_out_of_the_draft_so_the_draft_loads(capsys, tmp_path):
    import pandas as pd

    pd.DataFrame({"": [0.5, 1.5], "x": [1.0, 2.0]}).to_parquet(tmp_path / "d.parquet")
    assert main(["contract", "draft", str(tmp_path / "d.parquet"), "--out", str(tmp_path / "c.json")]) == 0
    assert "column '' has an empty name" in capsys.readouterr().err
    assert main(["contract", "check", str(tmp_path / "c.json"), str(tmp_path / "d.parquet")]) == 0


def test_a_column_with_infinite_values_gets_no_range_so_the_sample_meets_its_draft(capsys, tmp_path):
    import pandas as pd

    pd.DataFrame({"x": [-0.0, float("inf"), 1.0]}).to_parquet(tmp_path / "d.parquet")
    assert main(["contract", "draft", str(tmp_path / "d.parquet"), "--out", str(tmp_path / "c.json")]) == 0
    assert "column 'x' holds infinite values: left out its range" in capsys.readouterr().err
    assert main(["contract", "check", str(tmp_path / "c.json"), str(tmp_path / "d.parquet")]) == 0
