"""Shared fixtures: throw-away projects with tiny notebooks, and the real `kit` command."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import textwrap
import time
from contextlib import contextmanager
from pathlib import Path

import nbformat
import psutil
import pytest

REPO = Path(__file__).resolve().parents[1]
KIT = [sys.executable, "-m", "kit.cli"]


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextmanager
def serving(command: list[str], health_url: str, folder: Path, env: dict[str, str] | None = None,
            name: str = "server", wait: float = 300):
    """A server process (in its own session, output in folder/NAME.log), yielded once `health_url`
    answers 200, and stopped with its children by its process group whatever happens."""
    import time
    import urllib.request

    log = open(folder / f"{name}.log", "w")
    process = subprocess.Popen(command, cwd=folder, env=env, stdout=log, stderr=subprocess.STDOUT,
                               start_new_session=True)
    try:
        deadline = time.monotonic() + wait
        while True:
            try:
                with urllib.request.urlopen(health_url, timeout=2) as answer:
                    if answer.status == 200:
                        break
            except OSError:
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"{name} did not start: {(folder / f'{name}.log').read_text()[-2000:]}")
            time.sleep(0.5)
        yield process
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(20)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
        log.close()


@pytest.fixture(scope="module")
def tracking_server(tmp_path_factory):
    """A plain MLflow tracking server (SQLite behind it, artifacts proxied, no auth) on a free
    loopback port: its URI. Tests that need PostgreSQL and users take `team_server`."""
    folder = tmp_path_factory.mktemp("tracking-server")
    port = free_port()
    env = {**os.environ, "MLFLOW_DISABLE_TELEMETRY": "true"}
    env.pop("MLFLOW_TRACKING_URI", None)
    command = [str(Path(sys.executable).parent / "mlflow"), "server", "--host", "127.0.0.1", "--port", str(port),
               "--workers", "1", "--backend-store-uri", f"sqlite:///{folder / 'mlflow.db'}",
               "--artifacts-destination", str(folder / "artifacts")]
    uri = f"http://127.0.0.1:{port}"
    with serving(command, f"{uri}/health", folder, env, name="mlflow-server"):
        yield uri


class Load:
    """`clients` threads sending one request each over keep-alive connections, back to back, while
    a server switches versions: `answers` is (status or exception, served version, body) per request.
    `version_of(headers, body)` reads the version a server says it answered with."""

    def __init__(self, port: int, method: str, path: str, body: bytes, headers: dict[str, str],
                 version_of, clients: int = 4):
        import threading

        self.port, self.request = port, (method, path, body, headers)
        self.version_of, self.answers = version_of, []
        self.stop = threading.Event()
        self.threads = [threading.Thread(target=self._client) for _ in range(clients)]

    def _client(self) -> None:
        import http.client
        import time

        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
        while not self.stop.is_set():
            try:
                connection.request(*self.request)
                answer = connection.getresponse()
                body = answer.read()
                self.answers.append((answer.status, self.version_of(answer.headers, body), body))
            except Exception as exc:  # a dropped connection is a failed request too
                self.answers.append((repr(exc), None, b""))
                connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
            time.sleep(0.01)

    def __enter__(self) -> "Load":
        for thread in self.threads:
            thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop.set()
        for thread in self.threads:
            thread.join()

    def served_after(self, move, version: str, timeout: float = 120) -> float:
        """Make the move (a callable: promote or roll back), then wait until an answer that
        started after it comes from `version`: the seconds that took."""
        import time

        moved_at, started = len(self.answers), time.monotonic()
        move()
        while time.monotonic() < started + timeout:
            if any(v == version for _, v, _ in self.answers[moved_at:]):
                return time.monotonic() - started
            time.sleep(0.1)
        raise AssertionError(f"still not serving v{version} {timeout} s after the move")

    def assert_followed(self, *versions: str) -> None:
        """No failed request, and the answers came from `versions` in that order, each in one stretch."""
        failed = [a for a in self.answers if a[0] != 200]
        assert not failed, failed[:3]
        served = [v for _, v, _ in self.answers]
        stretches = [v for i, v in enumerate(served) if i == 0 or served[i - 1] != v]
        assert stretches == list(versions), stretches


def ctrl_c_as_a_terminal_sends_it() -> None:
    """preexec_fn for a `kit` process a test interrupts: a shell starts background jobs with SIGINT
    ignored (and children inherit that), so Ctrl-C would do nothing there; restore the default."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def write_notebook(path: Path, parameters: str | None, *cells: str) -> Path:
    """A notebook for the `kit` kernel: an optional `parameters` cell, then code cells."""
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "kit", "display_name": "Python (kit)", "language": "python"}
    if parameters is not None:
        cell = nbformat.v4.new_code_cell(textwrap.dedent(parameters).strip())
        cell.metadata["tags"] = ["parameters"]
        nb.cells.append(cell)
    nb.cells.extend(nbformat.v4.new_code_cell(textwrap.dedent(c).strip()) for c in cells)
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, path)
    return path


