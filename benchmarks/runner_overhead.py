"""Runner overhead: `kit run` against a bare papermill loop, same notebooks, same process.

A pipeline of 5 trivial notebooks (a chain, so nothing runs in parallel) is run through
the kit (validation, MLflow runs, HTML renders, artifacts included) and through plain
`papermill.execute_notebook` calls, interleaved, after one warm-up of each.
Targets: kit adds at most 10%; `python -c "import kit"` under 0.3 s.

    .venv/bin/python benchmarks/runner_overhead.py [--repeats 5] [--import-repeats 10]

Prints a table and writes benchmarks/results/runner_overhead.json.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _report import save, table
from _support import Scratch

from kit.stats import DEFINITION, percentile

STEPS = 5


def make_project(root: Path) -> Scratch:
    project = Scratch(root, linked=False)
    steps = []
    for i in range(STEPS):
        project.notebook(f"n{i}.ipynb", "x = 1", "y = x + 1", "print(y)")
        needs = f", needs: [s{i - 1}]" if i else ""
        steps.append(f"  - {{name: s{i}, notebook: notebooks/n{i}.ipynb, parameters: {{x: {i}}}{needs}}}")
    (root / "bench.yaml").write_text("name: bench\nmodel: bench\nsteps:\n" + "\n".join(steps) + "\n")
    return project


def time_kit(project: Scratch) -> float:
    started = time.perf_counter()
    project.run("bench.yaml", jobs=2)
    return time.perf_counter() - started


def time_papermill(root: Path, out: Path) -> float:
    import papermill

    started = time.perf_counter()
    for i in range(STEPS):
        papermill.execute_notebook(str(root / "notebooks" / f"n{i}.ipynb"), str(out / f"n{i}.ipynb"),
                                   parameters={"x": i}, kernel_name="kit", progress_bar=False)
    return time.perf_counter() - started


def time_import(module: str, repeats: int) -> float:
    """p50 wall time of `python -c "import MODULE"` in a fresh process."""
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        subprocess.run([sys.executable, "-c", f"import {module}"], check=True)
        times.append(time.perf_counter() - started)
    return percentile(times, 50)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--import-repeats", type=int, default=10)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        project = make_project(root)
        out = root / "papermill-out"
        out.mkdir()
        time_kit(project), time_papermill(root, out)  # warm-up: imports, store creation
        kit_times, papermill_times = [], []
        for _ in range(args.repeats):
            kit_times.append(time_kit(project))
            papermill_times.append(time_papermill(root, out))

    kit_p50, papermill_p50 = percentile(kit_times, 50), percentile(papermill_times, 50)
    results = {
        "steps": STEPS,
        "repeats": args.repeats,
        "kit_run_s": kit_times,
        "papermill_loop_s": papermill_times,
        "kit_run_p50_s": kit_p50,
        "papermill_loop_p50_s": papermill_p50,
        "kit_over_papermill": kit_p50 / papermill_p50,
        "import_python_s": time_import("sys", args.import_repeats),
        "import_kit_s": time_import("kit", args.import_repeats),
        "import_nbformat_s": time_import("nbformat", args.import_repeats),
    }
    rows = [
        (f"kit run, 5 notebooks (p50 of {args.repeats})", f"{kit_p50:.2f} s"),
        (f"papermill loop, 5 notebooks (p50 of {args.repeats})", f"{papermill_p50:.2f} s"),
        ("kit / papermill", f"{results['kit_over_papermill']:.3f}x  (target <= 1.10x)"),
        ('python -c "import kit"', f"{results['import_kit_s']:.3f} s  (target < 0.3 s)"),
        ('python -c "import sys" (interpreter start)', f"{results['import_python_s']:.3f} s"),
        ('python -c "import nbformat"', f"{results['import_nbformat_s']:.3f} s"),
    ]
    table([("measure", "figure"), *rows], note=f"p50: {DEFINITION}; imports: p50 of {args.import_repeats}")
    save("runner_overhead", results)


if __name__ == "__main__":
    main()
