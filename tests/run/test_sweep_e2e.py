"""`kit sweep` with real kernels and a real MLflow SQLite store, on a tiny two-step pipeline:
`prep` (not swept: runs once) -> `train` (swept), whose `score` metric judges the variants."""

from __future__ import annotations

from pathlib import Path

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
    assert tiny.client().get_run(best).data.tags["kit.sweep.metric"] == "train.score=31.0"
    assert tiny.client().get_run(best).data.tags["kit.sweep.param.train.lr"] == "0.1"
    assert "best v" in done.stdout and "train.score = 31" in done.stdout
    logged = {a.path for a in tiny.client().list_artifacts(parent.info.run_id, "sweep")}
    assert {"sweep/variants.csv", "sweep/variants.html", "sweep/train.lr.png", "sweep/train.depth.png"} <= logged
    table = Path(tiny.client().download_artifacts(parent.info.run_id, "sweep/variants.csv")).read_text().splitlines()
    assert table[0] == "best,variant,train.lr,train.depth,train.score,status,seconds,run_id,error"
    assert len(table) == 5 and table[1].startswith("yes,") and f",31.0,done," in table[1] and best in table[1]


def test_sweep_block_is_the_same_as_flags_and_flags_override_it(tiny):
    """blocked.yaml's `sweep:` block holds the grid, metric and direction of the first test: the same
    4 variants, all served by the cache this time, the same best; --direction min picks another."""
    done = tiny.kit("sweep", "pipelines/blocked.yaml")
    assert done.returncode == 0, done.stdout + done.stderr
    assert executed(tiny) == []  # every step of every variant from the cache
    parent, variants, _ = sweep_runs(tiny, "blocked")
    assert len(variants) == 4
    best = tiny.client().get_run(parent.data.tags["kit.sweep.best_run_id"])
    assert best.data.params == {"train.lr": "0.1", "train.depth": "3"}

    lowest = tiny.kit("sweep", "pipelines/blocked.yaml", "--direction", "min", "--no-promote")
    assert lowest.returncode == 0, lowest.stdout + lowest.stderr
    parent, _, _ = sweep_runs(tiny, "blocked")
    best = tiny.client().get_run(parent.data.tags["kit.sweep.best_run_id"])
    assert best.data.params == {"train.lr": "0.2", "train.depth": "2"} and best.data.metrics["train.score"] == 11
    assert parent.data.tags["kit.sweep.direction"] == "min"


@pytest.mark.parametrize("args, message", [
    (("--grid", "trian.lr=0.1,0.2"), "--grid trian.lr=0.1,0.2: parameter override for unknown step 'trian'"),
    (("--grid", "train.lrr=0.1"), "--grid train.lrr=0.1: step 'train', parameter 'lrr': notebooks/train.ipynb has "
                                  "no such parameter"),
    (("--grid", "train.depth=2,deep"), "--grid train.depth=2,deep: step 'train', parameter 'depth': expected int "
                                       "like the default 3, got str 'deep'"),
    (("--grid", "train.lr=1e-3..0.5"), "a range (0.001..0.5) needs --search optuna"),
    (("--grid", "train.lr=0.1", "--metric", "trian.score"), "--metric trian.score: no step 'trian'"),
])
def test_bad_grid_or_metric_is_exit_2_naming_it_and_nothing_runs(tiny, args, message):
    before = len(tiny.runs("tiny"))
    done = tiny.kit("sweep", "pipelines/tiny.yaml", "--metric", "train.score", "--direction", "max", *args)
    assert done.returncode == 2, done.stdout + done.stderr
    assert message in done.stderr
    assert len(tiny.runs("tiny")) == before and executed(tiny) == []


def test_bad_sweep_block_is_exit_2_at_its_line(tiny):
    path = tiny.pipeline("name: badblock\n" + STEPS + "sweep:\n  grid: {train.lr: [0.1]}\n  direction: up\n",
                         "badblock.yaml")
    done = tiny.kit("sweep", str(path), "--metric", "train.score")
    assert done.returncode == 2
    lines = path.read_text().splitlines()
    assert f"badblock.yaml:{lines.index('  direction: up') + 1}: sweep.direction:" in done.stderr

    path = tiny.pipeline("name: badvalue\n" + STEPS + "sweep:\n  grid:\n    train.depth: [2, deep]\n", "badvalue.yaml")
    line = path.read_text().splitlines().index("    train.depth: [2, deep]") + 1
    for args in (("validate", str(path)), ("sweep", str(path), "--metric", "train.score", "--direction", "max")):
        done = tiny.kit(*args)
        assert done.returncode == 2, (args, done.stdout + done.stderr)
        assert (f"badvalue.yaml:{line}: step 'train', parameter 'depth': expected int like the default 3, "
                f"got str 'deep'") in done.stderr, args


