"""The runner with real papermill kernels and a real MLflow SQLite store."""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path

import nbformat
import pytest

pytestmark = pytest.mark.e2e

WRITE = """
from pathlib import Path
Path(out_path).write_text(f"{label} {os.environ['MLFLOW_RUN_ID']}")
"""


def chain(project) -> Path:
    """ok -> boom -> after, plus `aside`, which needs nothing and must still run."""
    project.notebook("ok.ipynb", 'out_path = "o.txt"\nlabel = "ok"', "import os, mlflow", WRITE,
                     "mlflow.log_metric('rows', 3)")
    project.notebook("boom.ipynb", 'in_path = "o.txt"', "x = 1", "raise ValueError('boom: bad rows')", "print('never')")
    project.notebook("after.ipynb", 'n = 1', "print(n)")
    return project.pipeline("""
        name: chain
        model: chain-model
        steps:
          - name: ok
            notebook: notebooks/ok.ipynb
            outputs: {out_path: o.txt}
          - name: boom
            notebook: notebooks/boom.ipynb
            inputs: {in_path: ok.out_path}
          - name: after
            notebook: notebooks/after.ipynb
            needs: [boom]
          - name: aside
            notebook: notebooks/after.ipynb
    """)


def by_name(runs):
    return {r.info.run_name: r for r in runs}


def test_failing_cell_stops_dependents_and_keeps_the_traceback(project):
    done = project.kit("run", str(chain(project)))
    assert done.returncode == 1, done.stderr
    assert "step 'boom' (notebooks/boom.ipynb) failed in cell 3 of the notebook (In [4] in the executed copy)" in done.stderr
    assert "ValueError: boom: bad rows" in done.stderr
    assert "not run because a step they need failed: after" in done.stderr
    assert "[after] skipped: needs 'boom'" in done.stderr

    runs = by_name(project.runs("chain"))
    assert runs["chain"].info.status == "FAILED"
    assert runs["boom"].info.status == "FAILED" and "boom: bad rows" in runs["boom"].data.tags["kit.error"]
    assert runs["ok"].info.status == "FINISHED" and runs["ok"].data.metrics["rows"] == 3
    assert runs["aside"].info.status == "FINISHED"  # independent of the failure
    assert "after" not in runs

    saved = done.stderr.split("executed notebook with the traceback: ")[1].splitlines()[0]
    nb = nbformat.read(saved, as_version=4)
    errors = [o for c in nb.cells for o in c.get("outputs", []) if o.get("output_type") == "error"]
    assert errors and errors[0]["evalue"] == "boom: bad rows"
    artifacts = [a.path for a in project.client().list_artifacts(runs["boom"].info.run_id, "notebook")]
    assert "notebook/boom.ipynb" in artifacts and "notebook/boom.html" in artifacts


def test_step_runs_nest_under_the_pipeline_run_with_params_and_outputs(project):
    project.notebook("ok.ipynb", 'out_path = "o.txt"\nlabel = "ok"', "import os", WRITE)
    path = project.pipeline("""
        name: single
        model: m
        steps:
          - name: write
            notebook: notebooks/ok.ipynb
            parameters: {label: hello}
            outputs: {out_path: o.txt}
    """)
    done = project.kit("run", str(path), "-p", "write.label=bye")
    assert done.returncode == 0, done.stderr
    runs = by_name(project.runs("single"))
    parent, step = runs["single"], runs["write"]
    assert step.data.tags["mlflow.parentRunId"] == parent.info.run_id
    assert step.data.params["label"] == "bye"
    assert step.data.params["out_path"].endswith("/write/o.txt")
    assert step.data.metrics["duration_s"] > 0
    assert 20 < step.data.metrics["peak_memory_mb"] < 2000  # the kernel's own high-water mark
    assert parent.data.tags["kit.status"] == "finished"
    client = project.client()
    written = Path(client.download_artifacts(step.info.run_id, "outputs/out_path/o.txt"))
    assert written.read_text() == f"bye {step.info.run_id}"  # plain mlflow env reached the kernel
    assert [a.path for a in client.list_artifacts(parent.info.run_id, "pipeline")][0] == "pipeline/overrides.json"
    assert "[write] cell 2/" in done.stderr and "[write] done in" in done.stderr


def test_kernel_that_dies_gives_a_clear_error(project):
    project.notebook("die.ipynb", "n = 1", "import os", "os._exit(3)")
    path = project.pipeline("""
        name: dies
        model: m
        steps:
          - {name: die, notebook: notebooks/die.ipynb}
    """)
    done = project.kit("run", str(path), timeout=120)
    assert done.returncode == 1
    assert "step 'die' (notebooks/die.ipynb): the kernel died" in done.stderr
    assert by_name(project.runs("dies"))["die"].info.status == "FAILED"


def test_step_timeout_stops_the_kernel(project):
    project.notebook("slow.ipynb", "n = 1", "import time", "time.sleep(300)")
    path = project.pipeline("""
        name: slow
        model: m
        steps:
          - {name: slow, notebook: notebooks/slow.ipynb, timeout: 3}
    """)
    started = time.monotonic()
    done = project.kit("run", str(path), timeout=120)
    assert done.returncode == 1
    assert "step 'slow' (notebooks/slow.ipynb) timed out after 3s" in done.stderr
    assert time.monotonic() - started < 60


