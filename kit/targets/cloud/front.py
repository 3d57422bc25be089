"""`kit serve cloud NAME --alias ALIAS`: the kit's front server before MLflow's scoring server.

    clients --keep-alive--> front (this process) --pooled keep-alive--> scoring server (vN)
                              |  X-Model-Name / X-Model-Version / X-Request-Id on every answer
                              |  prediction log (predlog.py), written off the request path
                              '- SIGHUP or POST /admin/reload: alias moved? start vM, switch, drain vN

The scoring server knows nothing of aliases, versions or request ids, and cannot swap its
model while serving; the front adds exactly that. Its HTTP is our own small proxy
(proxy.py, which says why not a library) on asyncio, with uvloop when installed. Measured on
this 2-core machine with a LightGBM spec model: +0.5 ms p50 over the scoring server for one
client; with 8 clients the single-worker scoring server is saturated (~250 requests/s) and
the front's CPU share costs ~6% of latency. A reload takes ~6 s (the new server's start).
"""

from __future__ import annotations

import asyncio
import json
import signal
import socket
import sys
import time
import uuid
from pathlib import Path

from kit.errors import KitError, StepFailure
from kit.targets.cloud.predlog import PredictionLog
from kit.targets.cloud.proxy import MAX_HEAD, BackendError, BadRequest, Pool, read_request, response
from kit.targets.cloud.server import ScoringServer, ScoringServerError, free_port

FORWARDED = ("/ping", "/health", "/version")
LOCAL = {"127.0.0.1", "::1", "::ffff:127.0.0.1"}
MAX_BODY = 64 * 1024 * 1024
CLIENT_IDLE_SECONDS = 75  # an idle client connection is closed after this
BACKEND_IDLE_SECONDS = 30  # below uvicorn's keep-alive (server.UVICORN_ENV): we close first
JSON = "application/json"


class ServeError(StepFailure):
    """The front cannot start (e.g. its port is taken)."""


class Backend:
    """One scoring server on a private port, its connection pool, and its in-flight count."""

    def __init__(self, version: str, server: ScoringServer):
        self.version, self.server = version, server
        self.pool = Pool("127.0.0.1", server.port)
        self.inflight = 0
        self.idle = asyncio.Event()
        self.idle.set()

    def enter(self) -> None:
        self.inflight += 1
        self.idle.clear()

    def leave(self) -> None:
        self.inflight -= 1
        if self.inflight == 0:
            self.idle.set()

    async def forward(self, method: str, path: str, headers: dict[str, str], body: bytes = b"") -> tuple[int, bytes, str]:
        """(status, body, content type); a backend failure becomes a 502/504 answer."""
        self.enter()
        try:
            status, answer_headers, answer = await self.pool.request(method, path, headers, body)
            return status, answer, answer_headers.get("content-type", JSON)
        except BackendError as error:
            message = f"the scoring server (v{self.version}) failed: {error}"
            return error.status, json.dumps({"error_code": "BACKEND_UNAVAILABLE", "message": message}).encode(), JSON
        finally:
            self.leave()

    async def close(self) -> None:
        self.pool.close()
        await asyncio.to_thread(self.server.stop)


class _Connection:
    __slots__ = ("writer", "task", "busy", "since")

    def __init__(self, writer, task):
        self.writer, self.task, self.busy, self.since = writer, task, False, time.monotonic()