def test_a_failing_variant_is_listed_and_the_others_finish(tiny):
    done = tiny.kit("sweep", "pipelines/tiny.yaml", "--grid", "train.lr=0.5,0.1", "--grid", "train.depth=3",
                    "--metric", "train.score", "--direction", "max")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "v1 failed: step 'train'" in done.stdout and "ValueError: lr 0.5 diverges" in done.stdout
    parent, variants, _ = sweep_runs(tiny, "tiny")
    assert variants[1].info.status == "FAILED" and variants[1].data.tags["kit.sweep.status"] == "failed"
    assert variants[2].info.status == "FINISHED" and parent.data.tags["kit.sweep.best_variant"] == "2"
    assert parent.data.metrics["variants_failed"] == 1 and parent.data.metrics["variants_done"] == 1

    # The same variants again: the good one cached, its step logged no `loss`, so it fails too.
    every = tiny.kit("sweep", "pipelines/tiny.yaml", "--grid", "train.lr=0.5,0.1", "--grid", "train.depth=3",
                     "--metric", "train.loss", "--direction", "min")
    assert every.returncode == 1, every.stdout + every.stderr
    assert "every variant failed" in every.stderr
    assert "step 'train' logged no metric 'loss' (it logged: score)" in every.stdout
    assert sweep_runs(tiny, "tiny")[0].info.status == "FAILED"
    executed(tiny)


def test_optuna_makes_one_tracked_run_per_trial(tiny):
    """Categorical choices only (the grid's values, cached by now): the test pays for no kernel.
    Ranges (LOW..HIGH) are covered by test_sweep_settings.py."""
    done = tiny.kit("sweep", "pipelines/tiny.yaml", "--search", "optuna", "--trials", "3", "--grid",
                    "train.lr=0.1,0.2", "--grid", "train.depth=2,3", "--metric", "train.score", "--direction", "max",
                    "--seed", "7")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "optuna: 3 trials, TPE sampler, seed 7" in done.stdout + done.stderr
    parent, variants, steps = sweep_runs(tiny, "tiny")
    assert sorted(variants) == [1, 2, 3] and parent.data.params["search"] == "optuna"
    for number, variant in variants.items():
        assert variant.data.params["train.lr"] in ("0.1", "0.2") and variant.data.params["train.depth"] in ("2", "3")
        assert variant.data.metrics["train.score"] == steps[number]["train"].data.metrics["score"]
    executed(tiny)


def test_no_promote_leaves_the_registry_alone_and_the_best_is_promoted_otherwise(tiny):
    client = tiny.client()
    done = tiny.kit("sweep", "pipelines/gated.yaml", *GRID, "--direction", "max", "--no-promote")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "not promoted (--no-promote)" in done.stdout
    assert client.search_model_versions("name='tiny-model'") == []

    done = tiny.kit("sweep", "pipelines/gated.yaml", *GRID, "--direction", "max")
    assert done.returncode == 0, done.stdout + done.stderr
    parent, variants, steps = sweep_runs(tiny, "gated")
    best = int(parent.data.tags["kit.sweep.best_variant"])
    version = client.get_model_version_by_alias("tiny-model", "champion")
    assert version.run_id == steps[best]["train"].info.run_id
    assert version.tags["kit.pipeline_run_id"] == variants[best].info.run_id
    assert client.get_run(variants[best].info.run_id).data.tags["kit.gates"] == "passed"
    assert "champion moved (none) -> v1" in done.stdout

    refused = tiny.kit("sweep", "pipelines/strict.yaml", *GRID, "--direction", "max")
    assert refused.returncode == 3, refused.stdout + refused.stderr
    assert "was refused by a gate" in refused.stderr and "FAIL" in refused.stdout
    parent, variants, _ = sweep_runs(tiny, "strict")
    assert parent.info.status == "FAILED"
    assert variants[int(parent.data.tags["kit.sweep.best_variant"])].info.status == "FAILED"
    assert executed(tiny) == []  # every variant of the three sweeps from the cache


def test_sigterm_stops_every_running_variant_and_marks_the_runs_killed(tiny):
    import subprocess

    from conftest import KIT, ctrl_c_as_a_terminal_sends_it

    env = {**tiny.env, "KIT_TEST_SIGNAL_AT": "step:SIGTERM"}
    done = subprocess.run([*KIT, "sweep", "pipelines/tiny.yaml", "--grid", "train.pause=20.0,20.5",
                           "--metric", "train.score", "--direction", "max"], cwd=tiny.root, env=env,
                          capture_output=True, text=True, timeout=120, preexec_fn=ctrl_c_as_a_terminal_sends_it)
    assert done.returncode == 143, done.stdout + done.stderr
    assert "interrupted by SIGTERM" in done.stderr and "marked KILLED" in done.stderr
    parent, variants, steps = sweep_runs(tiny, "tiny")
    assert parent.info.status == "KILLED" and variants
    for number, variant in variants.items():
        assert variant.info.status == "KILLED", variant.data.tags
        assert steps[number]["train"].info.status == "KILLED"
    executed(tiny)
