"""`kit run --cluster` against a real Dask scheduler and 2 real worker processes on loopback (started
by `kit cluster up`, stopped by pid), with a real MLflow tracking server between them.

As root, the workers run with pytest's temporary folders (every test project) hidden from them
(`kit cluster up --hide`: a mount namespace of their own), as on another machine, and with another
working folder; the first step's notebook checks that it cannot see the project.
"""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import psutil
import pytest

from conftest import HIDING, Project, ctr_with_test_cloud_budget, local_cluster, tiny_edge_pipeline

STEP_A = """
import pathlib, mlflow
import os
assert not (os.path.exists(project) and hidden), f"the worker can see the project folder {project}"
pathlib.Path(numbers).write_text("1\\n2\\n3\\n")
mlflow.log_metric("rows", 3)
"""
STEP_B = """
import pathlib
assert pathlib.Path(numbers).name == "numbers.txt", numbers  # inputs keep their names (Keras goes by extension)
values = [int(v) for v in pathlib.Path(numbers).read_text().split()]
out = pathlib.Path(doubled)
out.mkdir()
(out / "values.txt").write_text(" ".join(str(2 * v) for v in values))
"""
STEP_C = """
import pathlib
total = sum(int(v) for v in (pathlib.Path(doubled) / "values.txt").read_text().split())
pathlib.Path(total_path).write_text(str(total))
"""
PIPELINE = """
name: chain
model: chain-model
steps:
  - name: a
    notebook: notebooks/a.ipynb
    parameters: {{project: "{root}", hidden: {hidden}}}
    outputs: {{numbers: numbers.txt}}
  - name: b
    notebook: notebooks/b.ipynb
    inputs: {{numbers: a.numbers}}
    outputs: {{doubled: doubled}}
  - name: c
    notebook: notebooks/c.ipynb
    inputs: {{doubled: b.doubled}}
    outputs: {{total_path: total.txt}}
    resources: {{cpus: 1, memory: 100MB}}
"""
SLOW = """
name: slow
model: slow-model
{retries}
steps:
  - name: slow
    notebook: notebooks/slow.ipynb
    outputs: {{done: done.txt}}
    cache: false
"""


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    with local_cluster(tmp_path_factory) as local:
        yield local


@pytest.fixture
def project(tmp_path, tracking_server, cluster) -> Project:
    cluster.up()  # a no-op unless a test killed a worker
    found = Project(tmp_path, tracking={"MLFLOW_TRACKING_URI": tracking_server, "KIT_CLUSTER": cluster.address})
    return found


def chain(project: Project) -> Path:
    project.notebook("a.ipynb", 'numbers = "n.txt"\nproject = ""\nhidden = False', STEP_A)
    project.notebook("b.ipynb", 'numbers = "n.txt"\ndoubled = "d"', STEP_B)
    project.notebook("c.ipynb", 'doubled = "d"\ntotal_path = "t.txt"', STEP_C)
    return project.pipeline(PIPELINE.format(root=project.root, hidden=str(HIDING).lower()))


def slow(project: Project, seconds: float, retries: str = "") -> Path:
    project.notebook("slow.ipynb", 'done = "done.txt"', f"import time\ntime.sleep({seconds})",
                     "import pathlib\npathlib.Path(done).write_text('ok')")
    return project.pipeline(SLOW.format(retries=retries), name="slow.yaml")


def step_runs(project: Project, experiment: str) -> dict:
    return {r.data.tags.get("kit.step"): r for r in project.runs(experiment) if r.data.tags.get("kit.kind") == "step"}


def test_a_pipeline_runs_on_the_workers_with_outputs_passed_between_steps(project, cluster):
    done = project.kit("run", str(chain(project)))
    assert done.returncode == 0, done.stderr
    assert "[a] cell 1/2" in done.stderr  # per-cell progress from the workers
    workspace = Path(next(line for line in done.stdout.splitlines() if "workspace " in line).split()[-1])
    assert (workspace / "c" / "total.txt").read_text() == "12"  # 2 * (1 + 2 + 3), through two workers' hands
    runs = step_runs(project, "chain")
    assert {r.data.tags["kit.worker"] for r in runs.values()} <= set(
        cluster_workers(cluster.address)), "each step's run names the worker that ran it"
    # b and c went where their inputs were (the worker that made them keeps them by hash): no bytes sent
    assert runs["b"].data.tags["kit.inputs_sent"] == runs["c"].data.tags["kit.inputs_sent"] == "none (held by the worker)"
    assert runs["b"].data.tags["kit.worker"] == runs["a"].data.tags["kit.worker"]
    assert runs["a"].data.metrics["rows"] == 3  # the notebook's own MLflow call, from the worker, via the server
    client = project.client()
    assert [f.path for f in client.list_artifacts(runs["c"].info.run_id, "outputs")] == ["outputs/total_path"]
    assert "notebook/c.ipynb" in [f.path for f in client.list_artifacts(runs["c"].info.run_id, "notebook")]


