"""Worker processes for one model version, fed by the front with adaptive micro-batches.

    front (event loop) --queue--> idle worker takes up to `max_batch` queued requests
                                  worker: mlflow.pyfunc model, one model call per batch (worker.py)

Why in-process workers and not `mlflow models serve` behind the front: MLflow's scoring path
costs ~5 ms of CPU per single-row request, and its uvicorn workers share keep-alive
connections by luck (one round 501 requests/s, the next 199). Here the front owns the queue, so
every worker gets work whenever it is free, and requests that wait together are scored in one
call of the model: the per-call cost is paid once per batch, not once per request.

Adaptive: a request that finds a worker idle and nothing else being scored is sent at once (a
lone client is never held back). Requests that queue while every worker is busy go together to
the next free worker. With `max_wait` > 0 (default 0), a free worker also waits for its batch to
fill while other batches are being scored, at most `max_wait` seconds after the oldest request.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
from collections import deque
from pathlib import Path
from typing import Callable

from kit.errors import StepFailure

# Defaults, measured (CTR, wrk, 8 connections, 2 workers, rows scored through
# CloudModel.predict_records): a batch costs ~0.12 ms plus ~0.02 ms a row, so holding a free
# worker back for batch-mates costs more than it saves: `--max-wait-ms 0` gave 3,976-3,986
# requests/s (p99 4.3 ms) against 2,291-3,209 (p99 5.5-9.2 ms) with 2 ms and 3,076-3,556 with
# 0.5 ms. Batches still form under load: what queues while every worker is busy is scored in
# one call by the next free worker, up to max_batch. (Through MLflow's DataFrame path, ~1.5 ms
# a batch, 2 ms cost nothing; models other than kit cloud models may want it back.)
DEFAULT_MAX_BATCH = 32
DEFAULT_MAX_WAIT = 0.0  # seconds
JSON = "application/json"


class WorkerStartError(StepFailure):
    exit_code = 1


def default_workers() -> int:
    """One worker per core (at most 4): the front's HTTP work is small next to scoring."""
    return max(1, min(4, os.cpu_count() or 1))


class _Worker:
    def __init__(self, process: subprocess.Popen, inbox, outbox):
        self.process, self.inbox, self.outbox = process, inbox, outbox
        self.batch: list | None = None  # the requests it is scoring


