"""Runner overhead: `kit run` against a bare papermill loop, same notebooks, same process.

A pipeline of 5 trivial notebooks (a chain, so nothing runs in parallel) is run through
the kit (validation, MLflow runs, HTML renders, artifacts included) and through plain
`papermill.execute_notebook` calls, interleaved, after one warm-up of each.
Targets: kit adds at most 10%; `python -c "import kit"` under 0.3 s.

    .venv/bin/python benchmarks/runner_overhead.py [--repeats 5]

Prints a table and writes benchmarks/results/runner_overhead.json.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _report import save, table

import nbformat

HERE = Path(__file__).resolve().parent
STEPS = 5


def make_project(root: Path) -> Path:
    (root / "pyproject.toml").write_text("[project]\nname = 'bench'\n")
    (root / "notebooks").mkdir()
    steps = []
    for i in range(STEPS):
        nb = nbformat.v4.new_notebook()
        nb.metadata["kernelspec"] = {"name": "kit", "display_name": "Python (kit)", "language": "python"}
        params = nbformat.v4.new_code_cell("x = 1")
        params.metadata["tags"] = ["parameters"]
        nb.cells = [params, nbformat.v4.new_code_cell("y = x + 1"), nbformat.v4.new_code_cell("print(y)")]
        nbformat.write(nb, root / "notebooks" / f"n{i}.ipynb")
        needs = f", needs: [s{i - 1}]" if i else ""
        steps.append(f"  - {{name: s{i}, notebook: notebooks/n{i}.ipynb, parameters: {{x: {i}}}{needs}}}")
    pipeline = root / "bench.yaml"
    pipeline.write_text("name: bench\nmodel: bench\nsteps:\n" + "\n".join(steps) + "\n")
    return pipeline


def time_kit(pipeline_file: Path) -> float:
    from kit.run import run
    from kit.run.plan import load_plan
    from kit.run.progress import PlainProgress

    with open(os.devnull, "w") as sink:
        started = time.perf_counter()
        plan = load_plan(pipeline_file)
        run(plan, jobs=2, progress=PlainProgress(list(plan.pipeline.steps), sink))
        return time.perf_counter() - started


def time_papermill(root: Path, out: Path) -> float:
    import papermill

    started = time.perf_counter()
    for i in range(STEPS):
        papermill.execute_notebook(str(root / "notebooks" / f"n{i}.ipynb"), str(out / f"n{i}.ipynb"),
                                   parameters={"x": i}, kernel_name="kit", progress_bar=False)
    return time.perf_counter() - started


def time_import(module: str, repeats: int = 10) -> float:
    """Median wall time of `python -c "import MODULE"` in a fresh process."""
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        subprocess.run([sys.executable, "-c", f"import {module}"], check=True)
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        os.environ["KIT_PROJECT_ROOT"] = str(root)
        os.environ.pop("MLFLOW_TRACKING_URI", None)
        pipeline_file = make_project(root)
        out = root / "papermill-out"
        out.mkdir()
        time_kit(pipeline_file), time_papermill(root, out)  # warm-up: imports, store creation
        kit_times, papermill_times = [], []
        for _ in range(args.repeats):
            kit_times.append(time_kit(pipeline_file))
            papermill_times.append(time_papermill(root, out))

    kit_median, papermill_median = statistics.median(kit_times), statistics.median(papermill_times)
    results = {
        "steps": STEPS,
        "repeats": args.repeats,
        "kit_run_s": kit_times,
        "papermill_loop_s": papermill_times,
        "kit_run_median_s": kit_median,
        "papermill_loop_median_s": papermill_median,
        "kit_over_papermill": kit_median / papermill_median,
        "import_python_s": time_import("sys"),
        "import_kit_s": time_import("kit"),
        "import_nbformat_s": time_import("nbformat"),
    }
    rows = [
        ("kit run, 5 notebooks (median)", f"{kit_median:.2f} s"),
        ("papermill loop, 5 notebooks (median)", f"{papermill_median:.2f} s"),
        ("kit / papermill", f"{results['kit_over_papermill']:.3f}x  (target <= 1.10x)"),
        ('python -c "import kit"', f"{results['import_kit_s']:.3f} s  (target < 0.3 s)"),
        ('python -c "import sys" (interpreter start)', f"{results['import_python_s']:.3f} s"),
        ('python -c "import nbformat"', f"{results['import_nbformat_s']:.3f} s"),
    ]
    table([(label, value) for label, value in rows])
    save("runner_overhead", results)


if __name__ == "__main__":
    main()