def cluster_workers(address: str) -> list[str]:
    from distributed import Client

    with Client(address, timeout=10, set_as_default=False) as client:
        return list(client.scheduler_info(n_workers=-1)["workers"])


def test_a_step_needing_a_resource_no_worker_offers_is_refused_before_anything_runs(project):
    path = chain(project)
    path.write_text(path.read_text().replace("resources: {cpus: 1, memory: 100MB}", "resources: {gpu: 1}"))
    before = len(project.runs("chain")) if project.client().get_experiment_by_name("chain") else 0
    done = project.kit("run", str(path))
    assert done.returncode == 2, done.stderr
    assert "p.yaml:16: step 'c' needs gpu=1 (offered: 0) on one worker, and no worker of" in done.stderr
    assert (len(project.runs("chain")) if project.client().get_experiment_by_name("chain") else 0) == before


def test_a_bad_resource_amount_is_refused_at_its_line(project):
    path = chain(project)
    path.write_text(path.read_text().replace("memory: 100MB", "memory: lots"))
    done = project.kit("validate", str(path))
    assert done.returncode == 2
    assert "p.yaml:16: steps.2.resources: Value error, resource 'memory': 'lots' is not an amount of memory" in done.stderr


def test_a_timeout_and_a_dead_kernel_on_a_worker_fail_their_steps_as_locally(project):
    project.notebook("dies.ipynb", 'x = 1', "import os\nos._exit(1)")
    slow(project, 60)
    path = project.pipeline("""
        name: broken
        model: broken-model
        steps:
          - {name: slow, notebook: notebooks/slow.ipynb, outputs: {done: done.txt}, timeout: 4, cache: false}
          - {name: dies, notebook: notebooks/dies.ipynb, cache: false}
    """, name="broken.yaml")
    done = project.kit("run", str(path))
    assert done.returncode == 1, done.stderr
    assert "step 'slow' (notebooks/slow.ipynb) timed out after 4s" in done.stderr
    assert "step 'dies' (notebooks/dies.ipynb): the kernel died" in done.stderr
    assert {r.info.status for r in step_runs(project, "broken").values()} == {"FAILED"}


def test_a_local_store_is_refused_with_a_hint(project):
    project.tracking.pop("MLFLOW_TRACKING_URI")
    done = project.kit("run", str(chain(project)))
    assert done.returncode == 2
    assert "which the workers cannot reach" in done.stderr and "kit server up" in done.stderr


