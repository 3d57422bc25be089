"""Progress of a pipeline run: a live table on a terminal, plain lines elsewhere (CI, logs)."""

from __future__ import annotations

import sys
import threading
import time

SYMBOLS = {"pending": "·", "running": "▶", "done": "✔", "failed": "✘", "skipped": "–", "killed": "■", "cached": "↺"}


class PlainProgress:
    """One line per event, flushed, for logs and CI."""

    def __init__(self, steps: list[str], stream=None):
        self.stream = stream or sys.stderr
        self.started: dict[str, float] = {}
        self._lock = threading.Lock()

    def _say(self, text: str) -> None:
        with self._lock:
            print(text, file=self.stream, flush=True)

    def step_started(self, step: str) -> None:
        self.started[step] = time.monotonic()
        self._say(f"[{step}] running")

    def cell(self, step: str, number: int, total: int) -> None:
        self._say(f"[{step}] cell {number}/{total} ({self._elapsed(step)})")

    def step_finished(self, step: str, state: str, detail: str = "") -> None:
        self._say(f"[{step}] {state} in {self._elapsed(step)}" + (f": {detail}" if detail else ""))

    def step_skipped(self, step: str, reason: str) -> None:
        self._say(f"[{step}] skipped: {reason}")

    def _elapsed(self, step: str) -> str:
        now = time.monotonic()  # a cached step never started: 0.0s, not -0.0s
        return f"{now - self.started.get(step, now):.1f}s"

    def close(self) -> None:
        pass


class LiveProgress(PlainProgress):
    """A table of steps (state, elapsed, current cell) redrawn in place."""

    def __init__(self, steps: list[str], stream=None):
        super().__init__(steps, stream)
        from rich.console import Console
        from rich.live import Live

        self.state = {s: "pending" for s in steps}
        self.detail = {s: "" for s in steps}
        self.ended: dict[str, float] = {}
        self.live = Live(get_renderable=self._table, console=Console(file=self.stream), refresh_per_second=4)
        self.live.start()

    def _say(self, text: str) -> None:
        pass  # the table shows it

    def step_started(self, step: str) -> None:
        super().step_started(step)
        self.state[step] = "running"

    def cell(self, step: str, number: int, total: int) -> None:
        self.detail[step] = f"cell {number}/{total}"

    def step_finished(self, step: str, state: str, detail: str = "") -> None:
        self.ended[step] = time.monotonic()
        self.state[step], self.detail[step] = state, detail

    def step_skipped(self, step: str, reason: str) -> None:
        self.state[step], self.detail[step] = "skipped", reason

    def _table(self):
        from rich.table import Table

        table = Table(box=None, show_header=True, header_style="bold")
        for column in ("step", "state", "elapsed", ""):
            table.add_column(column)
        now = time.monotonic()
        for step, state in self.state.items():
            start = self.started.get(step)
            elapsed = f"{self.ended.get(step, now) - start:.1f}s" if start else ""
            table.add_row(step, f"{SYMBOLS.get(state, '')} {state}", elapsed, self.detail[step][:100])
        return table

    def close(self) -> None:
        self.live.stop()


def for_stream(steps: list[str], stream=None):
    stream = stream or sys.stderr
    return LiveProgress(steps, stream) if stream.isatty() else PlainProgress(steps, stream)
