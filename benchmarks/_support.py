"""What the benchmarks share besides their output (_report.py): scratch projects, running a
pipeline (the models they measure), servers on free ports, and the HTTP load generator.

The tests have their own fixtures (tests/conftest.py); benchmarks run without pytest, so these
live here. Every figure is a nearest-rank percentile (kit.stats), as in the gates.
"""

from __future__ import annotations

import http.client
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

from kit.stats import percentile

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
KIT = [sys.executable, "-m", "kit.cli"]
LINKED = ("notebooks", "pipelines", "data_contracts", "uv.lock")


def free_port(host: str = "127.0.0.1") -> int:
    """A port nothing listens on now (for servers that cannot be given port 0)."""
    with socket.socket() as probe:
        probe.bind((host, 0))
        return probe.getsockname()[1]


class Scratch:
    """A throw-away project root (its own store and workspaces). `linked` projects use the
    repo's notebooks, pipelines and contracts through symlinks: never write through them."""

    def __init__(self, root: Path, linked: bool = True):
        self.root = Path(root)
        (self.root / "pyproject.toml").write_text("[project]\nname = 'bench'\n")
        if linked:
            for name in LINKED:
                (self.root / name).symlink_to(REPO / name)

    @property
    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"}
        env.update(KIT_PROJECT_ROOT=str(self.root), MLFLOW_DISABLE_TELEMETRY="true")
        return env

    def notebook(self, name: str, parameters: str | None, *cells: str) -> Path:
        """notebooks/NAME for the `kit` kernel: an optional `parameters` cell, then code cells."""
        import nbformat

        nb = nbformat.v4.new_notebook()
        nb.metadata["kernelspec"] = {"name": "kit", "display_name": "Python (kit)", "language": "python"}
        if parameters is not None:
            nb.cells.append(nbformat.v4.new_code_cell(parameters, metadata={"tags": ["parameters"]}))
        nb.cells.extend(nbformat.v4.new_code_cell(cell) for cell in cells)
        path = self.root / "notebooks" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        nbformat.write(nb, path)
        return path

    def kit(self, *args: str) -> subprocess.CompletedProcess:
        """The `kit` command in a fresh process, as a user runs it."""
        return subprocess.run([*KIT, *args], cwd=self.root, env=self.env, capture_output=True, text=True)

    def run(self, pipeline: str, overrides: list[dict] | None = None, jobs: int = 2):
        """Run a pipeline in this process, progress discarded: (seconds to load and check the
        plan, the RunResult with every step's outputs)."""
        from kit.run import run
        from kit.run.plan import load_plan
        from kit.run.progress import PlainProgress

        os.environ.update(KIT_PROJECT_ROOT=str(self.root), MLFLOW_DISABLE_TELEMETRY="true")
        os.environ.pop("MLFLOW_TRACKING_URI", None)
        with open(os.devnull, "w") as sink:
            started = time.perf_counter()
            plan = load_plan(self.root / pipeline, overrides=overrides or [])
            plan_s = time.perf_counter() - started
            return plan_s, run(plan, jobs=jobs, progress=PlainProgress(list(plan.pipeline.steps), sink))

    def runs(self, experiment: str) -> dict:
        """The experiment's runs by run name (the pipeline's parent run and one per step)."""
        from mlflow import MlflowClient

        client = MlflowClient(f"sqlite:///{self.root / 'mlruns' / 'mlflow.db'}")
        found = client.get_experiment_by_name(experiment)
        if found is None:
            raise SystemExit(f"no experiment {experiment!r} in {self.root}")
        return {r.info.run_name: r for r in client.search_runs([found.experiment_id])}

    def serve(self, *args: str, timeout: float = 180) -> tuple[subprocess.Popen, int]:
        """Start `kit serve ... --port 0` and wait for its "listening on http://HOST:PORT" line."""
        process = subprocess.Popen([*KIT, "serve", *args, "--port", "0"], cwd=self.root, env=self.env,
                                   stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        return process, wait_for_banner(process, timeout)


def wait_for_banner(process: subprocess.Popen, timeout: float) -> int:
    """The port from a server's "listening on http://HOST:PORT" line (the kit's servers, Node's)."""
    timer = threading.Timer(timeout, process.kill)  # a silent server must not hang the benchmark
    timer.start()
    try:
        for line in process.stdout:
            if line.startswith("listening on "):
                return int(line.split()[2].rstrip("/").rsplit(":", 1)[1])
    finally:
        timer.cancel()
    stop(process)
    raise SystemExit(f"{' '.join(map(str, process.args[:4]))} did not start (no 'listening on' line)")


def stop(process: subprocess.Popen) -> None:
    process.terminate()
    try:
        process.wait(timeout=60)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def http_load(port: int, send: Callable[[http.client.HTTPConnection, int], int], clients: int, seconds: float) -> dict:
    """`clients` threads, each on one keep-alive connection, call `send(connection, i)` (returns
    the HTTP status) back to back for `seconds`: requests, errors, p50/p99 ms, throughput.
    A Python client shares the cores with the server: compare figures from the same machine only."""
    times: list[list[float]] = [[] for _ in range(clients)]
    errors = [0] * clients
    stop_at = time.perf_counter() + seconds

    def client(k: int) -> None:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        i = k
        while time.perf_counter() < stop_at:
            started = time.perf_counter()
            status = send(connection, i)
            times[k].append((time.perf_counter() - started) * 1000)
            errors[k] += status != 200
            i += clients

    threads = [threading.Thread(target=client, args=(k,)) for k in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    every = [t for per_client in times for t in per_client]
    return {"clients": clients, "requests": len(every), "p50_ms": percentile(every, 50),
            "p99_ms": percentile(every, 99), "throughput_rps": len(every) / seconds, "errors": sum(errors)}