def test_declared_output_that_was_not_written(project):
    project.notebook("lazy.ipynb", 'out_path = "o.txt"', "print('forgot to write')")
    path = project.pipeline("""
        name: lazy
        model: m
        steps:
          - {name: lazy, notebook: notebooks/lazy.ipynb, outputs: {out_path: o.txt}}
    """)
    done = project.kit("run", str(path))
    assert done.returncode == 1
    assert "did not write its declared output out_path" in done.stderr


@pytest.mark.parametrize("signum, code", [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_interrupt_shuts_kernels_down_and_marks_runs_killed(project, signum, code):
    project.notebook("wait.ipynb", 'pid_path = "pid"',
                     "import os, time", "open(pid_path, 'w').write(str(os.getpid()))", "time.sleep(300)")
    pid_file = project.root / "kernel.pid"
    path = project.pipeline(f"""
        name: waits
        model: m
        steps:
          - {{name: wait, notebook: notebooks/wait.ipynb, parameters: {{pid_path: "{pid_file}"}}}}
    """)
    process = project.popen("run", str(path))
    deadline = time.monotonic() + 120
    while not pid_file.exists() or not pid_file.read_text():
        assert time.monotonic() < deadline and process.poll() is None, process.stderr.read()
        time.sleep(0.2)
    time.sleep(0.5)  # now inside the sleeping cell
    process.send_signal(signum)
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == code, stderr
    assert "interrupted" in stderr
    runs = by_name(project.runs("waits"))
    assert runs["waits"].info.status == "KILLED" and runs["wait"].info.status == "KILLED"
    kernel_pid = int(pid_file.read_text())
    time.sleep(0.5)
    with pytest.raises(ProcessLookupError):
        os.kill(kernel_pid, 0)


def parallel_pipeline(project) -> Path:
    project.notebook("stamp.ipynb", 'out_path = "o.json"\nlabel = "a"', """
        import json, os, time
        start = time.time(); time.sleep(1.5)
        json.dump({"label": label, "run": os.environ["MLFLOW_RUN_ID"], "start": start, "end": time.time(),
                   "cwd": os.getcwd()}, open(out_path, "w"))
    """)
    return project.pipeline("""
        name: fan
        model: m
        steps:
          - {name: left, notebook: notebooks/stamp.ipynb, parameters: {label: left}, outputs: {out_path: o.json}}
          - {name: right, notebook: notebooks/stamp.ipynb, parameters: {label: right}, outputs: {out_path: o.json}}
    """)


def test_independent_steps_run_in_parallel_each_in_its_own_folder(project):
    done = project.kit("run", str(parallel_pipeline(project)), "--jobs", "2")
    assert done.returncode == 0, done.stderr
    workspace = Path(done.stdout.split("workspace  ")[1].split()[0])
    left = json.loads((workspace / "left" / "o.json").read_text())
    right = json.loads((workspace / "right" / "o.json").read_text())
    assert left["cwd"] == str(workspace / "left") and right["cwd"] == str(workspace / "right")
    assert left["start"] < right["end"] and right["start"] < left["end"]  # they overlapped


def test_two_runs_at_once_both_succeed_in_separate_workspaces(project):
    path = parallel_pipeline(project)
    first, second = project.popen("run", str(path)), project.popen("run", str(path))
    outputs = [p.communicate(timeout=300) for p in (first, second)]
    assert first.returncode == 0 and second.returncode == 0, outputs
    workspaces = {Path(out.split("workspace  ")[1].split()[0]) for out, _ in outputs}
    assert len(workspaces) == 2
    runs_seen = {json.loads((w / "left" / "o.json").read_text())["run"] for w in workspaces}
    assert len(runs_seen) == 2
    parents = [r for r in project.runs("fan") if r.data.tags.get("kit.kind") == "pipeline"]
    assert [r.info.status for r in parents] == ["FINISHED", "FINISHED"]


def test_a_step_kernel_is_shut_down_once_its_step_is_over(project):
    project.notebook("first.ipynb", 'pid_path = "pid"', "import os", "open(pid_path, 'w').write(str(os.getpid()))")
    project.notebook("second.ipynb", 'pid_path = "pid"', """
        import os, time
        pid = int(open(pid_path).read())
        for _ in range(50):  # shut down gracefully while this step starts: allow it a moment
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                break
            time.sleep(0.1)
        else:
            raise RuntimeError(f"the first step's kernel {pid} is still running")
    """)
    path = project.pipeline("""
        name: handover
        model: m
        steps:
          - {name: first, notebook: notebooks/first.ipynb, outputs: {pid_path: pid.txt}}
          - {name: second, notebook: notebooks/second.ipynb, inputs: {pid_path: first.pid_path}}
    """)
    done = project.kit("run", str(path))
    assert done.returncode == 0, done.stderr
