"""Executed notebooks as standalone HTML pages, rendered off the run's critical path.

nbconvert takes about a second to import and to build its templates, then a few tenths of
a second per page. The runner renders in one background thread with one exporter (its
templates built once), while the next step's kernel works, and waits for every page
before the pipeline run is closed, so each step's run still holds its HTML.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from threading import Lock


def render_html(notebook: Path, exporter=None) -> Path | None:
    """The executed notebook as a standalone HTML page beside it (None if rendering fails)."""
    try:
        import nbformat

        exporter = exporter or html_exporter()
        body, _ = exporter.from_notebook_node(nbformat.read(notebook, as_version=4))
    except Exception:  # a report is a convenience; never fail a step over it
        return None
    html = notebook.with_suffix(".html")
    html.write_text(body, encoding="utf-8")
    return html


def html_exporter():
    from nbconvert import HTMLExporter

    return HTMLExporter()


class Renderer:
    """Renders notebooks in order in one thread; `then(page)` is called with each page rendered
    (to log it) in that thread too."""

    def __init__(self) -> None:
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="kit-render")
        self._pending: list[Future] = []
        self._exporter = None
        self._warming: Future | None = None
        self._lock = Lock()

    def warm(self) -> None:
        """Build the exporter now, while a step works: importing nbconvert takes about a second,
        which a pipeline whose only executed step is the last one would otherwise wait for."""
        with self._lock:
            if self._warming is None:
                self._warming = self._thread.submit(self._ready)

    def submit(self, notebook: Path, then: Callable[[Path], None]) -> None:
        with self._lock:
            self._pending.append(self._thread.submit(self._render, notebook, then))

    def finish(self, cancel: bool = False) -> None:
        """Wait for the pages (those not started yet are dropped if `cancel`); raises what logging one raised."""
        with self._lock:
            pending, self._pending = self._pending, []
        if cancel:
            for future in pending:
                future.cancel()
        errors = [f.exception() for f in pending if not f.cancelled() and f.exception() is not None]
        if errors:
            raise errors[0]

    def close(self) -> None:
        self.finish(cancel=True)
        self._thread.shutdown(wait=True)

    def _ready(self) -> bool:
        if self._exporter is None:
            try:
                self._exporter = html_exporter()
            except Exception:
                return False
        return True

    def _render(self, notebook: Path, then: Callable[[Path], None]) -> None:
        if not self._ready():
            return
        html = render_html(notebook, self._exporter)
        if html is not None:
            then(html)
