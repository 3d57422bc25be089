"""Execute one notebook with papermill in a kernel the runner owns.

We hand papermill our own kernel manager so that each step gets its environment
(its MLflow run) and working folder without touching this process's os.environ or cwd
(steps run in threads), and so the runner can kill the kernel on timeout or Ctrl-C.
"""

from __future__ import annotations

import os
import signal
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from jupyter_client.manager import AsyncKernelManager, KernelManager
from traitlets import Dict, Unicode

from kit.pipeline import notebooks

CellCallback = Callable[[int, int], None]  # (cell number, total cells)


class StepKernelManager(AsyncKernelManager):
    """A kernel manager that starts its kernel with extra environment variables."""

    step_env = Dict()
    log_path = Unicode("", help="file that takes the kernel process's own stdout/stderr")

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


@dataclass
class Execution:
    """A notebook execution that can be stopped from another thread."""

    input_path: Path
    output_path: Path
    parameters: dict[str, Any]
    kernel_name: str
    cwd: Path
    env: dict[str, str]
    log_path: Path | None = None
    on_cell: CellCallback | None = None
    stop_reason: str | None = None
    peak_memory_mb: float | None = None  # the kernel's resident-memory high-water mark

    def __post_init__(self) -> None:
        self._km: StepKernelManager | None = None
        self._lock = threading.Lock()

    def _manager_class(self) -> type[StepKernelManager]:
        """A kernel manager class bound to this execution.

        nbclient shuts a kernel down only if it created the manager itself, so we hand it
        a class (not an instance) that reports each instance back here for `stop()`.
        """
        execution = self

        class BoundKernelManager(StepKernelManager):
            def __init__(self, **kw: Any):
                super().__init__(**kw)
                self.step_env = execution.env
                self.log_path = str(execution.log_path or "")
                with execution._lock:
                    execution._km = self
                    stopped = execution.stop_reason is not None
                if stopped:  # stop() came before the kernel existed
                    raise RuntimeError(execution.stop_reason)

        return BoundKernelManager

    def stop(self, reason: str) -> None:
        with self._lock:
            if self.stop_reason is None:
                self.stop_reason = reason
            km = self._km
        if km is not None:
            km.kill_now()

    def _kernel_peak_memory_mb(self) -> float | None:
        """VmHWM of the kernel process (Linux): its peak so far, read after each cell."""
        process = getattr(self._km.provisioner, "process", None) if self._km and self._km.provisioner else None
        try:
            with open(f"/proc/{process.pid}/status") as status:
                for line in status:
                    if line.startswith("VmHWM:"):
                        return int(line.split()[1]) / 1024
        except (AttributeError, OSError, ValueError):
            return None
        return None

    def run(self) -> None:
        """Run to the end; raises papermill's errors (PapermillExecutionError for a failing cell)."""
        import papermill

        numbers: dict[int, int] = {}  # index in the executed copy -> number in the user's notebook

        def notebook_started(notebook, **_: Any) -> None:
            notebook.metadata.papermill["input_path"] = str(self.input_path)  # not the in-memory copy of a .py
            # papermill's injected parameters cell exists only in the executed copy: count
            # cells as the user's notebook numbers them.
            for index, cell in enumerate(notebook.cells):
                if "injected-parameters" not in cell.get("metadata", {}).get("tags", []):
                    numbers[index] = len(numbers) + 1

        def cell_started(cell, cell_index: int, **_: Any) -> None:
            if self.on_cell and cell_index in numbers:
                self.on_cell(numbers[cell_index], len(numbers))

        def cell_executed(**_: Any) -> None:
            peak = self._kernel_peak_memory_mb()
            if peak is not None:
                self.peak_memory_mb = max(peak, self.peak_memory_mb or 0.0)

        try:
            papermill.execute_notebook(
                notebooks.papermill_input(self.input_path),  # a Jupytext .py is read in memory
                str(self.output_path),
                parameters=self.parameters,
                kernel_name=self.kernel_name,
                progress_bar=False,
                kernel_manager_class=self._manager_class(),
                resources={"metadata": {"path": str(self.cwd)}},  # the kernel's cwd, without os.chdir
                on_notebook_start=notebook_started,
                on_cell_start=cell_started,
                on_cell_executed=cell_executed,
            )
        finally:
            if self._km is not None:
                self._km.close_log()
