"""`kit sweep` with real kernels and a real MLflow SQLite store, on a tiny two-step pipeline:
`prep` (not swept: runs once) -> `train` (swept), whose `score` metric judges the variants."""

from __future__ import annotations

import os
import signal
import time

import pytest

from conftest import Project

pytestmark = pytest.mark.e2e

PREP = """
import os, pathlib
pathlib.Path(os.environ["KIT_PROJECT_ROOT"], "executions.txt").open("a").write("prep\\n")
pathlib.Path(out_path).write_text(str(rows))
"""
TRAIN = """
import os, pathlib, time, mlflow
pathlib.Path(os.environ["KIT_PROJECT_ROOT"], "executions.txt").open("a").write(f"train {lr} {depth}\\n")
time.sleep(pause)
if lr >= 0.5:
    raise ValueError(f"lr {lr} diverges")
score = depth * 10 - abs(lr - 0.1) * 100 + int(pathlib.Path(in_path).read_text())
pathlib.Path(out_path).write_text(f"model lr={lr} depth={depth}")
mlflow.log_metric("score", score)
"""
STEPS = """
model: tiny-model
steps:
  - {name: prep, notebook: notebooks/prep.ipynb, outputs: {out_path: rows.txt}}
  - name: train
    notebook: notebooks/train.ipynb
    inputs: {in_path: prep.out_path}
    outputs: {out_path: model.txt}
"""
PROMOTE = """
gates:
  - {type: metric_threshold, step: train, metric: score, min: MIN}
promote:
  alias: champion
  source: {step: train, output: out_path}
"""
GRID = ("--grid", "train.lr=0.1,0.2", "--grid", "train.depth=2,3", "--metric", "train.score")


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    root = tmp_path_factory.mktemp("sweep")
    project = Project(root)
    project.notebook("prep.ipynb", 'out_path = "rows.txt"\nrows = 1', PREP)
    project.notebook("train.ipynb", 'in_path = ""\nout_path = "m.txt"\nlr = 0.1\ndepth = 3\npause = 0.0', TRAIN)
    project.pipeline("name: tiny\n" + STEPS, "tiny.yaml")
    project.pipeline("name: gated\n" + STEPS + PROMOTE.replace("MIN", "0"), "gated.yaml")
    project.pipeline("name: strict\n" + STEPS + PROMOTE.replace("MIN", "1000"), "strict.yaml")
    project.pipeline("name: blocked\n" + STEPS + """
sweep:
  grid:
    train.lr: [0.1, 0.2]
    train.depth: [2, 3]
  metric: train.score
  direction: max
""", "blocked.yaml")
    return project


def executed(project) -> list[str]:
    log = project.root / "executions.txt"
    lines = sorted(log.read_text().splitlines()) if log.exists() else []
    log.unlink(missing_ok=True)
    return lines


def sweep_runs(project, experiment: str) -> tuple:
    """The latest sweep run, its variant runs by number, and every step run by variant number."""
    runs = project.runs(experiment)
    parent = [r for r in runs if r.data.tags.get("kit.kind") == "sweep"][-1]
    variants = {int(r.data.tags["kit.sweep.variant"]): r for r in runs
                if r.data.tags.get("mlflow.parentRunId") == parent.info.run_id}
    steps = {n: {r.data.tags["kit.step"]: r for r in runs if r.data.tags.get("mlflow.parentRunId") == v.info.run_id}
             for n, v in variants.items()}
    return parent, variants, steps


def test_grid_of_2x2_runs_4_nested_variants_and_the_shared_step_once(tiny):
    done = tiny.kit("sweep", "pipelines/tiny.yaml", *GRID, "--direction", "max")
    assert done.returncode == 0, done.stdout + done.stderr
    assert executed(tiny) == ["prep", "train 0.1 2", "train 0.1 3", "train 0.2 2", "train 0.2 3"]
    parent, variants, steps = sweep_runs(tiny, "tiny")
    assert parent.info.status == "FINISHED" and sorted(variants) == [1, 2, 3, 4]
    for number, variant in variants.items():
        assert variant.info.status == "FINISHED" and variant.data.tags["kit.sweep.status"] == "done"
        assert set(steps[number]) == {"prep", "train"}
    states = sorted(s["prep"].data.tags["kit.status"] for s in steps.values())
    assert states == ["cached", "cached", "cached", "finished"]
    best = parent.data.tags["kit.sweep.best_run_id"]
    assert variants[int(parent.data.tags["kit.sweep.best_variant"])].info.run_id == best
    assert tiny.client().get_run(best).data.params == {"train.lr": "0.1", "train.depth": "3"}
    assert tiny.client().get_run(best).data.metrics["train.score"] == 31
    assert "best v" in done.stdout and "train.score = 31" in done.stdout
    logged = {a.path for a in tiny.client().list_artifacts(parent.info.run_id, "sweep")}
    assert {"sweep/variants.csv", "sweep/variants.html", "sweep/train.lr.png", "sweep/train.depth.png"} <= logged
