"""Cached steps, with real kernels and a real MLflow SQLite store: a step whose cache key
(code cells, parameters, upstream content, contracts, lock hash, kit version) matches an earlier
successful execution is not executed; its outputs are restored and its run says where from."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import nbformat
import pytest

from conftest import Project

pytestmark = pytest.mark.e2e

PARAMETERS = 'in_path = ""\nout_path = "out.txt"\nfactor = 1'
# Each execution appends the step's name to executions.txt in the project: the test's record
# of which kernels ran.
STEP = """
import os, pathlib, mlflow
pathlib.Path(os.environ["KIT_PROJECT_ROOT"], "executions.txt").open("a").write(os.environ["KIT_STEP"] + "\\n")
if pathlib.Path(os.environ["KIT_PROJECT_ROOT"], "fail-" + os.environ["KIT_STEP"]).exists():
    raise RuntimeError("asked to fail")
text = pathlib.Path(in_path).read_text() if in_path else ""
pathlib.Path(out_path).write_text(text + f"{os.environ['KIT_STEP']}:{factor}\\n")
mlflow.log_metric("factor", factor)
"""
PIPELINE = """
name: chain
model: chain-model
steps:
  - {name: a, notebook: notebooks/a.ipynb, outputs: {out_path: a.txt}}
  - {name: b, notebook: notebooks/b.ipynb, inputs: {in_path: a.out_path}, outputs: {out_path: b.csv}}
  - {name: c, notebook: notebooks/c.ipynb, inputs: {in_path: b.out_path}, outputs: {out_path: c.txt}}