class Project:
    """A project root of its own (store, workspaces), so tests never touch the repo's mlruns/."""

    def __init__(self, root: Path, tracking: dict[str, str] | None = None):
        self.root = root
        self.tracking = tracking or {}  # MLFLOW_TRACKING_* of a server (TeamServer.env); none: mlruns/
        (root / "pyproject.toml").write_text("[project]\nname = 'scratch'\n")

    def notebook(self, name: str, parameters: str | None, *cells: str, folder: str = "notebooks") -> str:
        write_notebook(self.root / folder / name, parameters, *cells)
        return f"{folder}/{name}"

    def pipeline(self, text: str, name: str = "p.yaml", folder: str = "pipelines") -> Path:
        path = self.root / folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text).lstrip())
        return path

    @classmethod
    def linked(cls, root: Path, tracking: dict[str, str] | None = None) -> "Project":
        """A scratch project that uses the repo's notebooks, pipelines and contracts (as links:
        never write test files through them) with a store and workspaces of its own."""
        project = cls(root, tracking)
        for name in ("notebooks", "pipelines", "data_contracts", "uv.lock"):
            (root / name).symlink_to(REPO / name)
        return project

    def own_copy(self, relative: str) -> Path:
        """Make the linked file `relative` (e.g. pipelines/ctr.yaml) this project's own copy, to
        edit: its folder becomes a real folder of links to the repo's files, but that one copied."""
        path, folder = self.root / relative, (self.root / relative).parent
        if folder.is_symlink():
            source = folder.resolve()
            folder.unlink()
            folder.mkdir()
            for entry in source.iterdir():
                (folder / entry.name).symlink_to(entry)
        if path.is_symlink():
            target = path.resolve()
            path.unlink()
            shutil.copyfile(target, path)
        return path

    @property
    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_TRACKING_")}
        env.update(KIT_PROJECT_ROOT=str(self.root), MLFLOW_DISABLE_TELEMETRY="true", **self.tracking)
        return env

    def kit(self, *args: str, timeout: float = 600) -> subprocess.CompletedProcess:
        return subprocess.run([*KIT, *args], cwd=self.root, env=self.env, capture_output=True, text=True, timeout=timeout,
                              preexec_fn=ctrl_c_as_a_terminal_sends_it)

    def popen(self, *args: str) -> subprocess.Popen:
        return subprocess.Popen([*KIT, *args], cwd=self.root, env=self.env, preexec_fn=ctrl_c_as_a_terminal_sends_it,
                                stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)

    def client(self):
        from mlflow import MlflowClient

        if self.tracking:  # credentials: TeamServer.env must be in os.environ (see `team_server`)
            return MlflowClient(self.tracking["MLFLOW_TRACKING_URI"])
        return MlflowClient(f"sqlite:///{self.root / 'mlruns' / 'mlflow.db'}")

    def clone(self, root: Path) -> "Project":
        """A copy of this project with its embedded store at `root`: what several tests start from
        without each paying the same run. The store holds absolute paths (artifact locations, the
        cache index), so they are rewritten; nothing written to the copy reaches the original."""
        import sqlite3

        assert not self.tracking, "only a project with the embedded store can be cloned"
        shutil.copytree(self.root, root, symlinks=True, dirs_exist_ok=True)
        old, new = str(self.root), str(root)
        with sqlite3.connect(root / "mlruns" / "mlflow.db") as db:
            for (table,) in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'").fetchall():
                for column in db.execute(f"PRAGMA table_info('{table}')").fetchall():
                    if any(t in column[2].upper() for t in ("CHAR", "TEXT", "CLOB")):
                        db.execute(f'UPDATE "{table}" SET "{column[1]}" = replace("{column[1]}", ?, ?) '
                                   f'WHERE instr("{column[1]}", ?) > 0', (old, new, old))
        for path in (root / "mlruns" / "cache").rglob("*.json"):
            path.write_text(path.read_text().replace(old, new))
        return Project(root, self.tracking)

    def runs(self, experiment: str):
        client = self.client()
        found = client.get_experiment_by_name(experiment)
        assert found is not None, f"no experiment {experiment!r}"
        return client.search_runs([found.experiment_id], order_by=["start_time ASC"])


