"""`kit run --cluster`: each step a task on a Dask distributed scheduler, no shared disk.

The runner decides what runs (order, cache, contracts, gates, bookkeeping) as on a laptop; this
module only changes where a step's notebook executes. A `RemoteExecution` stands where a local
`Execution` would: it packs the notebook's source and the step's input files into the task
(kit.run.remote_task runs it on a worker), and unpacks the outputs, the executed notebook and
the kernel's log into the step's folder here when it returns, so everything after it is
unchanged. The tracking server carries the notebook's own MLflow calls from the worker.

A worker lost mid-step (killed, out of memory, its machine gone) makes the task fail at once
(`kit cluster up` runs its scheduler with `distributed.scheduler.allowed-failures: 0`; set it on
other clusters for the same behaviour) and the step is submitted again, up to its `retries`; the
step's run records each lost attempt (tags kit.retry.N) and the worker that ran it (kit.worker).
"""

from __future__ import annotations

import os
import threading
import time
import uuid
from pathlib import Path
from typing import Any

from kit.errors import SpecError
from kit.pipeline import notebooks

CONNECT_TIMEOUT = 15  # s to reach the scheduler
SCATTER_BYTES = 1_000_000  # packed inputs above this go to the cluster before the task that needs them
POLL_SECONDS = 0.05  # how often a running task's future is checked (a local check, no request)
STOP_GRACE = 30.0  # s a stopped task has to kill its kernel and return what the notebook got to
# The submitter's MLflow credentials go with each task, so the notebook's calls are its user's.
PASSED_ENV = ("MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD", "MLFLOW_TRACKING_TOKEN",
              "MLFLOW_TRACKING_INSECURE_TLS", "MLFLOW_TRACKING_SERVER_CERT_PATH")


def address_from(option: str | None) -> str | None:
    """--cluster if given, else $KIT_CLUSTER, else None (run here)."""
    return option or os.environ.get("KIT_CLUSTER") or None


class ClusterExecutor:
    """A connection to a scheduler; check(plan) before a run, close() when done. One executor serves
    any number of runs (`kit.run.run(plan, executor=...)`), one after the other or at once."""

    def __init__(self, address: str, tracking_uri: str):
        from kit.store import is_server

        if not is_server(tracking_uri):
            raise SpecError(f"--cluster {address}: the tracking store is {tracking_uri}, on this machine's disk, "
                            "which the workers cannot reach: start a tracking server (`eval \"$(kit server up)\"`) "
                            "or set MLFLOW_TRACKING_URI to one the workers can reach")
        from distributed import Client

        self.address = address
        try:
            self.client = Client(address, timeout=CONNECT_TIMEOUT, set_as_default=False)
        except (OSError, TimeoutError) as error:
            raise SpecError(f"--cluster {address}: no Dask scheduler answers there ({type(error).__name__}); start "
                            "one (`eval \"$(kit cluster up)\"`) or correct the address") from None
        try:
            self.workers = self.client.scheduler_info(n_workers=-1)["workers"]
        except BaseException:
            self.client.close()
            raise
        self.holdings = Holdings({address: w.get("nthreads", 1) for address, w in self.workers.items()})

    def check(self, plan) -> None:
        """Every step's `resources` offered by a worker (SpecError, exit 2, before anything runs)."""
        check_resources(plan.pipeline, self.workers, self.address)

    @property
    def slots(self) -> int:
        """Steps that can run at once: one per worker thread."""
        return max(1, sum(w.get("nthreads", 1) for w in self.workers.values()))

    def execution(self, step, inputs: dict[str, Path], outputs: dict[str, Path], **fields) -> "RemoteExecution":
        return RemoteExecution(self.client, step, inputs, outputs, step.retries, holdings=self.holdings, **fields)

    def close(self) -> None:
        self.client.close()


