"""`kit cluster up|down`: a real Dask scheduler and workers on this machine (loopback), for trying
`kit run --cluster` and for tests. The processes are Dask's own `dask scheduler` and `dask worker`;
everything about them lives under one folder, DIR:

    DIR/cluster.json     address, pids and settings of the running cluster
    DIR/logs/            scheduler.log, worker-N.log
    DIR/workers/N/       each worker's --local-directory (its scratch space; nothing else is shared)

Each worker is its own process group without a nanny (`--no-nanny`): killing one is a lost worker,
as on a cluster, and `down` stops every one by pid. Each worker offers the resources `cpus` (its
threads) and `memory` (its memory limit, in bytes) plus any given with --resources, so steps'
`resources:` can be checked against them.
"""

from __future__ import annotations

import os
import shlex
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from kit.errors import SpecError, StepFailure
from kit.server import _alive, _port, _read_json, _stop_group, _tail, _write_json

READY_TIMEOUT = 180  # s: N workers importing distributed on a loaded machine
STATE = "cluster.json"


@dataclass
class Cluster:
    folder: Path
    address: str
    scheduler_pid: int
    worker_pids: list[int]
    started: bool  # False: it was already running

    def exports(self) -> str:
        return f"export KIT_CLUSTER={shlex.quote(self.address)}"


def parse_resources(text: str, option: str = "--resources") -> dict[str, float]:
    """'gpu=1 cpus=2' (spaces or commas) -> {'gpu': 1.0, 'cpus': 2.0}; SpecError naming what is wrong."""
    found: dict[str, float] = {}
    for item in text.replace(",", " ").split():
        name, sep, value = item.partition("=")
        try:
            if not sep or not name:
                raise ValueError
            found[name] = float(value)
        except ValueError:
            raise SpecError(f"{option} {text!r}: {item!r} is not NAME=NUMBER (e.g. \"gpu=1 fpga=2\")") from None
    return found


def up(folder: Path, workers: int, threads: int = 1, resources: dict[str, float] | None = None,
       hide: list[Path] | None = None, say=print) -> Cluster:
    """Start a scheduler and `workers` workers (or find them running) and return how to reach them."""
    if workers < 1 or threads < 1:
        raise SpecError("--workers and --threads must be 1 or more")
    folder = folder.resolve()
    state = _read_json(folder / STATE)
    hide = [str(Path(p).resolve()) for p in hide or []]
    if hide and os.geteuid() != 0:
        raise SpecError("--hide needs root (it mounts an empty folder over each one in the workers' own mount "
                        "namespace); leave it out, or run the workers on another machine")
    for path in hide:
        if not Path(path).is_dir():
            raise SpecError(f"--hide {path}: no such folder")
        if folder == Path(path) or Path(path) in folder.parents:
            raise SpecError(f"--hide {path}: the cluster's own folder {folder} is inside it; use another --dir")
    wanted = {"workers": workers, "threads": threads, "resources": resources or {}, "hide": hide}
    if _running(state):
        if {k: state.get(k) for k in wanted} != wanted:
            raise SpecError(f"a cluster is already running from {folder} ({state['workers']} workers, "
                            f"{state['threads']} threads each, resources {state['resources'] or 'none'}): "
                            f"`kit cluster down --dir {folder}` first")
        return _cluster(folder, state, started=False)
    _stop(state)  # parts of a cluster that half-died: start afresh
    (folder / "logs").mkdir(parents=True, exist_ok=True)
    port = _port(None, state.get("port"), None)
    state = {**wanted, "port": port, "address": f"tcp://127.0.0.1:{port}", "worker_pids": []}
    try:
        say(f"kit cluster: starting a Dask scheduler on {state['address']}")
        state["scheduler_pid"] = _spawn(["scheduler", "--host", "127.0.0.1", "--port", str(port), "--no-dashboard"],
                                        folder / "logs" / "scheduler.log", folder, _scheduler_env())
        _write_json(folder / STATE, state)
        memory = _memory_per_worker(workers)
        offered = {"cpus": threads, "memory": memory, **(resources or {})}
        for number in range(1, workers + 1):
            scratch = folder / "workers" / str(number)
            scratch.mkdir(parents=True, exist_ok=True)
            command = ["worker", state["address"], "--name", f"worker-{number}", "--nthreads", str(threads),
                       "--no-nanny", "--no-dashboard", "--host", "127.0.0.1", "--local-directory", str(scratch),
                       "--memory-limit", str(memory),
                       "--resources", " ".join(f"{k}={v:.15g}" for k, v in offered.items())]
            state["worker_pids"].append(_spawn(command, folder / "logs" / f"worker-{number}.log", scratch,
                                               _worker_env(scratch), hide=hide))
            _write_json(folder / STATE, state)
        say(f"kit cluster: waiting for {workers} worker{'s' * (workers > 1)} ({threads} thread{'s' * (threads > 1)} each"
            f"{', not seeing ' + ', '.join(hide) if hide else ''})")
        _wait_ready(folder, state)
    except BaseException:  # a cluster that did not come up leaves no process behind
        _stop(state)
        _write_json(folder / STATE, {"port": port})
        raise
    return _cluster(folder, state, started=True)


