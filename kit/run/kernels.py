"""Kernels started before the steps that use them.

Starting a kernel (a Python process importing ipykernel) takes a second or more, most of a
short step's time, and a bare papermill loop pays it once per notebook. The runner starts
the first kernels while it imports MLflow and opens the store, and the next ones while the
current step runs. A step takes a kernel that is already up and gives it its own
environment (MLFLOW_RUN_ID, ...) and working folder before its first cell, in one silent
execution that leaves no trace in the notebook (no cell, no execution count).
"""

from __future__ import annotations

import itertools
import json
import os
import shutil
import signal
import tempfile
import threading
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

from jupyter_client.blocking import BlockingKernelClient
from jupyter_client.manager import AsyncKernelManager, KernelManager
from jupyter_core.utils import run_sync
from traitlets import Bool, Dict, Unicode

AHEAD = 2  # kernels kept starting ahead of the steps: the first two overlap MLflow's start-up
READY_TIMEOUT = 120.0  # seconds a kernel may take to answer its first request (a loaded machine)
HAND_OVER_TIMEOUT = 30.0  # seconds for the silent set-up (it runs in milliseconds)
LOG_TAIL = 2000  # characters of a kernel's own output quoted when it dies while starting
# Kernels talk over Unix sockets in the run's own folder where the OS has them: TCP ports are
# picked by binding port 0 and closing it, and another process (a second `kit run`, any
# client) can take the port before the kernel binds it, which kills the kernel at start.
_TRANSPORT = "tcp" if os.name == "nt" else "ipc"

# Run silently in a warm kernel before the step's first cell: the environment and folder a
# kernel started for this step would have had (os.environ reaches what the notebook spawns).
# The kernel's last exit handler (registered first, so run last, after the notebook's own and
# MLflow's) freezes its objects: the interpreter's final collection over what a step imported
# (TensorFlow: ~1.8 s of shutdown) is skipped, as kit.heap.skip_final_collection does for `kit`.
_HAND_OVER = """\
import atexit as _kit_atexit, gc as _kit_gc, os as _kit_os, pathlib as _kit_pathlib
_kit_atexit.register(_kit_gc.freeze)
_kit_os.environ.update({env})
_kit_os.chdir({cwd})
get_ipython().user_ns["_dh"][:] = [_kit_pathlib.Path({cwd})]
del _kit_atexit, _kit_gc, _kit_os, _kit_pathlib
"""