class WorkerPool:
    """`workers` processes holding `mlflow.pyfunc.load_model(model_uri)`; `score` queues one request."""

    def __init__(self, model_uri: str, version: str = "", workers: int | None = None,
                 max_batch: int = DEFAULT_MAX_BATCH, max_wait: float = DEFAULT_MAX_WAIT,
                 tracking_uri: str | None = None, log_path: Path | None = None,
                 on_batch: Callable[[int], None] | None = None):
        if max_batch < 1 or max_wait < 0:
            raise ValueError("max_batch >= 1 and max_wait >= 0")
        self.model_uri, self.version = model_uri, version
        self.size, self.max_batch, self.max_wait = workers or default_workers(), max_batch, max_wait
        self.tracking_uri, self.log_path, self.on_batch = tracking_uri, log_path, on_batch
        self.queue: deque[tuple[str, bytes, asyncio.Future, float]] = deque()
        self.idle: deque[_Worker] = deque()
        self.workers: list[_Worker] = []
        self.busy = 0
        self.drained = asyncio.Event()
        self.drained.set()
        self._timer: asyncio.TimerHandle | None = None
        self._closed = False

    # -- life cycle ---------------------------------------------------------------------------

    async def start(self, timeout: float = 180) -> WorkerPool:
        """Start every worker and return once each has loaded the model; on failure, stop them
        and raise WorkerStartError with the reason (and the tail of the workers' log)."""
        from multiprocessing.connection import Connection

        loop = asyncio.get_running_loop()
        env = {**os.environ, "MLFLOW_DISABLE_TELEMETRY": "true", "PYTHONUNBUFFERED": "1"}
        env.setdefault("OMP_NUM_THREADS", "1")  # one process per core already: no thread oversubscription
        if self.tracking_uri:
            env["MLFLOW_TRACKING_URI"] = self.tracking_uri
        log = open(self.log_path, "ab") if self.log_path else subprocess.DEVNULL
        try:
            for _ in range(self.size):
                to_child, from_parent = os.pipe()
                to_parent, from_child = os.pipe()
                process = subprocess.Popen(
                    [sys.executable, "-m", "kit.targets.cloud.worker", self.model_uri, str(to_child), str(from_child)],
                    pass_fds=(to_child, from_child), stdin=subprocess.DEVNULL, stdout=log, stderr=log, env=env)
                os.close(to_child)
                os.close(from_child)
                self.workers.append(_Worker(process, Connection(from_parent, readable=False),
                                            Connection(to_parent, writable=False)))
        finally:
            if self.log_path:
                log.close()
        try:
            await asyncio.wait_for(asyncio.gather(*(self._ready(w) for w in self.workers)), timeout)
        except TimeoutError:
            await self.close()
            raise WorkerStartError(f"{self.model_uri} did not load within {timeout:g} s{self._log_tail()}") from None
        except BaseException:
            await self.close()
            raise
        for worker in self.workers:
            loop.add_reader(worker.outbox.fileno(), self._answered, worker)
            self.idle.append(worker)
        return self

    async def _ready(self, worker: _Worker) -> None:
        message = await asyncio.to_thread(_receive, worker.outbox)
        if message is None or message[0] != "ready":
            why = message[1] if message else f"the worker exited with code {worker.process.wait()}"
            raise WorkerStartError(f"cannot load {self.model_uri}: {why}{self._log_tail()}")

    def _log_tail(self, lines: int = 15) -> str:
        if not self.log_path or not Path(self.log_path).exists():
            return ""
        text = Path(self.log_path).read_text(errors="replace").rstrip().splitlines()[-lines:]
        return ("\n" + "\n".join(text)) if text else ""

    async def drain(self) -> None:
        """Return once nothing is queued or being scored."""
        await self.drained.wait()

    async def close(self) -> None:
        """Stop the workers (closing their pipe ends them); requests still queued get a 503."""
        self._closed = True
        loop = asyncio.get_running_loop()
        while self.queue:
            _, _, future, _ = self.queue.popleft()
            if not future.done():
                future.set_result(_error(503, "the server is shutting down"))
        for worker in self.workers:
            loop.remove_reader(worker.outbox.fileno())
            worker.inbox.close()
            worker.outbox.close()
        await asyncio.to_thread(self._reap)
        self.workers, self.idle = [], deque()

    def _reap(self) -> None:
        for worker in self.workers:
            try:
                worker.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                worker.process.kill()
                worker.process.wait()

    # -- scoring ------------------------------------------------------------------------------

    def score(self, content_type: str, body: bytes) -> asyncio.Future:
        """Queue one request; the future gives (status, body, content type)."""
        future = asyncio.get_running_loop().create_future()
        if self._closed or not self.workers:
            future.set_result(_error(503, f"no worker is serving v{self.version}"))
            return future
        self.queue.append((content_type, body, future, time.monotonic()))
        self.drained.clear()
        self._dispatch()
        return future

    def _dispatch(self) -> None:
        while self.idle and self.queue:
            if self.busy and len(self.queue) < self.max_batch and self.max_wait > 0:
                # Under load: let the batch fill, but not past max_wait after its oldest request.
                wait = self.queue[0][3] + self.max_wait - time.monotonic()
                if wait > 0:
                    if self._timer is None:
                        self._timer = asyncio.get_running_loop().call_later(wait, self._timer_fired)
                    return
            worker = self.idle.popleft()
            worker.batch = [self.queue.popleft() for _ in range(min(self.max_batch, len(self.queue)))]
            self.busy += 1
            if self.on_batch:
                self.on_batch(len(worker.batch))
            try:
                worker.inbox.send([(content_type, body) for content_type, body, _, _ in worker.batch])
            except OSError:
                self._lost(worker)

    def _timer_fired(self) -> None:
        self._timer = None
        self._dispatch()

    def _answered(self, worker: _Worker) -> None:
        # uvloop makes a watched fd non-blocking; an answer larger than the pipe's buffer must
        # then still be read whole (it is on its way: the worker is writing it).
        os.set_blocking(worker.outbox.fileno(), True)
        answers = _receive(worker.outbox)
        if answers is None:
            self._lost(worker)
            return
        for (_, _, future, _), answer in zip(worker.batch, answers):
            if not future.done():
                future.set_result(answer)
        worker.batch = None
        self.busy -= 1
        self.idle.append(worker)
        self._dispatch()
        self._check_drained()

    def _lost(self, worker: _Worker) -> None:
        """A worker died: its requests fail with a 500, the others keep serving."""
        code = worker.process.poll()
        print(f"scoring worker {worker.process.pid} for v{self.version} exited (code {code})",
              file=sys.stderr, flush=True)
        asyncio.get_running_loop().remove_reader(worker.outbox.fileno())
        for _, _, future, _ in worker.batch or []:
            if not future.done():
                future.set_result(_error(500, f"the scoring worker for v{self.version} exited (code {code})"))
        if worker.batch is not None:
            self.busy -= 1
        self.workers.remove(worker)
        if not self.workers:
            while self.queue:
                _, _, future, _ = self.queue.popleft()
                future.set_result(_error(503, f"no worker is serving v{self.version}"))
        self._check_drained()

    def _check_drained(self) -> None:
        if not self.queue and not self.busy:
            self.drained.set()


def _receive(connection):
    try:
        return connection.recv()
    except (EOFError, OSError):
        return None


def _error(status: int, message: str) -> tuple[int, bytes, str]:
    code = "SERVICE_UNAVAILABLE" if status == 503 else "INTERNAL_ERROR"
    return status, json.dumps({"error_code": code, "message": message}).encode(), JSON
