"""Contract validation speed, and the share of a full Iris run spent in gates.

1. A 1,000,000-row, 20-column DataFrame (with a datetime column in pandas 3's default
   datetime64[us]) against a 30-expectation contract, validated with real Great
   Expectations with and without the kit's dtype normalization. Target: < 2 s with it.
2. The Iris pipeline run in a fresh process; the runner's own timings: contract checks (data read,
   GX import and validation) and gates + registration + promotion, as a share of the run.

    .venv/bin/python benchmarks/contracts.py [--rows 1000000]

Prints a table and writes benchmarks/results/contracts.json.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _report import save, table
from _support import Scratch

import numpy as np
import pandas as pd

from kit.stats import DEFINITION, percentile

ROWS = 1_000_000


def make_frame(rows: int = ROWS) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    frame = {"ts": pd.Series(pd.date_range("2026-01-01", periods=rows, freq="s")).astype("datetime64[us]")}
    for i in range(7):
        frame[f"num{i}"] = rng.normal(size=rows)
    for i in range(6):
        frame[f"int{i}"] = rng.integers(0, 1000, rows)
    for i in range(6):
        frame[f"cat{i}"] = pd.Series(rng.choice(["a", "b", "c", "d"], rows), dtype="str")
    return pd.DataFrame(frame)


def contract(path: Path) -> Path:
    expectations = [
        {"type": "expect_column_values_to_be_between",
         "kwargs": {"column": "ts", "min_value": "2025-01-01", "max_value": "2027-01-01"}},
        {"type": "expect_column_values_to_not_be_null", "kwargs": {"column": "ts"}},
    ]
    for i in range(7):
        expectations += [{"type": "expect_column_values_to_not_be_null", "kwargs": {"column": f"num{i}"}},
                         {"type": "expect_column_values_to_be_between",
                          "kwargs": {"column": f"num{i}", "min_value": -10, "max_value": 10}}]
    for i in range(6):
        expectations.append({"type": "expect_column_values_to_be_between",
                             "kwargs": {"column": f"int{i}", "min_value": 0, "max_value": 999}})
    for i in range(6):
        expectations.append({"type": "expect_column_values_to_be_in_set",
                             "kwargs": {"column": f"cat{i}", "value_set": ["a", "b", "c", "d"]}})
    expectations.append({"type": "expect_table_row_count_to_be_between", "kwargs": {"min_value": 1}})
    expectations.append({"type": "expect_column_values_to_be_in_type_list",
                         "kwargs": {"column": "cat0", "type_list": ["str", "object"]}})
    assert len(expectations) == 30
    path.write_text(json.dumps({"name": "bench", "expectations": expectations}))
    return path


def time_validation(frame, contract_path: Path, normalize: bool, repeats: int = 3) -> tuple[float, bool]:
    from kit.contracts import load_contract, validate

    loaded = load_contract(contract_path)
    times, ok = [], True
    for _ in range(repeats):
        started = time.perf_counter()
        result = validate(loaded, frame, normalize_dtypes=normalize)
        times.append(time.perf_counter() - started)
        ok = ok and result.success
    return percentile(times, 50), ok


def iris_share() -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        # plan_s includes importing GX to check the contract files
        plan_s, result = Scratch(Path(tmp)).run("pipelines/iris.yaml", overrides=[{"train": {"epochs": 30}}])
    seconds = result.seconds
    total = plan_s + seconds["total"]
    return {"total_s": total, "plan_s": plan_s, "contracts_s": seconds["contracts"], "gates_s": seconds["gates"],
            "share": (plan_s + seconds["contracts"] + seconds["gates"]) / total}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=ROWS, help="rows of the validated table")
    parser.add_argument("--iris", action="store_true", help=argparse.SUPPRESS)  # the child process of part 2
    args = parser.parse_args()
    if args.iris:  # a fresh process: the run pays the GX import like a user's does
        print(json.dumps(iris_share()))
        return
    with tempfile.TemporaryDirectory() as tmp:
        contract_path = contract(Path(tmp) / "bench.json")
        frame = make_frame(args.rows)
        with_norm, ok_norm = time_validation(frame, contract_path, normalize=True)
        without_norm, ok_raw = time_validation(frame, contract_path, normalize=False, repeats=1)
    child = subprocess.run([sys.executable, __file__, "--iris"], capture_output=True, text=True, check=True)
    share = json.loads(child.stdout.strip().splitlines()[-1])
    results = {"rows": args.rows, "columns": 20, "expectations": 30, "datetime_dtype": "datetime64[us]",
               "with_normalization_s": with_norm, "without_normalization_s": without_norm,
               "speedup": without_norm / with_norm, "both_passed": ok_norm and ok_raw, "iris": share}
    rows = [
        (f"{args.rows:,} x 20, 30 expectations, with normalization (p50 of 3)",
         f"{with_norm:.2f} s  (target < 2 s at 1,000,000)"),
        ("same, without normalization", f"{without_norm:.2f} s"),
        ("normalization speed-up", f"{results['speedup']:.1f}x"),
        ("Iris run total (fresh process)", f"{share['total_s']:.1f} s"),
        ("  plan checks (imports GX, loads contracts)", f"{share['plan_s']:.2f} s"),
        ("  contract checks (read + validate)", f"{share['contracts_s']:.2f} s"),
        ("  gates + registration + promotion", f"{share['gates_s']:.2f} s"),
        ("  share of the run in checks and gates", f"{share['share']:.1%}"),
    ]
    table([("measure", "figure"), *rows], note=f"p50: {DEFINITION}")
    save("contracts", results)


if __name__ == "__main__":
    main()