def check_resources(pipeline, workers: dict, address: str) -> None:
    """Every step's `resources` offered by at least one worker, or SpecError naming each step and what is missing."""
    if not workers:
        raise SpecError(f"--cluster {address}: the scheduler has no workers; start some (`dask worker {address}`)")
    problems = []
    for index, step in enumerate(pipeline.spec.steps):
        wanted = step.resources
        if not wanted:
            continue
        if any(all(w.get("resources", {}).get(k, 0) >= v for k, v in wanted.items()) for w in workers.values()):
            continue
        closest = max(workers.values(), key=lambda w: sum(w.get("resources", {}).get(k, 0) >= v
                                                           for k, v in wanted.items()))
        missing = ", ".join(f"{k}={_amount(k, v)} (offered: {_amount(k, closest.get('resources', {}).get(k, 0))})"
                            for k, v in wanted.items() if closest.get("resources", {}).get(k, 0) < v)
        offered = "; ".join(f"{w.get('name')}: " + (", ".join(f"{k}={_amount(k, v)}" for k, v in w.get("resources", {}).items())
                                                    or "nothing")
                            for w in workers.values())
        problems.append(f"{pipeline.where('steps', index, 'resources')}: step {step.name!r} needs {missing} on one "
                        f"worker, and no worker of {address} offers that (workers offer {offered}); start workers "
                        f"with `--resources` or lower the step's `resources`")
    if problems:
        raise SpecError("\n".join(problems))


def _amount(name: str, value: float) -> str:
    if name == "memory":
        from dask.utils import format_bytes

        return format_bytes(int(value))
    return f"{value:g}"


class Holdings:
    """Which worker holds which content (by hash) in its store, as the tasks' answers told, and how
    many of this process's steps each is running: a step goes to a holder only if it has a free
    thread, so steps sharing an input (a sweep's variants) still spread over the workers."""

    def __init__(self, threads: dict[str, int] | None = None) -> None:
        self._held: dict[str, set[str]] = {}
        self._threads = threads or {}  # worker -> threads
        self._running: dict[str, int] = {}
        self._lock = threading.Lock()

    def started(self, worker: str) -> None:
        with self._lock:
            self._running[worker] = self._running.get(worker, 0) + 1

    def ended(self, worker: str) -> None:
        with self._lock:
            self._running[worker] = max(0, self._running.get(worker, 0) - 1)

    def add(self, worker: str, digests) -> None:
        with self._lock:
            for digest in digests:
                self._held.setdefault(digest, set()).add(worker)

    def forget(self, worker: str) -> None:
        with self._lock:
            for holders in self._held.values():
                holders.discard(worker)

    def holder(self, digests: list[str]) -> str | None:
        """A worker that holds every one of `digests` (None if none does, or there are none)."""
        with self._lock:
            common = set.intersection(*(self._held.get(d, set()) for d in digests)) if digests else set()
            free = [w for w in common if self._running.get(w, 0) < self._threads.get(w, 1)]
        return sorted(free)[0] if free else None