CTR_TEST_CLOUD_P99_MS = 100


def ctr_with_test_cloud_budget(project: Project) -> None:
    """This project's pipelines/ctr.yaml with a cloud_latency budget of 100 ms, not 20.

    The example's 20 ms at 8 connections is the serving benchmark's target (p99 4.6 ms there on a
    quiet host). But this shared host has slow spells of many minutes in which every process runs
    about 3x slower (`kit serve cloud` on CTR: 3,966 requests/s, an hour later 1,095), and CI once
    refused the CTR models on one (p99 20.99 ms). The tests that run ctr.yaml check its flow,
    gates and promotions; the gate's verdict against a budget is tested on both sides in
    tests/targets/cloud/test_cloud_e2e.py, and a pathological model (tens of ms a batch) still
    fails 100 ms at 8 connections."""
    path = project.own_copy("pipelines/ctr.yaml")
    text = path.read_text()
    assert text.count("  - type: cloud_latency\n") == 1, "ctr.yaml's cloud_latency gate moved; update this helper"
    path.write_text(text.replace("  - type: cloud_latency\n",
                                 f"  - type: cloud_latency\n    p99_ms: {CTR_TEST_CLOUD_P99_MS}\n"))


@pytest.fixture(scope="session")
def iris_run_once(tmp_path_factory) -> tuple[Project, subprocess.CompletedProcess]:
    """One `kit run pipelines/iris.yaml` (30 epochs) that the Iris and `kit dev` tests both
    start from (each paid ~45 s for the same run). The project holds copies of the repo's
    notebooks and pipelines (`kit dev --save` writes to them), committed to git (provenance).
    Read it as it is; to change anything (another run, a saved notebook), Project.clone it."""
    root = tmp_path_factory.mktemp("iris-once")
    project = Project(root)
    for name in ("notebooks", "pipelines"):
        shutil.copytree(REPO / name, root / name)
    for name in ("data_contracts", "uv.lock"):
        (root / name).symlink_to(REPO / name)
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@t"]
    subprocess.run(["git", "init", "-q"], cwd=root, check=True)
    subprocess.run([*git, "add", "-A"], cwd=root, check=True)
    subprocess.run([*git, "commit", "-qm", "fixture"], cwd=root, check=True)
    return project, project.kit("run", "pipelines/iris.yaml", "-p", "train.epochs=30", timeout=900)


@pytest.fixture
def project(tmp_path, monkeypatch) -> Project:
    monkeypatch.setenv("KIT_PROJECT_ROOT", str(tmp_path))
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    return Project(tmp_path)


class TeamServer:
    """A real team stack (PostgreSQL + MLflow server with basic-auth) started by `kit server up`."""

    def __init__(self, folder: Path):
        self.folder = folder
        self.env: dict[str, str] = {}  # MLFLOW_TRACKING_URI, _USERNAME, _PASSWORD of the admin

    def kit_server(self, action: str) -> subprocess.CompletedProcess:
        env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_TRACKING_")}
        done = subprocess.run([*KIT, "server", action, "--dir", str(self.folder)], env=env, capture_output=True,
                              text=True, timeout=400)
        assert done.returncode == 0, f"kit server {action}: {done.stderr}"
        return done

    def up(self) -> None:
        lines = self.kit_server("up").stdout.splitlines()
        self.env = dict(line.removeprefix("export ").split("=", 1) for line in lines)

    def down(self) -> None:
        self.kit_server("down")

    def restart(self) -> None:
        self.down()
        self.up()

    @property
    def uri(self) -> str:
        return self.env["MLFLOW_TRACKING_URI"]

    def as_user(self, username: str, password: str) -> dict[str, str]:
        return {**self.env, "MLFLOW_TRACKING_USERNAME": username, "MLFLOW_TRACKING_PASSWORD": password}

    def auth(self):
        """MLflow's auth API (mlflow.server.auth.client): users and permissions. It signs in with the
        MLFLOW_TRACKING_* of os.environ: set `env` there first (monkeypatch.setenv)."""
        from mlflow.server.auth.client import AuthServiceClient

        return AuthServiceClient(self.uri)

    def stop_leftovers(self) -> None:
        """If `kit server down` failed: stop what server.json names, by pid."""
        state = json.loads((self.folder / "server.json").read_text()) if (self.folder / "server.json").is_file() else {}
        for key, sig in (("mlflow_pid", signal.SIGKILL), ("postgres_pid", signal.SIGINT)):
            if state.get(key):
                try:
                    (os.killpg if key == "mlflow_pid" else os.kill)(state[key], sig)
                except ProcessLookupError:
                    pass