class StepKernelManager(AsyncKernelManager):
    """A kernel manager that starts its kernel with extra environment variables."""

    step_env = Dict()
    log_path = Unicode("", help="file that takes the kernel process's own stdout/stderr")
    step_log = Unicode("", help="where that output is kept once the step is over (kernel.log beside the notebook)")
    taken = Bool(False, help="handed to a step (kit.run.kernels)")

    def client(self, **kw: Any):
        """A client, remembered so that the channels papermill opens are closed with the kernel."""
        client = super().client(**kw)
        self.clients = [*getattr(self, "clients", []), client]
        return client

    async def start_kernel(self, **kw: Any) -> None:
        kw["env"] = {**os.environ, **self.step_env}
        if self.log_path:
            # Native libraries (TensorFlow, CUDA probes) write to the process's stderr, not
            # to the notebook; keep that out of the user's terminal but on record.
            self._log = open(self.log_path, "ab")
            kw["stdout"] = kw["stderr"] = self._log
        await KernelManager._async_start_kernel(self, **kw)

    def close_log(self) -> None:
        log = getattr(self, "_log", None)
        if log is not None:
            log.close()

    def kill_now(self) -> None:
        """Kill the kernel and anything it started (its own process group), from any thread."""
        process = getattr(self.provisioner, "process", None) if self.provisioner else None
        if process is not None and process.poll() is None:
            try:
                os.killpg(process.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                process.kill()


class WarmKernels:
    """Up to `count` kernels of one kernel spec, started `AHEAD` at a time in threads."""

    def __init__(self, kernel_name: str, count: int, env: dict[str, str], cwd: Path):
        self.kernel_name, self.env, self.cwd = kernel_name, env, cwd
        self._remaining = count  # kernels the run may still take
        self._spares: list[Future] = []
        self._started: list[StepKernelManager] = []  # every kernel launched, to stop the unused ones
        self._closed = False
        self._lock = threading.Lock()
        self._logs = Path(tempfile.mkdtemp(prefix="kit-kernels-"))  # also holds the kernels' sockets
        self._numbers = itertools.count(1)
        self._threads = ThreadPoolExecutor(max_workers=AHEAD + 1, thread_name_prefix="kit-kernel")
        self._releases = ThreadPoolExecutor(max_workers=1, thread_name_prefix="kit-kernel-release")
        self._fill()

    def take(self) -> StepKernelManager:
        """A kernel that answers requests (started now if none is waiting); raises what its start raised."""
        with self._lock:
            if self._closed:
                raise RuntimeError("the run is stopping; no kernel is started")
            self._remaining = max(0, self._remaining - 1)
            spare = self._spares.pop(0) if self._spares else self._threads.submit(self._start)
        self._fill()
        km = spare.result()
        with self._lock:
            km.taken, closed = True, self._closed
        if closed:
            release(km, now=True)
            raise RuntimeError("the run is stopping; no kernel is started")
        return km

    def release_later(self, km: StepKernelManager) -> Future:
        """Shut a kernel whose step is over down gracefully, off the caller's path: the kernel's
        own exit takes ~0.2 s, which the next step need not wait for. The future is done once
        the kernel is gone and its log kept (`release`)."""
        return self._releases.submit(release, km)

    def close(self) -> None:
        """Finish the releases under way; stop every kernel never taken (killed: it ran no user
        code) and wait for their starts."""
        self._releases.shutdown(wait=True)
        with self._lock:
            self._closed = True
            spares, self._spares = self._spares, []
        for spare in spares:
            spare.cancel()
        with self._lock:
            unused = [km for km in self._started if not km.taken]
        for km in unused:
            km.kill_now()
        self._threads.shutdown(wait=True)
        for spare in spares:
            if not spare.cancelled() and spare.exception() is None:
                release(spare.result(), now=True)
        shutil.rmtree(self._logs, ignore_errors=True)

    def _fill(self) -> None:
        with self._lock:
            while not self._closed and len(self._spares) < min(AHEAD, self._remaining):
                self._spares.append(self._threads.submit(self._start))

    def _start(self) -> StepKernelManager:
        number = next(self._numbers)
        km = StepKernelManager(kernel_name=self.kernel_name, transport=_TRANSPORT)
        if _TRANSPORT == "ipc":
            km.ip = str(self._logs / f"k{number}")  # short: a socket path has ~100 bytes at most
        km.step_env = self.env
        km.log_path = str(self._logs / f"k{number}.log")
        with self._lock:
            self._started.append(km)
        try:
            run_sync(km.start_kernel)(cwd=str(self.cwd))
            if self._closed:  # close() ran while it was launching
                km.kill_now()
            _wait_until_ready(km)
        except RuntimeError as error:
            release(km, now=True)
            raise RuntimeError(f"{error}{_output_of(km)}") from None
        except BaseException:
            release(km, now=True)
            raise
        return km


def hand_over(km: StepKernelManager, env: dict[str, str], cwd: Path, log_path: Path | None) -> None:
    """Give a warm kernel the step's environment and folder; its log goes to `log_path` at release."""
    km.step_log = str(log_path or "")
    code = _HAND_OVER.format(env=json.dumps(env), cwd=json.dumps(str(cwd)))
    client = _client(km)
    try:
        reply = client.execute_interactive(code, silent=True, store_history=False, timeout=HAND_OVER_TIMEOUT)
    finally:
        client.stop_channels()
    if reply["content"]["status"] != "ok":
        raise RuntimeError(f"could not set up the kernel: {reply['content'].get('evalue', reply['content'])}")


def release(km: StepKernelManager, now: bool = False) -> None:
    """Shut the kernel down (gracefully unless `now`, as nbclient would) and keep its log beside
    the executed notebook (a kernel never handed to a step has no log to keep)."""
    for client in getattr(km, "clients", []):
        client.stop_channels()
    if now:
        km.kill_now()
    try:
        if km.has_kernel:
            run_sync(km.shutdown_kernel)(now=now)
    finally:
        km.close_log()
        _keep_log(km)


def _output_of(km: StepKernelManager) -> str:
    """The end of what a kernel process printed itself, to say why it died ('' if nothing)."""
    try:
        text = Path(km.log_path).read_text(errors="replace").strip()
    except OSError:
        return ""
    return f"; the kernel printed:\n{text[-LOG_TAIL:]}" if text else ""


def _keep_log(km: StepKernelManager) -> None:
    source, target = Path(km.log_path), km.step_log
    if not target or not source.is_file():
        return
    with open(source, "rb") as read, open(target, "ab") as write:
        shutil.copyfileobj(read, write)
    source.unlink()


def _client(km: StepKernelManager) -> BlockingKernelClient:
    client = BlockingKernelClient(parent=km)  # asks the manager whether the process lives (not the heartbeat)
    client.load_connection_info(km.get_connection_info())
    client.start_channels()
    return client


def _wait_until_ready(km: StepKernelManager) -> None:
    client = _client(km)
    try:
        client.wait_for_ready(timeout=READY_TIMEOUT)
    finally:
        client.stop_channels()