class RemoteExecution:
    """A step's notebook executed as a Dask task; the runner treats it as it treats an Execution."""

    def __init__(self, client, step, inputs: dict[str, Path], outputs: dict[str, Path], retries: int, *,
                 input_path: Path, output_path: Path, parameters: dict[str, Any], kernel_name: str, cwd: Path,
                 env: dict[str, str], log_path: Path | None = None, on_cell=None,
                 kernel_pool=None,  # this machine's kernels: not used (the worker starts its own)
                 holdings: Holdings | None = None):
        self.client, self.step, self.inputs, self.outputs, self.retries = client, step, inputs, outputs, retries
        self.holdings = holdings or Holdings()
        self.sent_inputs: list[str] = []  # input parameters whose bytes went with the task (not held there)
        self.input_path, self.output_path, self.parameters = input_path, output_path, parameters
        self.kernel_name, self.cwd, self.env, self.log_path, self.on_cell = kernel_name, cwd, env, log_path, on_cell
        self.stop_reason: str | None = None
        self.peak_memory_mb: float | None = None
        self.worker: str | None = None
        self.lost: list[str] = []  # workers lost while running the step, in order
        self._run_id = env["MLFLOW_RUN_ID"]
        self._stop_event = f"kit-stop-{self._run_id}-{uuid.uuid4().hex[:8]}"
        self._lock = threading.Lock()
        self._started_on: dict[str, str] = {}  # submission key -> worker, while it runs
        self._ended: set[str] = set()

    def wait_released(self) -> None:
        """Its kernel lives on the worker, which keeps its log before answering: nothing to wait for."""

    def stop(self, reason: str) -> None:
        """Ask the task to kill its kernel (from any thread); run() returns once it did."""
        from distributed import Event

        with self._lock:
            if self.stop_reason is not None:  # the runner repeats it at every poll until the task returns
                return
            self.stop_reason = reason
        try:
            Event(self._stop_event, client=self.client).set()
        except Exception:  # the scheduler is gone: so is the task
            pass

    def run(self) -> None:
        """Submit, wait, resubmit when the worker is lost (up to `retries`); raises the notebook's error."""
        from distributed.scheduler import KilledWorker

        from kit.files import sha256_tree
        from kit.run import remote_task

        digests = {param: sha256_tree(path) for param, path in self.inputs.items()}
        holder = self.holdings.holder(list(digests.values()))
        request = self._request(digests if holder else {})
        topic = f"kit-step-{self._run_id}"
        self.client.subscribe_topic(topic, self._event)
        try:
            attempt = submission = 0
            while True:  # a key per submission: Dask gives a known key's result back without running it
                submission += 1
                request["key"] = f"kit-step-{self.step.name}-{self._run_id[:12]}-{submission}"
                # To the worker holding its inputs if one does (Dask may still choose another,
                # which then answers `missing`); else anywhere, with the inputs' bytes.
                future = self.client.submit(remote_task.run_step, request, self._inputs(request), key=request["key"],
                                            pure=False,
                                            resources=dict(self.step.spec.resources) or None, retries=0,
                                            workers=[holder] if request["held_inputs"] else None,
                                            allow_other_workers=bool(request["held_inputs"]))
                try:
                    try:
                        answer = self._wait(future)
                    finally:
                        with self._lock:
                            self._ended.add(request["key"])
                            worker = self._started_on.pop(request["key"], None)
                        if worker is not None:
                            self.holdings.ended(worker)
                    if answer.get("missing"):
                        self.holdings.forget(answer["worker"])
                        request = self._request({})
                        continue
                except KilledWorker as lost:
                    worker = getattr(lost.last_worker, "address", str(lost.last_worker))
                    self.lost.append(worker)
                    self.holdings.forget(worker)
                    request = self._request({})
                    self._tag({f"kit.retry.{attempt + 1}" if attempt < self.retries else "kit.lost_worker":
                               f"worker {worker} was lost while running the step (attempt {attempt + 1})"})
                    if attempt >= self.retries or self.stop_reason:
                        raise WorkerLost(f"its worker {worker} was lost while running it (process killed or crashed; "
                                         f"tried {attempt + 1} time{'s' * (attempt > 0)}, `retries: {self.retries}`"
                                         + (f"; workers lost before: {', '.join(self.lost[:-1])}" if attempt else "")
                                         + ")") from None
                    attempt += 1
                    continue
                break
        finally:
            self.client.unsubscribe_topic(topic)
            if self.stop_reason:
                self._clear_stop()
        self._tag({"kit.worker": answer["worker"], "kit.worker_name": answer["worker_name"],
                   "kit.inputs_sent": ", ".join(self.sent_inputs) or "none (held by the worker)" if self.inputs else "none",
                   **({"kit.retries_used": str(attempt)} if attempt else {})})
        self.worker = answer["worker"]
        self.holdings.add(answer["worker"], [*answer.get("output_hashes", {}).values(), *digests.values()])
        self._receive(answer)
        if answer["error"] is not None:
            raise rebuild(answer["error"])
        if answer["stopped"] or self.stop_reason:
            raise RuntimeError(self.stop_reason or "stopped")

    def _inputs(self, request: dict):
        """The packed inputs as the task's second argument: small ones in the task itself, larger ones
        scattered to the cluster first (Dask warns about, and slows down on, large tasks)."""
        blob = request.pop("inputs")
        return blob if len(blob) < SCATTER_BYTES else self.client.scatter(blob, hash=False)

    def _clear_stop(self) -> None:
        from distributed import Event

        try:
            Event(self._stop_event, client=self.client).clear()  # the scheduler forgets it
        except Exception:
            pass

    def _request(self, held: dict[str, str]) -> dict:
        """The task's argument; `held`: input parameter -> hash of the inputs the chosen worker holds
        (not sent), the others packed into it."""
        from kit.run.remote_task import pack

        self.sent_inputs = [param for param in self.inputs if param not in held]
        inputs = pack({f"{param}/{self.inputs[param].name}": self.inputs[param] for param in self.sent_inputs})
        env = {**self.env, **{name: os.environ[name] for name in PASSED_ENV if name in os.environ}}
        env.pop("KIT_PROJECT_ROOT", None)  # the submitter's folder means nothing on a worker
        source_name = self.input_path.name
        return {
            "step": self.step.name, "notebook": self.input_path.read_bytes(), "notebook_name": source_name,
            "executed_name": notebooks.executed_name(self.input_path), "parameters": {
                k: v for k, v in self.parameters.items() if k not in self.inputs and k not in self.outputs},
            "input_names": {param: path.name for param, path in self.inputs.items()}, "inputs": inputs,
            "held_inputs": held,
            "outputs": {param: path.name for param, path in self.outputs.items()}, "kernel": self.kernel_name,
            "env": env, "timeout": self.step.timeout, "stop_event": self._stop_event,
            "topic": f"kit-step-{self._run_id}",
        }

    def _wait(self, future) -> dict:
        """The task's answer; after stop(), at most STOP_GRACE more (then the task is cancelled)."""
        stopped_at = None
        while True:
            # Polled (a local check): future.result(timeout=...) racing the worker's death raised
            # UnboundLocalError from inside distributed's sync().
            if future.done():
                return future.result()
            time.sleep(POLL_SECONDS)
            if self.stop_reason and stopped_at is None:
                stopped_at = time.monotonic()
            if stopped_at is not None and time.monotonic() - stopped_at > STOP_GRACE:
                self.client.cancel(future, force=True)
                raise RuntimeError(self.stop_reason)

    def _event(self, event) -> None:
        """Events from the task (called in the client's thread): where it started, each cell."""
        _, message = event
        if message.get("event") == "started":
            with self._lock:  # (the answer may come before this event: then it is not counted at all)
                if message["key"] in self._ended:
                    return
                self._started_on[message["key"]] = message["worker"]
            self.holdings.started(message["worker"])
        elif message.get("event") == "cell" and self.on_cell is not None:
            try:
                self.on_cell(message["number"], message["total"])
            except BaseException:  # progress is a view; never break the client's event loop
                pass

    def _receive(self, answer: dict) -> None:
        """The task's files into the step's folder, where a local run would have left them."""
        import shutil
        import tempfile

        from kit.run.remote_task import unpack

        if answer.get("peak_memory_mb") is not None:
            self.peak_memory_mb = answer["peak_memory_mb"]
        if not answer["files"]:
            return
        staging = Path(tempfile.mkdtemp(prefix=".kit-received-", dir=self.cwd))
        try:
            unpack(answer["files"], staging)
            for param, path in self.outputs.items():
                received = staging / "outputs" / param
                if received.exists():
                    shutil.move(received, path)  # the step's folder is new: nothing there to replace
            if (staging / "executed" / "notebook").is_file():
                shutil.move(staging / "executed" / "notebook", self.output_path)
            if self.log_path is not None and (staging / "executed" / "kernel.log").is_file():
                shutil.move(staging / "executed" / "kernel.log", self.log_path)
        finally:
            shutil.rmtree(staging, ignore_errors=True)

    def _tag(self, tags: dict[str, str]) -> None:
        from mlflow import MlflowClient
        from mlflow.entities import RunTag

        MlflowClient(self.env["MLFLOW_TRACKING_URI"]).log_batch(self._run_id, tags=[RunTag(k, v) for k, v in tags.items()])


class WorkerLost(Exception):
    """The step's worker died under it, as often as its `retries` allowed."""


def rebuild(error: dict) -> BaseException:
    """The worker's error as the runner knows it locally (papermill's, nbclient's DeadKernelError)."""
    if error["type"] == "PapermillExecutionError":
        from papermill.exceptions import PapermillExecutionError

        return PapermillExecutionError(error["cell_index"], error["exec_count"], error["source"], error["ename"],
                                       error["evalue"], error["traceback"])
    if error["type"] == "DeadKernelError":
        from nbclient.exceptions import DeadKernelError

        return DeadKernelError(error["message"])
    return RuntimeError(f"{error['type']}: {error['message']} (on the worker)")