@pytest.fixture(scope="session")
def team_server():
    """`kit server up --dir TMP` once per session (free loopback ports), `kit server down` at the end.

    Point a kit command at it with `Project(root, tracking=team_server.env)` (or
    `Project.linked(root, tracking=...)`); a test process's own MlflowClient needs
    `monkeypatch.setenv` of each item of `team_server.env`. `as_user(name, password)` gives the env of
    another user (create users with `team_server.auth().create_user`); `restart()` stops and starts it.
    """
    # Not under pytest's basetemp: its folders are closed to other users, and PostgreSQL runs as `postgres`.
    server = TeamServer(Path(tempfile.mkdtemp(prefix="kit-team-")))
    try:
        server.up()
        yield server
    finally:
        try:
            server.down()
        except AssertionError:
            server.stop_leftovers()
            raise
        finally:
            shutil.rmtree(server.folder, ignore_errors=True)


TINY_EDGE_TRAIN = """
import pathlib, tempfile
import lightgbm as lgb, mlflow, numpy as np, pandas as pd
from kit.features import FeatureSpec, numeric
from kit.targets.edge import write_bundle
from kit.targets.edge.lightgbm import export_booster

rng = np.random.default_rng(0)
frame = pd.DataFrame({"a": rng.normal(size=200), "b": rng.normal(size=200)})
frame.to_csv(data_path, index=False)
frame.head(50).to_csv(rows_path, index=False)
y = (frame.a + frame.b > 0).astype(int)
spec = FeatureSpec.of(numeric("a", frame["a"], transform="identity", missing="nan"),
                      numeric("b", frame["b"], transform="identity", missing="nan"))
booster = lgb.train({"objective": "binary", "num_leaves": 4, "verbose": -1, "num_threads": 1},
                    lgb.Dataset(spec.transform(frame[spec.input_names]), y), num_boost_round=5)
booster.save_model(model_path)
exported = export_booster(booster, pathlib.Path(tempfile.mkdtemp()) / "json")
write_bundle(bundle_dir, model_dir=exported.parent, kind="lightgbm-json", task="binary", labels=["no", "yes"],
             feature_spec=spec, model_name="tiny")
mlflow.log_metric("accuracy", float(((booster.predict(spec.transform(frame[spec.input_names])) > 0.5) == y).mean()))
"""
TINY_EDGE_CONTRACT = {"expectations": [
    {"type": "expect_column_values_to_be_between", "kwargs": {"column": "a", "min_value": -10, "max_value": 10}}]}
TINY_EDGE_PIPELINE = """
name: tiny
model: tiny-model
steps:
  - name: train
    notebook: notebooks/train.ipynb
    outputs: {data_path: data.csv, rows_path: rows.csv, model_path: model.txt, bundle_dir: bundle}
    contracts: {data_path: data_contracts/data.json}
gates:
  - {type: metric_threshold, step: train, metric: accuracy, min: 0.6}
  - {type: edge_parity, bundle: {step: train, output: bundle_dir}, rows: {step: train, output: rows_path},
     reference: {step: train, output: model_path}}
promote:
  alias: champion
  source: {step: train, output: bundle_dir}
"""


HIDING = os.geteuid() == 0  # `kit cluster up --hide` needs root (a mount namespace)


