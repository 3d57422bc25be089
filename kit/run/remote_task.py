"""What a Dask worker does for one step (the task `kit run --cluster` submits): nothing here reads
the submitter's disk.

The request carries the notebook's source, its parameters, and its input files (packed), except
those the worker already holds: each worker keeps the inputs it received and the outputs it
produced in a content-addressed folder (kit-cas/SHA256, the hash the step cache uses), and the
submitter sends a step to a worker that holds its inputs by hash when one does. The worker puts
them into a scratch folder of its own, runs the notebook with papermill in a
kernel it started (one per worker thread: the kernel, not the worker, changes directory, and
every path given is absolute), and returns the outputs, the executed notebook and the kernel's
log, packed. The step's MLflow run id and tracking server come in its environment, so the
notebook's own `mlflow.log_*` calls land on the step's run. While it runs, the task reports
`started` and each cell as events on the step's topic, and polls the step's stop Event (set by
the submitter on timeout, Ctrl-C or SIGTERM): then it kills the kernel and returns what the
notebook got to.
"""

from __future__ import annotations

import io
import os
import shutil
import tarfile
import threading
import time
from pathlib import Path
from typing import Any

POLL_SECONDS = 0.2  # how often the task checks its stop Event
# The worker's store of inputs and outputs by hash is kept under this size (KIT_WORKER_STORE_GB).
STORE_BYTES = int(float(os.environ.get("KIT_WORKER_STORE_GB", "20")) * 2**30)
_kernels: dict[str, Any] = {}  # kernel name -> WarmKernels of this worker process
_kernels_lock = threading.Lock()


def pack(paths: dict[str, Path]) -> bytes:
    """Files and folders as one tar (gzip-free: notebooks' outputs are mostly compressed already)."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for name, path in paths.items():
            if path.exists():
                tar.add(path, arcname=name)
    return buffer.getvalue()


def unpack(blob: bytes, folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    with tarfile.open(fileobj=io.BytesIO(blob), mode="r") as tar:
        tar.extractall(folder, filter="data")  # no absolute paths, no links out of `folder`


def run_step(request: dict, inputs: bytes = b"") -> dict:
    """Run one step on this worker; returns {"worker", "files", "error", "peak_memory_mb", "stopped"}."""
    from distributed import Event, get_worker

    worker = get_worker()
    stop = Event(request["stop_event"])
    topic = request["topic"]
    answer: dict[str, Any] = {"worker": worker.address, "worker_name": str(worker.name), "files": b"",
                              "error": None, "peak_memory_mb": None, "stopped": False}
    if stop.is_set():  # stopped before it started: no kernel, nothing to return
        answer["stopped"] = True
        return answer
    store = Path(worker.local_directory).resolve() / "kit-cas"
    scratch = Path(worker.local_directory).resolve() / "kit-steps" / f"{request['key']}"
    shutil.rmtree(scratch, ignore_errors=True)
    try:
        # Each input under its own name (readers such as Keras's load_model go by the extension).
        placed = {param: scratch / "inputs" / param / name for param, name in request["input_names"].items()}
        missing = _take_held(request["held_inputs"], store, placed)
        if missing:  # sent here for inputs this worker no longer holds (or by Dask to another): ask for the bytes
            answer["missing"] = missing
            return answer
        worker.log_event(topic, {"event": "started", "key": request["key"], "worker": worker.address})
        return _execute(request, inputs, placed, scratch, store, worker, stop, topic, answer)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def _take_held(held: dict[str, str], store: Path, placed: dict[str, Path]) -> list[str]:
    """Copy the inputs this worker holds into place; returns those it does not hold (any more)."""
    missing = []
    for param, digest in held.items():
        try:
            _copy(store / digest, placed[param])
            os.utime(store / digest)  # recently used: pruned last
        except FileNotFoundError:
            missing.append(param)
    return missing


def _execute(request: dict, inputs: bytes, placed: dict[str, Path], scratch: Path, store: Path, worker, stop,
             topic: str, answer: dict) -> dict:
    from kit.run.notebook import Execution

    source = scratch / "source" / request["notebook_name"]
    source.parent.mkdir(parents=True)
    source.write_bytes(request["notebook"])
    unpack(inputs, scratch / "inputs")
    for param, path in placed.items():
        if param not in request["held_inputs"]:
            _keep(path, store)
    work = scratch / "work"
    work.mkdir()
    paths = {param: str(path) for param, path in placed.items()}
    paths.update({param: str(work / name) for param, name in request["outputs"].items()})
    executed = scratch / "executed" / request["executed_name"]
    executed.parent.mkdir()
    log = scratch / "executed" / "kernel.log"
    env = {**request["env"], "KIT_PROJECT_ROOT": str(work)}
    execution = Execution(
        input_path=source, output_path=executed, parameters={**request["parameters"], **paths},
        kernel_name=request["kernel"], cwd=work, env=env, log_path=log,
        on_cell=lambda number, total: worker.log_event(topic, {"event": "cell", "number": number, "total": total}),
        kernel_pool=_warm_kernels(request["kernel"], worker),
    )
    failure: list[BaseException] = []

    def target() -> None:
        try:
            execution.run()
        except BaseException as exc:  # reported to the submitter below
            failure.append(exc)

    thread = threading.Thread(target=target, name=f"kit-step-{request['step']}", daemon=True)
    thread.start()
    deadline = time.monotonic() + request["timeout"] + 60  # a submitter that vanished: bounded all the same
    while thread.is_alive():
        if _stop_requested(stop) or time.monotonic() > deadline:
            answer["stopped"] = True
            execution.stop("stopped by the submitter")
            thread.join(60)
            break
        thread.join(POLL_SECONDS)
    if not thread.is_alive():
        execution.wait_released()  # the kernel's log is complete before it is packed
    if failure:
        answer["error"] = describe(failure[0])
    answer["peak_memory_mb"] = execution.peak_memory_mb
    outputs = {f"outputs/{param}": work / name for param, name in request["outputs"].items()}
    if answer["error"] is None and not answer["stopped"]:
        answer["output_hashes"] = {param: _keep(work / name, store) for param, name in request["outputs"].items()
                                   if (work / name).exists()}
        _prune(store, STORE_BYTES)
    answer["files"] = pack({**outputs, "executed/notebook": executed, "executed/kernel.log": log})
    return answer


def _keep(path: Path, store: Path) -> str:
    """A copy of `path` in the worker's content-addressed store; returns its hash (kit.files.sha256_tree)."""
    from kit.files import sha256_tree

    digest = sha256_tree(path)
    target = store / digest
    if not target.exists():
        staging = store / f".{digest}.{threading.get_ident()}"
        _copy(path, staging)
        try:
            staging.rename(target)  # whole or not at all: another thread may keep the same content
        except OSError:
            shutil.rmtree(staging, ignore_errors=True)
    return digest