def down(folder: Path) -> list[str]:
    """Stop the scheduler and the workers of `folder` by pid. Returns what it stopped."""
    folder = folder.resolve()
    if not (folder / STATE).is_file():
        raise SpecError(f"{folder} holds no cluster (no {STATE}): nothing to stop")
    state = _read_json(folder / STATE)
    stopped = _stop(state)
    _write_json(folder / STATE, {"port": state.get("port")})  # the port: taken again by the next `up` if free
    return stopped


def _running(state: dict) -> bool:
    pids = [state.get("scheduler_pid"), *state.get("worker_pids", [])]
    return bool(state.get("worker_pids")) and all(_alive(pid, "dask") for pid in pids)


def _stop(state: dict) -> list[str]:
    stopped = []
    workers = [pid for pid in state.get("worker_pids", []) if _alive(pid, "dask")]
    for pid in workers:  # all asked at once (each takes a second or two to close), then waited for
        try:
            os.killpg(pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
    for pid in workers:  # workers first: a scheduler gone first makes them retry and log
        _stop_group(pid, timeout=10)
        stopped.append(f"worker (pid {pid})")
    pid = state.get("scheduler_pid")
    if _alive(pid, "dask"):
        _stop_group(pid, timeout=10)
        stopped.append(f"scheduler (pid {pid})")
    return stopped


def _spawn(arguments: list[str], log_path: Path, cwd: Path, env: dict[str, str], hide: list[str] = ()) -> int:
    command = [str(Path(sys.executable).parent / "dask"), *arguments]
    if hide:
        # A mount namespace of its own in which each hidden folder is an empty, closed tmpfs: the
        # worker sees this machine as another machine would (the same pid: unshare and sh exec).
        mounts = " && ".join(f"mount -t tmpfs -o size=1m,mode=000 kit-hidden {shlex.quote(p)}" for p in hide)
        command = ["unshare", "--mount", "--propagation", "private", "--", "sh", "-c",
                   f"{mounts} && exec {shlex.join(command)}"]
    with open(log_path, "ab") as log:
        # Its own session: a Ctrl-C in the terminal that ran `kit cluster up` does not reach it, and
        # `down` stops it (and the kernels it started, which have their own groups but watch it) by pid.
        process = subprocess.Popen(command, env=env, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                   start_new_session=True, cwd=cwd)
    return process.pid


def _scheduler_env() -> dict[str, str]:
    # A worker lost while running a task fails that task at once (KilledWorker) instead of Dask
    # silently running it again: the kit retries it itself, up to the step's `retries`, and says so
    # on the step's MLflow run.
    return {**os.environ, "DASK_DISTRIBUTED__SCHEDULER__ALLOWED_FAILURES": "0"}


def _worker_env(scratch: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_TRACKING_", "KIT_"))}
    env.update({
        # Notebooks that start processes through multiprocessing need non-daemonic workers.
        "DASK_DISTRIBUTED__WORKER__DAEMON": "False",
        # Kernels' connection files, IPython's profile and caches in the worker's own folder: a
        # worker run as another user (no home) or on another machine writes nothing elsewhere.
        "HOME": str(scratch), "JUPYTER_RUNTIME_DIR": str(scratch / "jupyter-runtime"),
        "IPYTHONDIR": str(scratch / "ipython"), "MPLCONFIGDIR": str(scratch / "matplotlib"),
        "XDG_CACHE_HOME": str(scratch / "cache"), "MLFLOW_DISABLE_TELEMETRY": "true",
    })
    return env


def _memory_per_worker(workers: int) -> int:
    import psutil

    return int(psutil.virtual_memory().total / workers)


def _wait_ready(folder: Path, state: dict) -> None:
    from distributed import Client

    deadline = time.monotonic() + READY_TIMEOUT
    logs = folder / "logs"
    client = None
    try:
        while time.monotonic() < deadline:
            dead = [name for name, pid in [("scheduler", state["scheduler_pid"]),
                                           *[(f"worker-{n}", p) for n, p in enumerate(state["worker_pids"], 1)]]
                    if not _alive(pid, "dask")]
            if dead:
                raise StepFailure(f"the Dask {dead[0]} stopped while starting; the end of {logs / (dead[0] + '.log')}:"
                                  f"\n{_tail(logs / (dead[0] + '.log'))}")
            try:
                client = client or Client(state["address"], timeout=5, set_as_default=False)
            except OSError:
                time.sleep(0.3)
                continue
            if len(client.scheduler_info(n_workers=-1)["workers"]) >= state["workers"]:
                return
            time.sleep(0.3)
    finally:
        if client is not None:
            client.close()
    raise StepFailure(f"the Dask cluster did not come up within {READY_TIMEOUT}s; see the logs in {logs}")


def _cluster(folder: Path, state: dict, started: bool) -> Cluster:
    return Cluster(folder, state["address"], state["scheduler_pid"], list(state["worker_pids"]), started)


def kill_worker(folder: Path, number: int, sig: int = signal.SIGKILL) -> int:
    """Kill worker `number` (1-based) of the cluster in `folder`, as a crash would: for tests and trying
    what a lost worker does. Returns its pid."""
    pid = _read_json(folder.resolve() / STATE)["worker_pids"][number - 1]
    os.killpg(pid, sig)
    return pid