class LocalCluster:
    """`kit cluster up --dir DIR` (again whenever a test killed a worker), `kit cluster down` at the end."""

    def __init__(self, folder: Path, hide: Path | None):
        self.folder, self.hide = folder, hide
        self.address = ""

    def kit_cluster(self, *args: str) -> subprocess.CompletedProcess:
        return subprocess.run([*KIT, "cluster", *args, "--dir", str(self.folder)], capture_output=True, text=True,
                              timeout=300)

    def up(self) -> None:
        done = self.kit_cluster("up", "--workers", "2", *(["--hide", str(self.hide)] if self.hide else []))
        assert done.returncode == 0, done.stderr
        assert done.stdout.startswith("export KIT_CLUSTER=tcp://127.0.0.1:") and done.stdout.count("\n") == 1
        self.address = done.stdout.strip().split("=", 1)[1]

    @property
    def worker_pids(self) -> list[int]:
        return json.loads((self.folder / "cluster.json").read_text())["worker_pids"]

    def step_kernels(self) -> list[psutil.Process]:
        """Kernel processes of the workers that are running a step (their folder is a step's scratch folder)."""
        found = []
        for pid in self.worker_pids:
            try:
                children = psutil.Process(pid).children(recursive=True)
            except psutil.NoSuchProcess:
                continue
            for child in children:
                try:  # (a kernel killed but not reaped yet runs nothing)
                    if child.status() != psutil.STATUS_ZOMBIE and "kit-steps" in child.cwd():
                        found.append(child)
                except (psutil.NoSuchProcess, psutil.AccessDenied):
                    continue
        return found

    def worker_running_a_step(self, timeout: float = 120) -> int:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for kernel in self.step_kernels():
                return kernel.ppid()
            time.sleep(0.1)
        pytest.fail("no worker started the step's kernel")


@contextmanager
def local_cluster(tmp_path_factory):
    """A 2-worker `kit cluster up`, its workers blind to pytest's folders (every test project) when
    HIDING, as on other machines; `kit cluster down` at the end."""
    folder = Path(tempfile.mkdtemp(prefix="kit-cluster-"))  # not under pytest's folders: those are hidden
    local = LocalCluster(folder, tmp_path_factory.getbasetemp() if HIDING else None)
    try:
        local.up()
        yield local
    finally:
        local.kit_cluster("down")
        shutil.rmtree(folder, ignore_errors=True)


def two_versions_on_the_server(team_server, monkeypatch, tmp_path: Path, model: str, folders: list[Path]):
    """MODEL v1 and v2 on the team server from two artifact folders (gates passed), v1 holding
    `champion`; this process acts as the admin. Returns the admin's kit Registry."""
    from mlflow import MlflowClient

    from kit.registry import Registry, versions

    for key, value in team_server.env.items():
        monkeypatch.setenv(key, value)
    client = MlflowClient(team_server.uri)
    run = client.create_run(client.create_experiment(model))
    for number, folder in enumerate(folders, 1):
        client.log_artifacts(run.info.run_id, str(folder), f"version-{number}")
        versions.register(client, model, f"runs:/{run.info.run_id}/version-{number}", run.info.run_id,
                          {"kit.gates": "passed"})
    registry = Registry(tmp_path, client)
    registry.promote(model, "1", "champion")
    return registry


def webhooks_of(client, model: str) -> list:
    """The registry webhooks `kit serve` made for `model`."""
    return [h for h in client.list_webhooks() if h.name.startswith(f"kit-serve-{model}-")]


def wait_for_webhook(client, model: str, timeout: float = 30) -> list:
    """`webhooks_of` once there is one (up to `timeout` s), after waiting out the server's webhook
    cache (MLFLOW_WEBHOOK_CACHE_TTL, 2 s under `kit server up`): an alias event sooner than that
    may not see the new hook (a test failed so, once)."""
    deadline = time.monotonic() + timeout
    while not (hooks := webhooks_of(client, model)) and time.monotonic() < deadline:
        time.sleep(0.2)
    if hooks:
        time.sleep(3)
    return hooks


def tiny_edge_pipeline(project: Project) -> Path:
    """A cheap pipeline with every kind of phase: one step (LightGBM on 200 rows, exported as a
    JSON-trees edge bundle) with an output contract, a metric gate and the edge parity gate
    (which runs Node), promoted to `champion`."""
    project.notebook("train.ipynb", 'data_path = "d.csv"\nrows_path = "r.csv"\nmodel_path = "m.txt"\nbundle_dir = "b"',
                     TINY_EDGE_TRAIN)
    (project.root / "data_contracts").mkdir(exist_ok=True)
    (project.root / "data_contracts" / "data.json").write_text(json.dumps(TINY_EDGE_CONTRACT))
    return project.pipeline(TINY_EDGE_PIPELINE)