def _prune(store: Path, limit: int) -> None:
    """Keep the store under `limit` bytes, removing the least recently used entries first (a step
    that needed one is then sent its bytes again: the store only saves transfers)."""
    from kit.files import folder_size

    if not store.is_dir():  # a fresh worker whose steps so far had no outputs keeps nothing yet
        return
    entries = []
    for entry in store.iterdir():
        if not entry.name.startswith("."):
            try:
                entries.append((entry.stat().st_mtime, folder_size(entry), entry))
            except FileNotFoundError:
                continue
    total = sum(size for _, size, _ in entries)
    for _, size, entry in sorted(entries, key=lambda e: e[0]):
        if total <= limit:
            break
        if entry.is_dir():
            shutil.rmtree(entry, ignore_errors=True)
        else:
            entry.unlink(missing_ok=True)
        total -= size


def _copy(source: Path, target: Path) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    if source.is_dir():
        shutil.copytree(source, target)
    else:
        shutil.copyfile(source, target)


def _stop_requested(stop) -> bool:
    try:
        return stop.is_set()
    except Exception:  # the scheduler is unreachable: nobody will read the result
        return True


def _warm_kernels(kernel: str, worker):
    """One pool of kernels started ahead per worker process and kernel spec (started while the
    previous step runs, as on a laptop); each step hands its kernel its own environment and folder."""
    from kit.run.kernels import WarmKernels

    with _kernels_lock:
        if kernel not in _kernels:
            env = {"MLFLOW_DISABLE_TELEMETRY": "true", "PYDEVD_DISABLE_FILE_VALIDATION": "1"}
            _kernels[kernel] = WarmKernels(kernel, count=max(1, worker.state.nthreads) * 10**6, env=env,
                                           cwd=Path(worker.local_directory).resolve())
            os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
        return _kernels[kernel]


def describe(exc: BaseException) -> dict:
    """An error as plain data (the submitter rebuilds papermill's error from it)."""
    fields = {"type": type(exc).__name__, "message": str(exc)}
    if type(exc).__name__ == "PapermillExecutionError":
        fields.update(cell_index=exc.cell_index, exec_count=exc.exec_count, source=exc.source, ename=exc.ename,
                      evalue=exc.evalue, traceback=list(exc.traceback))
    return fields
