"""`kit serve cloud NAME --alias ALIAS`: the kit's cloud server.

    clients --keep-alive HTTP--> front (uvicorn + starlette, this process)
        |  X-Model-Name / X-Model-Version / X-Request-Id on every answer, prediction log, /metrics
        '--> micro-batches --> N worker processes, each holding mlflow.pyfunc.load_model(models:/NAME/V)
    SIGHUP or POST /admin/reload: alias moved? start workers for vM, switch, drain and stop vN

The model is the registered MLflow model, loaded through MLflow's pyfunc API, and each request
is answered as MLflow's scoring server answers it (worker.py); the front adds versions,
request ids, the prediction log, adaptive micro-batching over the workers (pool.py) and a
reload that drops no request. HTTP comes from uvicorn on httptools (protocol.py).
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
from kit.heap import freeze_startup_objects, thaw
from kit.targets.cloud.metrics import CONTENT_TYPE as METRICS_TYPE
from kit.targets.cloud.metrics import Metrics
from kit.targets.cloud.pool import DEFAULT_MAX_BATCH, DEFAULT_MAX_WAIT, WorkerPool, WorkerStartError
from kit.targets.cloud.predlog import PredictionLog
from kit.targets.cloud.protocol import FrontProtocol
from kit.targets.follow import follow

LOCAL = {"127.0.0.1", "::1", "::ffff:127.0.0.1"}
MAX_BODY = 64 * 1024 * 1024
CLIENT_IDLE_SECONDS = 75  # an idle client connection is closed after this
SHUTDOWN_SECONDS = 60  # in-flight requests get this long to finish on SIGTERM
JSON = "application/json"


class ServeError(StepFailure):
    """The front cannot start (e.g. its port is taken)."""


class BodyTooLarge(Exception):
    pass


class Front:
    def __init__(self, root: Path, name: str, alias: str, host: str = "127.0.0.1", port: int = 8080,
                 log_dir: Path | None = None, log_inputs: str = "full", backend_timeout: float = 180,
                 workers: int | None = None, max_batch: int = DEFAULT_MAX_BATCH, max_wait: float = DEFAULT_MAX_WAIT,
                 model_uri: str | None = None, follow_interval: float | None = None,
                 follow_webhook: str | None = None):
        """`model_uri`: serve that model (any MLflow model URI or folder) as version "candidate"
        instead of following NAME@ALIAS in the registry (the cloud_latency gate does)."""
        self.root, self.name, self.alias, self.host, self.port = root, name, alias, host, port
        self.model_uri = model_uri
        self.follow_interval = follow_interval  # seconds between looks at the alias (None: SIGHUP only)
        self.follow_webhook = follow_webhook  # URL a registry webhook posts alias changes to (kit/targets/follow.py)
        if model_uri is None:
            from kit import store

            self.tracking_uri = store.tracking_uri(root)
        else:
            self.tracking_uri = None
        self.log_dir = Path(log_dir) if log_dir else default_log_dir(root, name, alias)
        self.log_inputs, self.backend_timeout = log_inputs, backend_timeout
        self.workers, self.max_batch, self.max_wait = workers, max_batch, max_wait
        self.backend: WorkerPool | None = None
        self.retired: set = set()  # switched away from, still draining
        self.log: PredictionLog | None = None
        self.metrics = Metrics(lambda: self.log)
        self.closing = False
        self.url: str | None = None  # once listening
        self._server = None
        self._reload_lock = asyncio.Lock()
        self._stop = asyncio.Event()
        self._tasks: set[asyncio.Task] = set()

    # -- registry and backends -----------------------------------------------------------------

    def resolve(self) -> str:
        """The version that holds the alias now (RegistryError if none)."""
        if self.model_uri is not None:
            return "candidate"
        from mlflow.exceptions import MlflowException

        from kit import store
        from kit.registry.errors import RegistryError

        try:
            return str(store.client(self.root).get_model_version_by_alias(self.name, self.alias).version)
        except MlflowException:
            raise RegistryError(f"no version of {self.name!r} holds alias {self.alias!r} "
                                f"(see `kit models {self.name}`)") from None

    async def start_backend(self, version: str) -> WorkerPool:
        """Worker processes for models:/NAME/VERSION, once each has loaded it. Their output goes
        to LOG_DIR/workers-vVERSION.log."""
        self.log_dir.mkdir(parents=True, exist_ok=True)
        uri = self.model_uri or f"models:/{self.name}/{version}"
        pool = WorkerPool(uri, version, self.workers, self.max_batch, self.max_wait,
                          tracking_uri=self.tracking_uri, log_path=self.log_dir / f"workers-v{version}.log",
                          on_batch=self.metrics.batch_size.observe)
        return await pool.start(self.backend_timeout)

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
            # The switch: a request reads `self.backend` once and queues on it in the same
            # event-loop step, so each goes wholly to the old or wholly to the new version.
            self.backend = new
            self.retired.add(old)
            self.metrics.serving(self.name, new.version, previous=old.version)
            print(f"reloaded {self.name} v{old.version} -> v{new.version}", flush=True)
            await old.drain()
            await old.close()
            self.retired.discard(old)
            return {"reloaded": True, "from": old.version, "to": new.version,
                    "seconds": round(time.monotonic() - started, 3)}

    async def _follow(self) -> None:
        from kit import store

        await follow(self.name, self.alias, self.resolve, lambda: self.backend.version, self.reload,
                     lambda: self.closing, self.follow_interval, self.follow_webhook, lambda: store.client(self.root))

    def _reload_failed(self, old, why: str) -> dict:
        print(f"reload of {self.name}@{self.alias} failed, still serving v{old.version}: {why}",
              file=sys.stderr, flush=True)
        return {"reloaded": False, "version": old.version, "error": why}

    # -- HTTP ------------------------------------------------------------------------------------

    def app(self):
        """The ASGI application: starlette routes, JSON for every error, requests counted."""
        from starlette.applications import Starlette
        from starlette.exceptions import HTTPException
        from starlette.responses import Response
        from starlette.routing import Route

        def model_headers(backend) -> dict[str, str]:
            return {"X-Model-Name": self.name, "X-Model-Version": backend.version}

        async def invocations(request):
            started, arrived = time.perf_counter(), time.time()
            request_id = request.headers.get("x-request-id") or str(uuid.uuid4())
            try:
                body = await _read_body(request, MAX_BODY)
            except BodyTooLarge:
                return _json(413, {"error_code": "BAD_REQUEST", "message": f"body larger than {MAX_BODY} bytes"},
                             {**model_headers(self.backend), "X-Request-Id": request_id, "Connection": "close"})
            # Read after the body (an await): a switch meanwhile may have drained and closed the
            # backend this request would otherwise queue on (a 503 under load, seen in the follow test).
            backend = self.backend
            headers = {**model_headers(backend), "X-Request-Id": request_id}
            content_type = request.headers.get("content-type") or JSON
            status, answer, answer_type = await backend.score(content_type, body)
            if status >= 400 and not answer_type.startswith(JSON):  # MLflow's 415 is plain text
                answer = json.dumps({"error_code": "BAD_REQUEST", "message": answer.decode(errors="replace")}).encode()
                answer_type = JSON
            seconds = time.perf_counter() - started
            self.metrics.latency.observe(seconds)
            self.log.submit(arrived, self.name, backend.version, request_id, seconds * 1000, status, body, answer)
            return Response(answer, status, headers, media_type=answer_type)

        async def ping(request):
            return Response("\n", 200, model_headers(self.backend), media_type=JSON)

        async def version(request):
            import mlflow.version

            return Response(mlflow.version.VERSION, 200, model_headers(self.backend), media_type=JSON)

        async def reload(request):
            if (request.client.host if request.client else "") not in LOCAL:
                return _json(403, {"error_code": "FORBIDDEN", "message": "reload is allowed from 127.0.0.1 only"})
            outcome = await self.reload()
            return _json(500 if "error" in outcome else 200, outcome)

        async def metrics(request):
            return Response(self.metrics.text(), 200, media_type=METRICS_TYPE)

        async def openapi(request):
            return _json(200, OPENAPI)

        async def http_error(request, error: HTTPException):
            if error.status_code == 404:
                message = f"no {request.url.path}; POST /invocations, GET /ping, /health, /version, /metrics, /openapi.json"
            else:
                message = f"{request.method} {request.url.path}: use {(error.headers or {}).get('Allow', '')}"
            return _json(error.status_code, {"error_code": "BAD_REQUEST" if error.status_code < 500 else "ERROR",
                                             "message": message}, error.headers)

        async def crash(request, error: Exception):  # a bug here must cost one answer, not the connection
            print(f"error answering {request.method} {request.url.path}: {type(error).__name__}: {error}",
                  file=sys.stderr, flush=True)
            return _json(500, {"error_code": "INTERNAL_ERROR", "message": f"{type(error).__name__}: {error}"})

        routes = [Route("/invocations", invocations, methods=["POST"]),
                  Route("/ping", ping, methods=["GET"]), Route("/health", ping, methods=["GET"]),
                  Route("/version", version, methods=["GET"]),
                  Route("/admin/reload", reload, methods=["POST"]),
                  Route("/metrics", metrics, methods=["GET"]),
                  Route("/openapi.json", openapi, methods=["GET"])]
        app = Starlette(routes=routes, exception_handlers={HTTPException: http_error, Exception: crash})
        return _Counted(app, self.metrics)

    # -- lifecycle -------------------------------------------------------------------------------

    def _spawn(self, coroutine) -> None:
        task = asyncio.get_running_loop().create_task(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

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
        listener = None
        try:
            listener = _listen(self.host, self.port)  # a taken port fails before a worker starts
            startup = asyncio.ensure_future(self._start())
            stop = asyncio.ensure_future(self._stop.wait())
            await asyncio.wait({startup, stop}, return_when=asyncio.FIRST_COMPLETED)
            if not startup.done():  # SIGTERM during start-up
                startup.cancel()
                await asyncio.gather(startup, return_exceptions=True)
                return 0
            startup.result()
            self.log = PredictionLog(self.log_dir, self.log_inputs)
            self._server = await self._listen_http(listener)
            # What start-up imported (mlflow, uvicorn: ~300k objects; the whole `kit run` process
            # when a gate serves in a thread) stays out of the GC while serving; thawed on the way out.
            freeze_startup_objects()
            self.url = f"http://{self.host}:{listener.getsockname()[1]}"
            print(f"prediction log: {self.log_dir} (inputs: {self.log_inputs}); workers' output: "
                  f"{self.log_dir}/workers-v*.log; SIGHUP or POST /admin/reload follows the alias; "
                  f"{self.backend.size} workers, batches of up to {self.max_batch}, "
                  f"max wait {self.max_wait * 1000:g} ms", file=sys.stderr, flush=True)
            print(f"listening on {self.url} ({self.name} v{self.backend.version})", flush=True)
            if self.follow_interval or self.follow_webhook:
                self._spawn(self._follow())
            await stop
            return 0
        finally:
            thaw()
            await self._shutdown(listener)
            if handle_signals:  # back to the defaults (uvloop does not restore them on close)
                for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
                    loop.remove_signal_handler(sig)

    async def _listen_http(self, listener: socket.socket):
        import uvicorn

        protocol = type("Protocol", (FrontProtocol,), {"on_refused": staticmethod(self._refused)})
        config = uvicorn.Config(self.app(), http=protocol, lifespan="off", access_log=False, log_config=None,
                                log_level="warning", timeout_keep_alive=CLIENT_IDLE_SECONDS,
                                timeout_graceful_shutdown=SHUTDOWN_SECONDS, server_header=False, date_header=False)
        config.load()
        server = uvicorn.Server(config)
        server.lifespan = config.lifespan_class(config)
        await server.startup(sockets=[listener])
        return server

    def _refused(self, status: int) -> None:
        self.metrics.answered("(unparsed)", status)

    async def _start(self) -> None:
        version = await asyncio.to_thread(self.resolve)
        self.backend = await self.start_backend(version)
        self.metrics.serving(self.name, version)

    async def _shutdown(self, listener) -> None:
        """Stop accepting, close idle connections, let in-flight requests finish (60 s at most),
        then stop the workers and flush the prediction log."""
        self.closing = True
        if self._server is not None:
            await self._server.shutdown(sockets=[listener])
        elif listener is not None:
            listener.close()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        for backend in {self.backend, *self.retired} - {None}:
            await backend.drain()
            await backend.close()
        if self.log is not None:
            self.log.close()


class InThread:
    """A Front serving on an event loop in a background thread (no signal handlers: only the
    main thread may have them); `with InThread(front) as url:` ... stopped on leaving."""

    def __init__(self, front: Front, timeout: float = 300):
        import threading

        self.front, self.timeout, self.error = front, timeout, None
        self.loop: asyncio.AbstractEventLoop | None = None
        self.thread = threading.Thread(target=self._run, name="kit-cloud-front", daemon=True)

    def _run(self) -> None:
        async def main():
            self.loop = asyncio.get_running_loop()
            await self.front.run(handle_signals=False)

        try:
            event_loop_runner()(main())
        except BaseException as error:  # reported by __enter__
            self.error = error

    def __enter__(self) -> str:
        self.thread.start()
        deadline = time.monotonic() + self.timeout
        while self.front.url is None and self.thread.is_alive() and time.monotonic() < deadline:
            time.sleep(0.05)
        if self.front.url is None:
            self.__exit__()
            raise self.error or ServeError(f"the cloud server did not start within {self.timeout:g} s")
        return self.front.url

    def __exit__(self, *exc) -> None:
        if self.loop is not None and self.thread.is_alive():
            self.loop.call_soon_threadsafe(self.front.stop)
        self.thread.join(timeout=120)


class _Counted:
    """ASGI middleware: every HTTP answer counted in /metrics by path and status."""

    KNOWN = {"/invocations", "/ping", "/health", "/version", "/admin/reload", "/metrics", "/openapi.json"}

    def __init__(self, app, metrics: Metrics):
        self.app, self.metrics = app, metrics

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        path = scope["path"] if scope["path"] in self.KNOWN else "(other)"

        async def counting_send(message):
            if message["type"] == "http.response.start":
                self.metrics.answered(path, message["status"])
            await send(message)

        await self.app(scope, receive, counting_send)


async def _read_body(request, limit: int) -> bytes:
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise BodyTooLarge()
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise BodyTooLarge()
        chunks.append(chunk)
    return b"".join(chunks)


def default_log_dir(root: Path, name: str, alias: str) -> Path:
    from kit.project import mlruns_dir

    return mlruns_dir(root) / "predictions" / f"{name}-{alias}"


def event_loop_runner():
    """uvloop's `run` where installed (it is, from the lock), else asyncio's: one choice for
    `kit serve cloud` and a Front InThread (the cloud_latency gate), whose figure must be the
    served figure."""
    try:
        import uvloop

        return uvloop.run
    except ImportError:
        return asyncio.run


def serve(root: Path, name: str, alias: str, port: int = 8080, host: str = "127.0.0.1",
          log_dir: Path | None = None, log_inputs: str = "full", workers: int | None = None,
          max_batch: int = DEFAULT_MAX_BATCH, max_wait: float = DEFAULT_MAX_WAIT,
          follow_interval: float | None = None, follow_webhook: str | None = None) -> int:
    """Run the cloud server until SIGTERM / SIGINT; returns the exit code (0)."""
    run = event_loop_runner()

    async def main() -> int:
        return await Front(root, name, alias, host, port, log_dir=log_dir, log_inputs=log_inputs,
                           workers=workers, max_batch=max_batch, max_wait=max_wait,
                           follow_interval=follow_interval, follow_webhook=follow_webhook).run()

    try:
        return run(main())
    except WorkerStartError as error:
        raise ServeError(str(error)) from None


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


def _json(status: int, payload: dict, headers: dict | None = None):
    from starlette.responses import Response

    return Response(json.dumps(payload), status, headers, media_type=JSON)


_ERROR = {"type": "object", "required": ["error_code", "message"],
          "properties": {"error_code": {"type": "string"}, "message": {"type": "string"}}}
_VERSIONED = {name: {"schema": {"type": "string"}} for name in ("X-Model-Name", "X-Model-Version")}
_ERRORS = {str(status): {"description": why, "content": {JSON: {"schema": _ERROR}}}
           for status, why in ((400, "the body is not a table the model can score"),
                               (413, f"body larger than {MAX_BODY} bytes"),
                               (415, "a content type the scoring server does not read"))}
OPENAPI = {
    "openapi": "3.0.3",
    "info": {"title": "kit serve cloud", "version": "1",
             "description": "An MLflow model behind the kit's front: MLflow's scoring protocol, version headers, "
                            "a prediction log, micro-batching."},
    "paths": {
        "/invocations": {"post": {
            "summary": "Score rows (MLflow's scoring protocol: dataframe_records, dataframe_split, instances, inputs)",
            "parameters": [{"name": "X-Request-Id", "in": "header", "required": False, "schema": {"type": "string"}}],
            "requestBody": {"required": True, "content": {JSON: {"schema": {
                "type": "object",
                "properties": {"dataframe_records": {"type": "array", "items": {"type": "object"}},
                               "dataframe_split": {"type": "object", "properties": {
                                   "columns": {"type": "array", "items": {"type": "string"}},
                                   "data": {"type": "array", "items": {"type": "array"}}}},
                               "instances": {"type": "array"}, "inputs": {}, "params": {"type": "object"}}}}}},
            "responses": {"200": {"description": "one prediction per row", "headers": {
                **_VERSIONED, "X-Request-Id": {"schema": {"type": "string"}}},
                "content": {JSON: {"schema": {"type": "object", "required": ["predictions"],
                                              "properties": {"predictions": {}}}}}}, **_ERRORS}}},
        **{path: {"get": {"summary": "liveness", "responses": {"200": {"description": "serving",
                                                                        "headers": _VERSIONED}}}}
           for path in ("/ping", "/health")},
        "/version": {"get": {"summary": "MLflow's version", "responses": {"200": {"description": "a version string"}}}},
        "/metrics": {"get": {"summary": "Prometheus text format", "responses": {"200": {
            "description": "requests, errors, latency, batch sizes, served version, prediction-log records",
            "content": {METRICS_TYPE.split(";")[0]: {"schema": {"type": "string"}}}}}}},
        "/openapi.json": {"get": {"summary": "this description", "responses": {"200": {"description": "OpenAPI 3"}}}},
        "/admin/reload": {"post": {"summary": "follow the alias (from 127.0.0.1 only)", "responses": {
            "200": {"description": "reloaded, or nothing to do", "content": {JSON: {"schema": {"type": "object"}}}},
            "403": {"description": "not from 127.0.0.1", "content": {JSON: {"schema": _ERROR}}},
            "500": {"description": "the new version did not start; the old one keeps serving",
                    "content": {JSON: {"schema": {"type": "object"}}}}}}},
    },
}
