"""Runner overhead as a user pays it: one whole `kit run` process from the shell against one
bare papermill loop process, same 5 notebooks, same environment and kernel (`kit`).

A pipeline of 5 trivial notebooks (a chain, so nothing runs in parallel) is run as
`kit run bench.yaml` (validation, MLflow runs, HTML renders, artifacts included: every import
and the store's opening are paid, as at the shell), and as `python -c "...papermill
loop..."` executing the same notebooks in sequence in one fresh process. Rounds are
interleaved (the order alternates each round) after one warm-up of each, so shared load
weighs on both alike; figures are medians of N rounds. Each process's CPU time (its kernels
included) is reported too: on a loaded machine it is the steadier figure.
Targets: kit run at most 1.10x the papermill loop; `python -c "import kit"` under 0.3 s.

    .venv/bin/python benchmarks/runner_overhead.py [--rounds 5] [--import-repeats 10]

Prints a table and writes benchmarks/results/runner_overhead.json.
"""

from __future__ import annotations

import argparse
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _report import save, table
from _support import KIT, Scratch

from kit.stats import DEFINITION, percentile

STEPS = 5
KERNEL = "kit"
TARGET = 1.10

# The baseline: what a user would write instead of the kit, in a fresh process.
PAPERMILL_LOOP = """
import sys
from pathlib import Path
import papermill
root, out = Path(sys.argv[1]), Path(sys.argv[2])
for i in range({steps}):
    papermill.execute_notebook(str(root / "notebooks" / f"n{{i}}.ipynb"), str(out / f"n{{i}}.ipynb"),
                               parameters={{"x": i}}, kernel_name="{kernel}", progress_bar=False)
""".format(steps=STEPS, kernel=KERNEL)


def make_project(root: Path) -> Scratch:
    project = Scratch(root, linked=False)
    steps = []
    for i in range(STEPS):
        project.notebook(f"n{i}.ipynb", "x = 1", "y = x + 1", "print(y)")
        needs = f", needs: [s{i - 1}]" if i else ""
        steps.append(f"  - {{name: s{i}, notebook: notebooks/n{i}.ipynb, parameters: {{x: {i}}}{needs}}}")
    (root / "bench.yaml").write_text(f"name: bench\nmodel: bench\nkernel: {KERNEL}\nsteps:\n" + "\n".join(steps) + "\n")
    return project


def timed(command: list[str], project: Scratch, what: str) -> tuple[float, float]:
    """(wall seconds, CPU seconds) of one process from start to exit; the CPU time counts its
    kernels too (children it waited for). On a shared machine the CPU time is the steadier figure."""
    cpu_before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    done = subprocess.run(command, cwd=project.root, env=project.env, capture_output=True, text=True)
    seconds = time.perf_counter() - started
    cpu_after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0:
        raise SystemExit(f"{what} failed (exit {done.returncode}):\n{done.stderr[-3000:]}")
    cpu = (cpu_after.ru_utime - cpu_before.ru_utime) + (cpu_after.ru_stime - cpu_before.ru_stime)
    return seconds, cpu


def time_kit(project: Scratch) -> tuple[float, float]:
    # --force: every step executes, as in the papermill loop (else every round after the first is
    # answered from the step cache; benchmarks/cache.py measures that path)
    return timed([*KIT, "run", "bench.yaml", "--force"], project, "kit run")


def time_papermill(project: Scratch, out: Path) -> tuple[float, float]:
    return timed([sys.executable, "-c", PAPERMILL_LOOP, str(project.root), str(out)], project, "the papermill loop")


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
    parser.add_argument("--rounds", type=int, default=5, help="interleaved rounds after the warm-up (default 5)")
    parser.add_argument("--import-repeats", type=int, default=10)
    args = parser.parse_args()

    kit, papermill = [], []  # (wall, cpu) per round
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        project = make_project(root)
        out = root / "papermill-out"
        out.mkdir()
        time_kit(project), time_papermill(project, out)  # warm-up: the store's creation, the page cache
        for round_number in range(args.rounds):
            # Alternate who goes first, so neither always runs right after the other.
            if round_number % 2:
                papermill.append(time_papermill(project, out))
                kit.append(time_kit(project))
            else:
                kit.append(time_kit(project))
                papermill.append(time_papermill(project, out))
            print(f"round {round_number + 1}/{args.rounds}: kit run {kit[-1][0]:.2f} s, "
                  f"papermill loop {papermill[-1][0]:.2f} s", file=sys.stderr)

    kit_times, papermill_times = [wall for wall, _ in kit], [wall for wall, _ in papermill]
    kit_cpu, papermill_cpu = [cpu for _, cpu in kit], [cpu for _, cpu in papermill]
    kit_p50, papermill_p50 = percentile(kit_times, 50), percentile(papermill_times, 50)
    kit_cpu_p50, papermill_cpu_p50 = percentile(kit_cpu, 50), percentile(papermill_cpu, 50)
    ratios = [k / p for k, p in zip(kit_times, papermill_times)]
    results = {
        "steps": STEPS,
        "kernel": KERNEL,
        "rounds": args.rounds,
        "kit_run_s": kit_times,
        "papermill_loop_s": papermill_times,
        "kit_run_p50_s": kit_p50,
        "papermill_loop_p50_s": papermill_p50,
        "kit_over_papermill": kit_p50 / papermill_p50,
        "kit_over_papermill_per_round": ratios,
        "kit_run_cpu_s": kit_cpu,
        "papermill_loop_cpu_s": papermill_cpu,
        "kit_over_papermill_cpu": kit_cpu_p50 / papermill_cpu_p50,
        "target": TARGET,
        "import_python_s": time_import("sys", args.import_repeats),
        "import_kit_s": time_import("kit", args.import_repeats),
        "import_kit_cli_s": time_import("kit.cli", args.import_repeats),
    }
    rows = [
        (f"kit run, {STEPS} notebooks, whole process (p50 of {args.rounds})", f"{kit_p50:.2f} s"),
        (f"papermill loop, {STEPS} notebooks, whole process (p50 of {args.rounds})", f"{papermill_p50:.2f} s"),
        ("kit run / papermill loop", f"{results['kit_over_papermill']:.3f}x  (target <= {TARGET:.2f}x)"),
        ("per-round ratios", " ".join(f"{r:.2f}" for r in ratios)),
        ("CPU seconds, kit run / papermill loop (p50, kernels included)",
         f"{kit_cpu_p50:.2f} s / {papermill_cpu_p50:.2f} s = {results['kit_over_papermill_cpu']:.2f}x"),
        ('python -c "import kit"', f"{results['import_kit_s']:.3f} s  (target < 0.3 s)"),
        ('python -c "import kit.cli"', f"{results['import_kit_cli_s']:.3f} s"),
        ('python -c "import sys" (interpreter start)', f"{results['import_python_s']:.3f} s"),
    ]
    table([("measure", "figure"), *rows],
          note=f"p50: {DEFINITION}; rounds interleaved after a warm-up; imports: p50 of {args.import_repeats}")
    save("runner_overhead", results)


if __name__ == "__main__":
    main()
