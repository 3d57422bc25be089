"""Kernels started ahead of their steps (kit.run.kernels), with real kernels: a step handed a
warm kernel runs exactly as in a kernel started for it, and no kernel outlives the run."""

from __future__ import annotations

import json
import os
import time
import uuid
from pathlib import Path

import nbformat
import pytest

from conftest import write_notebook
from kit.run.kernels import WarmKernels, release
from kit.run.notebook import Execution

pytestmark = pytest.mark.e2e

SHOW = "import json, os, sys\nprint(json.dumps({'cwd': os.getcwd(), 'run': os.environ.get('MLFLOW_RUN_ID'), 'x': x}))"


def marked(mark: str) -> list[int]:
    """Live processes whose environment carries `mark`."""
    found = []
    for proc in Path("/proc").iterdir():
        try:
            if proc.name.isdigit() and mark.encode() in (proc / "environ").read_bytes():
                found.append(int(proc.name))
        except OSError:
            continue
    return found


def gone(mark: str, seconds: float = 10) -> bool:
    deadline = time.monotonic() + seconds
    while marked(mark) and time.monotonic() < deadline:
        time.sleep(0.1)
    return not marked(mark)


def test_a_warm_kernel_runs_the_step_in_its_own_environment_and_folder(tmp_path):
    mark = f"kit-kernels-test-{uuid.uuid4()}"
    notebook = write_notebook(tmp_path / "show.ipynb", "x = 1", SHOW)
    pool = WarmKernels("kit", 1, {"KIT_TEST_MARK": mark}, cwd=tmp_path)
    step_dir = tmp_path / "step"
    step_dir.mkdir()
    try:
        execution = Execution(input_path=notebook, output_path=step_dir / "show.ipynb", parameters={"x": 5},
                              kernel_name="kit", cwd=step_dir, env={"MLFLOW_RUN_ID": "run-7"},
                              log_path=step_dir / "kernel.log", kernel_pool=pool)
        execution.run()
    finally:
        pool.close()
    executed = nbformat.read(step_dir / "show.ipynb", as_version=4)
    shown = json.loads(executed.cells[-1].outputs[0]["text"])
    assert shown == {"cwd": str(step_dir), "run": "run-7", "x": 5}
    # The hand-over left no trace: cells are numbered from 1 as in a fresh kernel.
    assert [c.execution_count for c in executed.cells if c.cell_type == "code"] == [1, 2, 3]
    assert (step_dir / "kernel.log").is_file()  # the kernel's own output, kept beside the notebook
    assert gone(mark), "the step's kernel outlived its step"


def test_a_finished_steps_kernel_shuts_down_while_the_run_goes_on_and_its_whole_log_is_kept(tmp_path):
    """run() returns when the notebook is done; the kernel's graceful shutdown (its own exit,
    here slowed by an exit handler) runs meanwhile, and wait_released() returns only once the
    kernel is gone and everything it printed, to the end, is kept beside the notebook."""
    mark = f"kit-kernels-test-{uuid.uuid4()}"
    notebook = write_notebook(tmp_path / "slow_exit.ipynb", "x = 1",
                              "import atexit, os, time\n"
                              "atexit.register(lambda: (time.sleep(2), os.write(2, b'kit-said-at-exit')))")
    pool = WarmKernels("kit", 1, {"KIT_TEST_MARK": mark}, cwd=tmp_path)
    log = tmp_path / "kernel.log"
    try:
        execution = Execution(input_path=notebook, output_path=tmp_path / "out.ipynb", parameters={}, kernel_name="kit",
                              cwd=tmp_path, env={}, log_path=log, kernel_pool=pool)
        execution.run()
        assert marked(mark), "run() waited for the kernel's shutdown"
        execution.wait_released()
        assert not marked(mark)
        assert "kit-said-at-exit" in log.read_text()
        assert execution.peak_memory_mb and execution.peak_memory_mb > 20  # read before the kernel went
    finally:
        pool.close()


def test_kernels_never_taken_are_stopped_when_the_run_closes(tmp_path):
    mark = f"kit-kernels-test-{uuid.uuid4()}"
    pool = WarmKernels("kit", 3, {"KIT_TEST_MARK": mark}, cwd=tmp_path)
    deadline = time.monotonic() + 120
    while len(marked(mark)) < 2 and time.monotonic() < deadline:  # two start ahead
        time.sleep(0.1)
    assert len(marked(mark)) >= 2
    pool.close()
    assert gone(mark), f"kernels left running: {marked(mark)}"
    with pytest.raises(RuntimeError, match="stopping"):
        pool.take()


def test_a_kernel_spec_that_cannot_start_fails_the_take_not_the_pool(tmp_path):
    pool = WarmKernels("no-such-kernel-here", 1, {}, cwd=tmp_path)
    try:
        with pytest.raises(Exception, match="no-such-kernel-here"):
            pool.take()
    finally:
        pool.close()
    assert os.listdir(tmp_path) == []  # nothing written into the project


def test_kernels_talk_over_sockets_of_their_own_that_go_with_the_run(tmp_path):
    """No TCP ports: a port picked by binding port 0 could be taken by another `kit run`
    before the kernel binds it, and the kernel died at start (seen in CI, two runs at once)."""
    pool = WarmKernels("kit", 2, {}, cwd=tmp_path)
    try:
        first, second = pool.take(), pool.take()
        infos = [km.get_connection_info() for km in (first, second)]
        assert {info["transport"] for info in infos} == {"ipc"}
        assert infos[0]["ip"] != infos[1]["ip"]
        sockets = [Path(f"{info['ip']}-{info['shell_port']}") for info in infos]
        assert all(path.exists() for path in sockets)
        for km in (first, second):
            release(km, now=True)
        assert not any(path.exists() for path in sockets)  # a cluster worker's pool lives on: no leak
    finally:
        pool.close()


def test_a_kernel_that_dies_while_starting_is_reported_with_what_it_printed(tmp_path, monkeypatch):
    spec = tmp_path / "share" / "kernels" / "dies"
    spec.mkdir(parents=True)
    crash = "import sys; print('cannot import numpy: broken wheel', file=sys.stderr); sys.exit(3)"
    (spec / "kernel.json").write_text(json.dumps(
        {"argv": [os.sys.executable, "-c", crash, "-f", "{connection_file}"], "display_name": "dies", "language": "python"}))
    monkeypatch.setenv("JUPYTER_PATH", str(tmp_path / "share"))
    pool = WarmKernels("dies", 1, {}, cwd=tmp_path)
    try:
        with pytest.raises(RuntimeError, match="(?s)Kernel died.*cannot import numpy: broken wheel"):
            pool.take()
    finally:
        pool.close()
