"""Execute one notebook with papermill in a kernel the runner owns.

The runner starts kernels ahead of their steps (kit.run.kernels) and hands papermill one
that is already up, with the step's environment (its MLflow run) and working folder, without
touching this process's os.environ or cwd (steps run in threads), so the runner can kill
the kernel on timeout or Ctrl-C.
"""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kit.run.kernels import StepKernelManager, hand_over, release

from kit.pipeline import notebooks

CellCallback = Callable[[int, int], None]  # (cell number, total cells)
MEMORY_READ_SECONDS = 1.0  # between cells, the kernel's peak memory is read at most this often


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
    kernel_pool: Any = None  # kit.run.kernels.WarmKernels: where its kernel comes from
    stop_reason: str | None = None
    peak_memory_mb: float | None = None  # the kernel's resident-memory high-water mark

    def __post_init__(self) -> None:
        self._km: StepKernelManager | None = None
        self._lock = threading.Lock()
        self._released: Future | None = None  # the kernel's shutdown, once the notebook finished
        self._memory_read_at = 0.0

    def wait_released(self) -> None:
        """Return once the kernel is shut down and its log kept beside the notebook."""
        if self._released is None:
            return
        try:
            self._released.result()
        except Exception as error:  # the notebook's results stand; say what went wrong with its kernel
            print(f"warning: the kernel that ran {self.input_path.name} did not shut down cleanly: {error}",
                  file=sys.stderr, flush=True)

    def stop(self, reason: str) -> None:
        with self._lock:
            if self.stop_reason is None:
                self.stop_reason = reason
            km = self._km
        if km is not None:
            km.kill_now()

    def _read_peak_memory(self, at_most_every: float = 0.0) -> None:
        """Keep the kernel's peak memory so far. VmHWM is a high-water mark, so reading it after
        the last cell gives the step's peak; between cells it is read at most every
        `at_most_every` seconds (reading /proc took ~12 ms here: 20% of a trivial step), for a
        kernel that dies before the end."""
        now = time.monotonic()
        if now - self._memory_read_at < at_most_every:
            return
        self._memory_read_at = now
        peak = self._kernel_peak_memory_mb()
        if peak is not None:
            self.peak_memory_mb = max(peak, self.peak_memory_mb or 0.0)

    def _kernel_peak_memory_mb(self) -> float | None:
        """VmHWM of the kernel process (Linux): its peak so far."""
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
            self._read_peak_memory(at_most_every=MEMORY_READ_SECONDS)

        km = self._take_kernel()
        try:
            papermill.execute_notebook(
                notebooks.papermill_input(self.input_path),  # a Jupytext .py is read in memory
                str(self.output_path),
                parameters=self.parameters,
                kernel_name=self.kernel_name,
                progress_bar=False,
                km=km,
                on_notebook_start=notebook_started,
                on_cell_start=cell_started,
                on_cell_executed=cell_executed,
            )
            self._read_peak_memory()
        except BaseException:
            release(km, now=self.stop_reason is not None)
            raise
        # The notebook is done: the kernel shuts down while the next step starts.
        self._released = self.kernel_pool.release_later(km)

    def _take_kernel(self) -> StepKernelManager:
        """A warm kernel, given this step's environment and folder (unless stop() came first)."""
        km = self.kernel_pool.take()
        with self._lock:
            self._km = km
            stopped = self.stop_reason is not None
        if stopped:
            release(km, now=True)
            raise RuntimeError(self.stop_reason)
        try:
            hand_over(km, self.env, self.cwd, self.log_path)
        except BaseException:
            release(km, now=True)
            raise
        return km