"""


def write_chain(project: Project) -> Path:
    for name in "abc":
        project.notebook(f"{name}.ipynb", PARAMETERS, STEP)
    return project.pipeline(PIPELINE)


@pytest.fixture
def chain(project):
    return write_chain(project)


@pytest.fixture(scope="module")
def chain_run_once(tmp_path_factory) -> Project:
    """The chain after one successful run; tests that start there get a clone (`ran`)."""
    project = Project(tmp_path_factory.mktemp("chain-run-once"))
    run(project, str(write_chain(project)))
    executed(project)
    return project


@pytest.fixture
def ran(chain_run_once, tmp_path, monkeypatch) -> tuple[Project, Path]:
    project = chain_run_once.clone(tmp_path / "project")
    monkeypatch.setenv("KIT_PROJECT_ROOT", str(project.root))
    return project, project.root / "pipelines" / "p.yaml"


def executed(project) -> list[str]:
    """The steps whose kernels ran since the last call."""
    log = project.root / "executions.txt"
    names = sorted(log.read_text().split()) if log.exists() else []
    log.unlink(missing_ok=True)
    return names


def run(project, *args: str, code: int = 0) -> subprocess.CompletedProcess:
    done = project.kit("run", *args)
    assert done.returncode == code, done.stdout + done.stderr
    return done


def last_runs(project) -> dict:
    """The step runs of the latest pipeline run, by step name."""
    runs = project.runs("chain")
    parent = [r for r in runs if r.data.tags.get("kit.kind") == "pipeline"][-1]
    return {r.data.tags["kit.step"]: r for r in runs if r.data.tags.get("mlflow.parentRunId") == parent.info.run_id}


def edit_code(project, name: str, line: str) -> None:
    path = project.root / "notebooks" / name
    nb = nbformat.read(path, as_version=4)
    [cell for cell in nb.cells if cell.cell_type == "code"][-1].source += "\n" + line
    nbformat.write(nb, path)


def workspace_output(done: subprocess.CompletedProcess, step: str, name: str) -> str:
    folder = Path(done.stdout.split("workspace  ")[1].splitlines()[0])
    return (folder / step / name).read_text()


def test_unchanged_rerun_executes_no_kernel_and_cached_runs_say_where_from(project, chain):
    first = run(project, str(chain))
    assert executed(project) == ["a", "b", "c"]
    producers = last_runs(project)

    again = run(project, str(chain))
    assert executed(project) == []
    assert "up to date, all 3 steps cached" in again.stdout

    edit_code(project, "c.ipynb", "print('changed')")
    partly = run(project, str(chain))
    assert executed(project) == ["c"]
    assert "all 3 steps done (2 cached: a, b)" in partly.stdout
    assert "[a] cached" in partly.stderr and "[b] cached" in partly.stderr and "[c] running" in partly.stderr
    runs = last_runs(project)
    for name in "ab":
        tags = runs[name].data.tags
        assert tags["kit.status"] == "cached" and runs[name].info.status == "FINISHED"
        assert tags["kit.cache.source_run"] == producers[name].info.run_id
        assert runs[name].data.metrics["factor"] == 1  # copied: gates and the UI see it as usual
        logged = [a.path for a in project.client().list_artifacts(runs[name].info.run_id, "outputs")]
        assert logged == [f"outputs/out_path"]
    assert "kit.cache.source_run" not in runs["c"].data.tags
    assert workspace_output(partly, "c", "c.txt") == workspace_output(first, "c", "c.txt") == "a:1\nb:1\nc:1\n"
    summary = json.loads(Path(project.client().download_artifacts(
        runs["a"].data.tags["mlflow.parentRunId"], "pipeline/summary.json")).read_text())
    assert summary["steps"]["a"]["state"] == "cached"
    assert summary["steps"]["a"]["cache_source_run"] == producers["a"].info.run_id


def test_markdown_and_outputs_do_not_count_code_and_parameters_do(ran):
    project, chain = ran

    path = project.root / "notebooks" / "b.ipynb"
    nb = nbformat.read(path, as_version=4)
    nb.cells.append(nbformat.v4.new_markdown_cell("# notes"))
    nb.cells[-2].outputs = [nbformat.v4.new_output("stream", name="stdout", text="old output\n")]
    nb.cells[-2].execution_count = 7
    nb.metadata["widgets"] = {"anything": 1}
    nbformat.write(nb, path)
    assert "up to date" in run(project, str(chain)).stdout
    assert executed(project) == []

    run(project, str(chain), "-p", "b.factor=2")  # a parameter: that step and what follows
    assert executed(project) == ["b", "c"]

    edit_code(project, "b.ipynb", "# a comment is code")  # b runs again, writes the same bytes: c is cached
    run(project, str(chain), "-p", "b.factor=2")
    assert executed(project) == ["b"]

    edit_code(project, "b.ipynb", "pathlib.Path(out_path).write_text('edited')")  # other bytes: c runs too
    run(project, str(chain), "-p", "b.factor=2")
    assert executed(project) == ["b", "c"]


def test_upstream_content_decides_not_upstream_execution(ran):
    project, chain = ran
    edit_code(project, "a.ipynb", "unused = 1")  # a runs again and writes the same bytes
    run(project, str(chain))
    assert executed(project) == ["a"]

    run(project, str(chain), "-p", "a.factor=3")  # a writes other bytes: b and c see new content
    assert executed(project) == ["a", "b", "c"]


def test_contract_and_lock_are_in_the_key(project, chain):
    (project.root / "data_contracts").mkdir()
    contract = project.root / "data_contracts" / "b.json"
    contract.write_text(json.dumps({"expectations": [
        {"type": "expect_table_row_count_to_be_between", "kwargs": {"min_value": 1, "max_value": 10}}]}))
    text = chain.read_text().replace("outputs: {out_path: b.csv}}", "outputs: {out_path: b.csv},\n"
                                     "     contracts: {out_path: data_contracts/b.json}}")
    chain.write_text(text)
    run(project, str(chain))
    executed(project)
    edit_code(project, "c.ipynb", "print('changed')")
    run(project, str(chain))
    assert executed(project) == ["c"]
    assert last_runs(project)["b"].data.tags["kit.contract.out_path"] == "passed"  # the producer's result, copied

    contract.write_text(json.dumps({"expectations": [
        {"type": "expect_table_row_count_to_be_between", "kwargs": {"min_value": 1, "max_value": 11}}]}))
    run(project, str(chain))
    assert executed(project) == ["b"]  # the contract is b's; b wrote the same bytes, so c is cached

    (project.root / "uv.lock").write_text("# another environment\n")
    run(project, str(chain))
    assert executed(project) == ["a", "b", "c"]


def test_damaged_entry_is_a_miss_with_a_warning(ran):
    project, chain = ran
    producer = last_runs(project)["a"]
    artifact = Path(project.client().download_artifacts(producer.info.run_id, "outputs/out_path/a.txt"))
    stored = Path(producer.info.artifact_uri.removeprefix("file://")) / "outputs" / "out_path" / "a.txt"
    assert stored.read_text() == artifact.read_text()
    stored.write_text("a:tampered\n")
    edit_code(project, "c.ipynb", "print('changed')")

    done = run(project, str(chain))
    assert "step 'a': cache entry from run" in done.stderr and "does not match its recorded hash" in done.stderr
    assert executed(project) == ["a", "c"]  # b: a's fresh output has the original bytes
    assert workspace_output(done, "a", "a.txt") == "a:1\n"

    key = last_runs(project)["a"].data.tags["kit.cache.key"]
    index = project.root / "mlruns" / "cache" / "entries" / f"{key}.json"
    index.write_text("{not json")
    edit_code(project, "c.ipynb", "print('changed again')")
    done = run(project, str(chain))
    assert "is unreadable" in done.stderr  # then found in the store, whole
    assert executed(project) == ["c"]


def test_force_and_force_step(ran):
    project, chain = ran
    run(project, str(chain), "--force")
    assert executed(project) == ["a", "b", "c"]
    run(project, str(chain), "--force", "b")
    assert executed(project) == ["b", "c"]
    bad = run(project, str(chain), "--force", "nope", code=2)
    assert "--force nope: no such step in p.yaml (steps: a, b, c)" in bad.stderr


def test_only_runs_the_steps_named_and_takes_upstream_from_the_cache(project, chain):
    missing = run(project, str(chain), "--only", "c", code=2)
    assert "--only c: upstream step 'a' is not in the cache" in missing.stderr
    assert "Traceback" not in missing.stderr
    assert executed(project) == []

    run(project, str(chain))
    executed(project)
    done = run(project, str(chain), "--only", "b")
    assert executed(project) == ["b"]
    assert set(last_runs(project)) == {"a", "b"}  # c is downstream: not part of it
    assert "1 cached: a" in done.stdout


def test_cache_false_step_always_runs(project, chain):
    chain.write_text(chain.read_text().replace("outputs: {out_path: b.csv}}", "outputs: {out_path: b.csv}, cache: false}"))
    run(project, str(chain))
    executed(project)
    done = run(project, str(chain))
    assert "up to date" not in done.stdout
    assert executed(project) == ["b"]  # same bytes from b: c stays cached


def test_failed_run_resumes_at_the_failed_step(project, chain):
    (project.root / "fail-b").write_text("")
    run(project, str(chain), code=1)
    assert executed(project) == ["a", "b"]
    (project.root / "fail-b").unlink()
    done = run(project, str(chain))
    assert executed(project) == ["b", "c"]
    assert "1 cached: a" in done.stdout


def test_cache_list_and_prune(ran):
    project, chain = ran
    listed = project.kit("cache", "list")
    assert listed.returncode == 0, listed.stderr
    assert "3 entries" in listed.stdout and "chain" in listed.stdout

    kept = project.kit("cache", "prune", "--older-than", "1")
    assert kept.returncode == 0 and "pruned 0 cache entries older than 1 days, kept 3" in kept.stdout
    pruned = project.kit("cache", "prune", "--older-than", "0")
    assert "pruned 3 cache entries" in pruned.stdout
    assert "the cache is empty" in project.kit("cache", "list").stdout
    run(project, str(chain))
    assert executed(project) == ["a", "b", "c"]


def test_two_runs_filling_the_same_key_at_once(project, chain):
    first, second = project.popen("run", str(chain)), project.popen("run", str(chain))
    for process in (first, second):
        _, err = process.communicate(timeout=600)
        assert process.returncode == 0, err
    executed(project)
    edit_code(project, "c.ipynb", "print('changed')")
    done = run(project, str(chain))
    assert "warning" not in done.stderr
    assert executed(project) == ["c"]