class Front:
    def __init__(self, root: Path, name: str, alias: str, host: str = "127.0.0.1", port: int = 8080,
                 log_dir: Path | None = None, log_inputs: str = "full", backend_timeout: float = 180):
        from kit import store

        self.root, self.name, self.alias, self.host, self.port = root, name, alias, host, port
        self.tracking_uri = store.tracking_uri(root)
        self.log_dir = Path(log_dir) if log_dir else default_log_dir(root, name, alias)
        self.log_inputs, self.backend_timeout = log_inputs, backend_timeout
        self.backend: Backend | None = None
        self.retired: set[Backend] = set()  # switched away from, still draining
        self.log: PredictionLog | None = None
        self.closing = False
        self.url: str | None = None  # once listening
        self.connections: set[_Connection] = set()
        self._reload_lock = asyncio.Lock()
        self._stop = asyncio.Event()
        self._tasks: set[asyncio.Task] = set()

    # -- registry and backends -----------------------------------------------------------------

    def resolve(self) -> str:
        """The version that holds the alias now (RegistryError if none)."""
        from mlflow.exceptions import MlflowException

        from kit import store
        from kit.registry.errors import RegistryError

        try:
            return str(store.client(self.root).get_model_version_by_alias(self.name, self.alias).version)
        except MlflowException:
            raise RegistryError(f"no version of {self.name!r} holds alias {self.alias!r} "
                                f"(see `kit models {self.name}`)") from None

    async def start_backend(self, version: str) -> Backend:
        """A scoring server for models:/NAME/VERSION on a free private port, once it answers /ping
        (another port if one is taken meanwhile); stopped again on failure. Its output goes to
        LOG_DIR/backend-vVERSION.log."""
        for attempt in range(1, 4):
            server = ScoringServer.launch(f"models:/{self.name}/{version}", free_port(),
                                          tracking_uri=self.tracking_uri,
                                          log_path=self.log_dir / f"backend-v{version}.log")
            try:
                deadline = time.monotonic() + self.backend_timeout
                while not await asyncio.to_thread(server.ready):
                    if time.monotonic() > deadline:
                        raise ScoringServerError(f"the scoring server for {self.name} v{version} did not answer "
                                                 f"within {self.backend_timeout:g} s:\n{server.log_tail()}")
                    await asyncio.sleep(0.1)
                return Backend(version, server)
            except ScoringServerError:
                retry = attempt < 3 and server.port_taken()
                await asyncio.to_thread(server.stop, 5)
                if not retry:
                    raise
            except BaseException:
                await asyncio.to_thread(server.stop, 5)
                raise
        raise AssertionError("not reached")

    async def reload(self) -> dict:
        """Follow the alias: start the new version, switch to it, drain and stop the old one."""
        async with self._reload_lock:
            old = self.backend
            if old is None or self.closing:
                return {"reloaded": False, "error": "not serving"}
            try:
                version = await asyncio.to_thread(self.resolve)
            except KitError as error:
                return self._reload_failed(old, f"cannot resolve {self.name}@{self.alias}: {error}")
            if version == old.version:
                print(f"reload: {self.name}@{self.alias} is still v{version}; nothing to do", file=sys.stderr, flush=True)
                return {"reloaded": False, "version": version}
            started = time.monotonic()
            try:
                new = await self.start_backend(version)
            except (KitError, OSError) as error:
                return self._reload_failed(old, f"v{version} did not start: {error}")
            # The switch: requests read `self.backend` once, in the same event-loop step that
            # counts them in flight, so each goes wholly to the old or wholly to the new one.
            self.backend = new
            self.retired.add(old)
            print(f"reloaded {self.name} v{old.version} -> v{new.version}", flush=True)
            await old.idle.wait()
            await old.close()
            self.retired.discard(old)
            return {"reloaded": True, "from": old.version, "to": new.version,
                    "seconds": round(time.monotonic() - started, 3)}

    def _reload_failed(self, old: Backend, why: str) -> dict:
        print(f"reload of {self.name}@{self.alias} failed, still serving v{old.version}: {why}",
              file=sys.stderr, flush=True)
        return {"reloaded": False, "version": old.version, "error": why}

    # -- HTTP ------------------------------------------------------------------------------------

    async def connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        conn = _Connection(writer, asyncio.current_task())
        self.connections.add(conn)
        peer = (writer.get_extra_info("peername") or ("",))[0]
        try:
            while not self.closing:
                conn.busy, conn.since = False, time.monotonic()
                try:
                    request = await read_request(reader, writer, MAX_BODY)
                except BadRequest as error:
                    body = json.dumps({"error_code": "BAD_REQUEST", "message": error.message}).encode()
                    writer.write(response(error.status, body, [("Content-Type", JSON)], close=True))
                    break
                if request is None:
                    break
                conn.busy = True
                started = time.perf_counter()
                try:
                    status, body, headers = await self.route(request, peer, started)
                except Exception as error:  # a bug here must cost one answer, not the connection
                    print(f"error answering {request.method} {request.path}: {type(error).__name__}: {error}",
                          file=sys.stderr, flush=True)
                    status, body, headers = _json(500, {"error": f"{type(error).__name__}: {error}"})
                close = not request.keep_alive or self.closing
                writer.write(response(status, body, headers, close, http10_keep_alive=request.http10))
                await writer.drain()
                if close:
                    break
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            self.connections.discard(conn)
            writer.close()

    async def route(self, request, peer: str, started: float) -> tuple[int, bytes, list[tuple[str, str]]]:
        path, method = request.path, request.method
        if path == "/invocations" and method == "POST":
            return await self.invocations(request, started)
        if path in FORWARDED and method == "GET":
            backend = self.backend
            status, body, content_type = await backend.forward("GET", path, {})
            return status, body, [("Content-Type", content_type), ("X-Model-Name", self.name),
                                  ("X-Model-Version", backend.version)]
        if path == "/admin/reload" and method == "POST":
            if peer not in LOCAL:
                return _json(403, {"error": "reload is allowed from 127.0.0.1 only"})
            outcome = await self.reload()
            return _json(500 if "error" in outcome else 200, outcome)
        allowed = {"/invocations": "POST", "/admin/reload": "POST", **{p: "GET" for p in FORWARDED}}.get(path)
        if allowed:
            status, body, headers = _json(405, {"error": f"{method} {path}: use {allowed}"})
            return status, body, headers + [("Allow", allowed)]
        return _json(404, {"error": f"no {path}; POST /invocations, GET /ping, /health, /version"})

    async def invocations(self, request, started: float) -> tuple[int, bytes, list[tuple[str, str]]]:
        arrived = time.time()
        request_id = request.headers.get("x-request-id") or str(uuid.uuid4())
        backend = self.backend
        status, answer, content_type = await backend.forward("POST", "/invocations", {
            "Content-Type": request.headers.get("content-type", JSON), "X-Request-Id": request_id}, request.body)
        self.log.submit(arrived, self.name, backend.version, request_id, (time.perf_counter() - started) * 1000,
                        status, request.body, answer)
        return status, answer, [("Content-Type", content_type), ("X-Model-Name", self.name),
                                ("X-Model-Version", backend.version), ("X-Request-Id", request_id)]

    # -- lifecycle -------------------------------------------------------------------------------

    def _spawn(self, coroutine) -> None:
        task = asyncio.get_running_loop().create_task(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _sweep(self) -> None:
        while True:
            await asyncio.sleep(5)
            now = time.monotonic()
            for conn in list(self.connections):
                if not conn.busy and now - conn.since > CLIENT_IDLE_SECONDS:
                    conn.writer.close()
            for backend in (self.backend, *self.retired):
                if backend is not None:
                    backend.pool.sweep(BACKEND_IDLE_SECONDS)

    def stop(self) -> None:
        """What SIGTERM / SIGINT do (call it on the event loop's thread)."""
        self._stop.set()

    async def run(self, handle_signals: bool = True) -> int:
        """Serve until stop(): SIGTERM / SIGINT call it, SIGHUP reloads (main thread only)."""
        loop = asyncio.get_running_loop()
        if handle_signals:
            for sig in (signal.SIGTERM, signal.SIGINT):
                loop.add_signal_handler(sig, self.stop)
            loop.add_signal_handler(signal.SIGHUP, lambda: self._spawn(self.reload()))
        server = listener = None
        try:
            listener = _listen(self.host, self.port)  # a taken port fails before a backend starts
            startup = asyncio.ensure_future(self._start())
            stop = asyncio.ensure_future(self._stop.wait())
            await asyncio.wait({startup, stop}, return_when=asyncio.FIRST_COMPLETED)
            if not startup.done():  # SIGTERM during start-up
                startup.cancel()
                await asyncio.gather(startup, return_exceptions=True)
                return 0
            startup.result()
            self.log = PredictionLog(self.log_dir, self.log_inputs)
            server = await asyncio.start_server(self.connection, sock=listener, limit=MAX_HEAD)
            self._spawn(self._sweep())
            self.url = f"http://{self.host}:{listener.getsockname()[1]}"
            print(f"prediction log: {self.log_dir} (inputs: {self.log_inputs}); backend output: "
                  f"{self.log_dir}/backend-v*.log; SIGHUP or POST /admin/reload follows the alias",
                  file=sys.stderr, flush=True)
            print(f"listening on {self.url} ({self.name} v{self.backend.version})", flush=True)
            await stop
            return 0
        finally:
            await self._shutdown(server, listener)
            if handle_signals:  # back to the defaults (uvloop does not restore them on close)
                for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
                    loop.remove_signal_handler(sig)

    async def _start(self) -> None:
        version = await asyncio.to_thread(self.resolve)
        self.backend = await self.start_backend(version)

    async def _shutdown(self, server, listener) -> None:
        """Stop accepting, close idle connections, let in-flight requests finish (60 s at most),
        then stop the backends and flush the prediction log."""
        self.closing = True
        if server is not None:
            server.close()
        if listener is not None:
            listener.close()
        for conn in list(self.connections):
            if not conn.busy:
                conn.writer.close()
        busy = [conn.task for conn in self.connections]
        if busy:
            await asyncio.wait(busy, timeout=60)
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        for backend in {self.backend, *self.retired} - {None}:
            await backend.close()
        if self.log is not None:
            self.log.close()


def default_log_dir(root: Path, name: str, alias: str) -> Path:
    from kit.project import mlruns_dir

    return mlruns_dir(root) / "predictions" / f"{name}-{alias}"


def serve(root: Path, name: str, alias: str, port: int = 8080, host: str = "127.0.0.1",
          log_dir: Path | None = None, log_inputs: str = "full") -> int:
    """Run the front server until SIGTERM / SIGINT; returns the exit code (0)."""
    try:
        import uvloop

        run = uvloop.run
    except ImportError:
        run = asyncio.run

    async def main() -> int:
        return await Front(root, name, alias, host, port, log_dir=log_dir, log_inputs=log_inputs).run()

    return run(main())


def _listen(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    listener = socket.socket(family, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        listener.bind((host, port))
    except OSError as error:
        listener.close()
        raise ServeError(f"cannot listen on {host}:{port}: {error.strerror or error}") from None
    listener.listen(1024)
    listener.setblocking(False)
    return listener


def _json(status: int, payload: dict) -> tuple[int, bytes, list[tuple[str, str]]]:
    return status, json.dumps(payload).encode(), [("Content-Type", JSON)]
