"""Running the JavaScript runtime from Python: the bridge for gates, the server for `kit serve`."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

from kit.checkpoint import checkpoint
from kit.errors import LibraryError

RUNTIME = Path(__file__).resolve().parent / "runtime"


class NodeError(LibraryError):
    """Node or the runtime's packages are missing, or the runtime refused the bundle."""


def node_binary() -> str:
    found = shutil.which("node")
    if found is None:
        raise NodeError("node is not on PATH; the edge target needs Node 20 or newer")
    if not (RUNTIME / "node_modules" / "@tensorflow" / "tfjs-core").is_dir():
        raise NodeError(f"the edge runtime's packages are not installed in {RUNTIME}; run `make setup`")
    return found


def bridge(bundle: Path, rows: list[dict[str, Any]], bench: int = 0, warmup: int = 3000,
           timeout: float = 300) -> dict[str, Any]:
    """Run rows through the bundle in a real Node process: features, raw outputs, answers
    (and single-row handler latency over `bench` calls)."""
    options = ["--bench", str(bench), "--warmup", str(warmup)] if bench else []
    return _bridge(bundle, {"rows": rows}, options, timeout)


def score_columns(bundle: Path, columns: dict[str, list[Any]], timeout: float = 1800) -> dict[str, Any]:
    """Raw outputs for many rows given as columns (None = missing): the fast path for re-scoring
    a whole evaluation set. Returns {"outputs": flat row-major list, "output_width", "refused"}."""
    return _bridge(bundle, {"columns": columns}, [], timeout)


def _bridge(bundle: Path, request: dict[str, Any], options: list[str], timeout: float) -> dict[str, Any]:
    command = [node_binary(), str(RUNTIME / "src" / "node" / "bridge.js"), "--bundle", str(bundle), *options]
    payload = json.dumps(request, allow_nan=False)
    process = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        checkpoint("gate")  # test seam: an interrupt while Node runs
        stdout, stderr = process.communicate(payload, timeout=timeout)
    except BaseException:  # a timeout, Ctrl-C or SIGTERM: leave no Node process behind
        process.kill()
        process.wait()
        raise
    if process.returncode != 0:
        raise NodeError(f"the edge runtime could not run bundle {bundle}: {stderr.strip() or process.returncode}")
    return json.loads(stdout)