@pytest.mark.parametrize("sig, code", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_ctrl_c_stops_the_remote_kernel_and_marks_the_runs_killed(project, cluster, sig, code):
    process = project.popen("run", str(slow(project, 120)))
    cluster.worker_running_a_step()
    time.sleep(0.5)
    process.send_signal(sig)
    _, stderr = process.communicate(timeout=120)
    assert process.returncode == code, stderr
    assert "marked KILLED" in stderr
    runs = project.runs("slow")
    assert {r.info.status for r in runs} == {"KILLED"}
    deadline = time.monotonic() + 10
    while cluster.step_kernels() and time.monotonic() < deadline:
        time.sleep(0.2)
    assert cluster.step_kernels() == [], "a kernel still runs the step on a worker"
    assert all(psutil.pid_exists(pid) for pid in cluster.worker_pids), "the workers themselves keep running"


def test_a_step_whose_worker_dies_runs_again_on_the_other(project, cluster):
    process = project.popen("run", str(slow(project, 6)))
    lost = cluster.worker_running_a_step()
    os.kill(lost, signal.SIGKILL)
    stdout, stderr = process.communicate(timeout=300)
    assert process.returncode == 0, stderr
    run = step_runs(project, "slow")["slow"]
    assert "was lost while running the step" in run.data.tags["kit.retry.1"]
    assert run.data.tags["kit.worker"] not in run.data.tags["kit.retry.1"]  # ran to the end on the other one


def test_with_retries_0_a_lost_worker_fails_the_step_naming_it(project, cluster):
    process = project.popen("run", str(slow(project, 60, retries="retries: 0")))
    lost = cluster.worker_running_a_step()
    os.kill(lost, signal.SIGKILL)
    _, stderr = process.communicate(timeout=300)
    assert process.returncode == 1, stderr
    assert "was lost while running it" in stderr and "`retries: 0`" in stderr
    assert step_runs(project, "slow")["slow"].info.status == "FAILED"


def test_gates_and_promotion_on_the_cluster_as_locally(project):
    """One LightGBM step exported as an edge bundle on a worker; its output contract, the metric and
    edge parity gates (Node) and the promotion run on the submitter, on the files the worker sent back."""
    done = project.kit("run", str(tiny_edge_pipeline(project)))
    assert done.returncode == 0, done.stderr
    assert "champion" in done.stdout
    client = project.client()
    assert client.get_model_version_by_alias("tiny-model", "champion").version == "1"
    train = step_runs(project, "tiny")["train"]
    assert train.data.tags["kit.contract.data_path"] == "passed" and "kit.worker" in train.data.tags


def test_cluster_up_again_finds_it_running_and_refuses_other_settings(cluster):
    again = cluster.kit_cluster("up", "--workers", "2", *(["--hide", str(cluster.hide)] if cluster.hide else []))
    assert again.returncode == 0 and again.stdout.strip() == f"export KIT_CLUSTER={cluster.address}"
    assert "already running" in again.stderr
    other = cluster.kit_cluster("up", "--workers", "3")
    assert other.returncode == 2 and "already running" in other.stderr and "kit cluster down" in other.stderr


def test_a_large_input_travels_to_the_worker_and_its_output_back(tracking_server, cluster, tmp_path):
    """In process, the executor the runner uses: a 2 MB input (scattered to the cluster before the task,
    as Dask advises for large arguments) copied by the notebook on a worker that cannot see tmp_path."""
    from types import SimpleNamespace

    from mlflow import MlflowClient

    from kit.run.remote import ClusterExecutor
    from conftest import write_notebook

    cluster.up()
    client = MlflowClient(tracking_server)
    run = client.create_run(client.create_experiment(f"large-{time.time_ns()}"))
    notebook = write_notebook(tmp_path / "copy.ipynb", 'data = "d"\nout = "o"', "import shutil\nshutil.copyfile(data, out)")
    big = tmp_path / "big.bin"
    big.write_bytes(os.urandom(2_000_000))
    out = tmp_path / "out.bin"
    step = SimpleNamespace(name="copy", spec=SimpleNamespace(resources={}), timeout=120, retries=1)
    executor = ClusterExecutor(cluster.address, tracking_server)
    try:
        execution = executor.execution(step, {"data": big}, {"out": out}, input_path=notebook,
                                       output_path=tmp_path / "executed.ipynb", parameters={"data": str(big), "out": str(out)},
                                       kernel_name="kit", cwd=tmp_path, env={"MLFLOW_TRACKING_URI": tracking_server,
                                                                             "MLFLOW_RUN_ID": run.info.run_id},
                                       log_path=tmp_path / "kernel.log")
        execution.run()
    finally:
        executor.close()
    assert out.read_bytes() == big.read_bytes()
    assert (tmp_path / "executed.ipynb").is_file()
    assert client.get_run(run.info.run_id).data.tags["kit.inputs_sent"] == "data"


def test_a_ctr_sweep_runs_the_shared_steps_once_fans_out_over_both_workers_and_promotes_the_best(
        tmp_path, tracking_server, cluster):
    """pipelines/ctr.yaml at 50k rows, 4 variants of train.num_leaves, 2 at a time (the cluster's
    threads): logs and features run once, the variants' steps on both workers, the best through the
    CTR gates (Node, the cloud model under wrk) to both aliases."""
    cluster.up()
    project = Project.linked(tmp_path, {"MLFLOW_TRACKING_URI": tracking_server, "KIT_CLUSTER": cluster.address})
    ctr_with_test_cloud_budget(project)
    done = project.kit("sweep", "pipelines/ctr.yaml", "-p", "logs.rows=50000", "-p", "train.num_threads=1",
                       "--grid", "train.num_leaves=4,8,16,31", "--metric", "evaluate.auc", "--direction", "max",
                       timeout=1200)
    assert done.returncode == 0, done.stdout + done.stderr

    runs = project.runs("ctr")
    parent = next(r for r in runs if r.data.tags.get("kit.kind") == "sweep")
    variants = {r.info.run_id: r for r in runs if r.data.tags.get("mlflow.parentRunId") == parent.info.run_id}
    steps = [r for r in runs if r.data.tags.get("mlflow.parentRunId") in variants]
    assert len(variants) == 4 and len(steps) == 4 * 6
    executed = [r for r in steps if r.data.tags["kit.status"] != "cached"]
    assert sorted(r.data.tags["kit.step"] for r in executed if r.data.tags["kit.step"] in ("logs", "features")) == [
        "features", "logs"], "the shared steps ran once, the other variants took them from the cache"
    trains = [r for r in executed if r.data.tags["kit.step"] == "train"]
    assert sorted(r.data.params["num_leaves"] for r in trains) == ["16", "31", "4", "8"]
    assert len({r.data.tags["kit.worker"] for r in trains}) == 2, "the variants ran on both workers"

    auc = {run_id: v.data.metrics["evaluate.auc"] for run_id, v in variants.items()}
    best = max(auc, key=auc.get)
    assert parent.data.tags["kit.sweep.best_run_id"] == best
    client = project.client()
    for alias in ("edge-champion", "cloud-champion"):
        version = client.get_model_version_by_alias("ctr", alias)
        assert version.tags["kit.pipeline_run_id"] == best and version.tags["kit.gates"] == "passed", alias
    assert "edge-champion moved (none) -> v1" in done.stdout
