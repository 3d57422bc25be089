"""The front server and its HTTP, against fake scoring servers (in-process asyncio servers that
answer with their version), so switching, draining and failures are exact and fast. The real
stack is tested in tests/targets/cloud/test_cloud_e2e.py."""

from __future__ import annotations

import asyncio
import http.client
import json
import threading
import time

import pytest

from kit.errors import KitError
from kit.targets.cloud import front as front_module
from kit.targets.cloud.front import Front
from kit.targets.cloud.predlog import read_predictions
from kit.targets.cloud.pool import WorkerStartError

ROW = json.dumps({"dataframe_records": [{"x": 1}]}).encode()
SLOW = json.dumps({"dataframe_records": [{"x": "slow"}]}).encode()


# -- fake worker pools -------------------------------------------------------------------------

class FakePool:
    """Stands in for a WorkerPool: answers with its version; a body holding "slow" takes
    `delay` seconds. Records when it was closed and how many requests it still held then."""

    def __init__(self, version: str, delay: float = 0.5):
        self.version, self.delay, self.size = version, delay, 1
        self.answered = 0
        self.inflight = 0
        self.stopped_at: float | None = None
        self.inflight_at_stop: int | None = None

    def score(self, content_type: str, body: bytes):
        self.inflight += 1
        return asyncio.ensure_future(self._answer(body))

    async def _answer(self, body: bytes):
        if b"slow" in body:
            await asyncio.sleep(self.delay)
        self.answered += 1
        self.inflight -= 1
        return 200, json.dumps({"predictions": [{"version": self.version}]}).encode(), "application/json"

    async def drain(self):
        while self.inflight:
            await asyncio.sleep(0.01)

    async def close(self):
        self.stopped_at = time.monotonic()
        self.inflight_at_stop = self.inflight


# -- the front, on fake backends ---------------------------------------------------------------

def _post(port: int, body: bytes, headers: dict | None = None) -> tuple[int, dict, dict]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    connection.request("POST", "/invocations", body, {"Content-Type": "application/json", **(headers or {})})
    answer = connection.getresponse()
    payload = json.loads(answer.read())
    connection.close()
    return answer.status, answer.headers, payload  # header names are case-insensitive (uvicorn sends lowercase)


def _start_front(tmp_path, monkeypatch, registry: dict, fail: set[str] = frozenset()):
    """A Front on fake backends; `registry["version"]` is what the alias resolves to."""
    started: dict[str, FakePool] = {}

    async def start_backend(self, version):
        if version in fail:
            raise WorkerStartError(f"v{version} would not start: model file corrupt")
        fake = FakePool(version)
        started[version] = fake
        return fake

    monkeypatch.setattr(Front, "start_backend", start_backend)
    monkeypatch.setattr(Front, "resolve", lambda self: registry["version"])
    monkeypatch.setattr(front_module, "CLIENT_IDLE_SECONDS", 75)
    return started


async def _asgi_post(app, path: str, client: tuple[str, int]) -> tuple[int, bytes]:
    """One POST straight into the ASGI app, from `client` (a peer address HTTP cannot fake here)."""
    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST", "scheme": "http",
             "path": path, "raw_path": path.encode(), "query_string": b"", "root_path": "", "headers": [],
             "client": client, "server": ("127.0.0.1", 80)}
    sent = []

    async def receive():
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message):
        sent.append(message)

    await app(scope, receive, send)
    status = next(m["status"] for m in sent if m["type"] == "http.response.start")
    return status, b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")


class _Running:
    """Front.run() on an event loop in a thread (no signal handlers: only the main thread may)."""

    def __init__(self, front: Front):
        self.front, self.result = front, None
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()
        deadline = time.monotonic() + 10
        while front.url is None and time.monotonic() < deadline:
            time.sleep(0.01)
        assert front.url, "the front did not start"
        self.port = int(front.url.rsplit(":", 1)[1])

    def _run(self):
        async def main():
            self.loop = asyncio.get_running_loop()
            self.result = await self.front.run(handle_signals=False)

        asyncio.run(main())

    def call(self, coroutine):
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(timeout=30)

    def stop(self) -> int:
        self.loop.call_soon_threadsafe(self.front.stop)
        self.thread.join(timeout=30)
        return self.result


def test_headers_prediction_log_and_a_reload_that_drains_the_old_backend(tmp_path, monkeypatch, capsys):
    registry = {"version": "1"}
    started = _start_front(tmp_path, monkeypatch, registry)
    running = _Running(Front(tmp_path, "toy", "champion", port=0, log_dir=tmp_path / "log", log_inputs="hash"))
    try:
        status, headers, payload = _post(running.port, ROW, {"X-Request-Id": "req-1"})
        assert status == 200 and payload["predictions"][0]["version"] == "1"
        assert (headers["X-Model-Name"], headers["X-Model-Version"], headers["X-Request-Id"]) == ("toy", "1", "req-1")
        _, generated, _ = _post(running.port, ROW)
        assert len(generated["X-Request-Id"]) == 36  # a uuid4

        slow: dict = {}
        in_flight = threading.Thread(target=lambda: slow.update(answer=_post(running.port, SLOW)))
        in_flight.start()
        time.sleep(0.1)  # the slow request is now inside v1
        registry["version"] = "2"
        outcome = running.call(running.front.reload())
        finished_at = time.monotonic()
        in_flight.join()
        assert outcome["reloaded"] and (outcome["from"], outcome["to"]) == ("1", "2")
        assert slow["answer"][0] == 200 and slow["answer"][1]["X-Model-Version"] == "1"
        assert started["1"].stopped_at is not None and started["1"].stopped_at <= finished_at
        assert started["1"].inflight_at_stop == 0  # stopped only once the slow request was answered
        status, headers, payload = _post(running.port, ROW)
        assert headers["X-Model-Version"] == "2" and payload["predictions"][0]["version"] == "2"
        assert running.call(running.front.reload()) == {"reloaded": False, "version": "2"}
    finally:
        assert running.stop() == 0
    assert "reloaded toy v1 -> v2" in capsys.readouterr().out
    log = read_predictions(tmp_path / "log")
    assert log["request_id"].iloc[0] == "req-1"
    assert log["version"].tolist() == ["1", "1", "1", "2"]  # the slow one is logged when it was answered
    assert "input" not in log.columns and log["input_sha256"].str.len().eq(64).all()


def test_requests_during_a_reload_all_succeed_and_new_ones_go_to_the_new_version(tmp_path, monkeypatch):
    registry = {"version": "1"}
    _start_front(tmp_path, monkeypatch, registry)
    running = _Running(Front(tmp_path, "toy", "champion", port=0, log_dir=tmp_path / "log"))
    answers, stop = [], threading.Event()

    def client():
        connection = http.client.HTTPConnection("127.0.0.1", running.port, timeout=30)
        while not stop.is_set():
            connection.request("POST", "/invocations", ROW, {"Content-Type": "application/json"})
            answer = connection.getresponse()
            answer.read()
            answers.append((answer.status, answer.getheader("X-Model-Version")))

    threads = [threading.Thread(target=client) for _ in range(4)]
    try:
        for thread in threads:
            thread.start()
        time.sleep(0.3)
        registry["version"] = "2"
        assert running.call(running.front.reload())["reloaded"]
        time.sleep(0.3)
    finally:
        stop.set()
        for thread in threads:
            thread.join()
        running.stop()
    assert answers and all(status == 200 for status, _ in answers)
    versions = [v for _, v in answers]
    assert versions[0] == "1" and versions[-1] == "2"


def test_a_backend_that_does_not_start_leaves_the_old_one_serving(tmp_path, monkeypatch, capsys):
    registry = {"version": "1"}
    started = _start_front(tmp_path, monkeypatch, registry, fail={"2"})
    running = _Running(Front(tmp_path, "toy", "champion", port=0, log_dir=tmp_path / "log"))
    try:
        registry["version"] = "2"
        outcome = running.call(running.front.reload())
        assert outcome["reloaded"] is False and "model file corrupt" in outcome["error"]
        assert _post(running.port, ROW)[1]["X-Model-Version"] == "1"
        assert started["1"].stopped_at is None
    finally:
        running.stop()
    assert "reload of toy@champion failed, still serving v1" in capsys.readouterr().err


def test_routes_admin_reload_only_from_localhost_and_unknown_paths(tmp_path, monkeypatch):
    registry = {"version": "1"}
    _start_front(tmp_path, monkeypatch, registry)
    running = _Running(Front(tmp_path, "toy", "champion", port=0, log_dir=tmp_path / "log"))
    try:
        app = running.front.app()
        status, body = running.call(_asgi_post(app, "/admin/reload", ("10.1.2.3", 50000)))
        assert status == 403
        status, body = running.call(_asgi_post(app, "/admin/reload", ("127.0.0.1", 50000)))
        assert status == 200 and json.loads(body) == {"reloaded": False, "version": "1"}
        connection = http.client.HTTPConnection("127.0.0.1", running.port, timeout=10)
        connection.request("GET", "/ping")
        ping = connection.getresponse()
        ping.read()
        assert ping.status == 200 and ping.getheader("X-Model-Version") == "1"
        connection.request("GET", "/invocations")
        wrong = connection.getresponse()
        wrong.read()
        assert wrong.status == 405 and wrong.getheader("Allow") == "POST"
        connection.request("GET", "/nowhere")
        missing = connection.getresponse()
        missing.read()
        assert missing.status == 404
        connection.request("POST", "/invocations", b"x" * 10, {"Transfer-Encoding": "gzip"})
        refused = connection.getresponse()
        assert refused.status == 400 and "malformed" in json.loads(refused.read())["message"]  # was 501 (own parser)
    finally:
        running.stop()


def test_shutdown_finishes_in_flight_requests_then_stops_backends(tmp_path, monkeypatch):
    registry = {"version": "1"}
    started = _start_front(tmp_path, monkeypatch, registry)
    running = _Running(Front(tmp_path, "toy", "champion", port=0, log_dir=tmp_path / "log"))
    slow: dict = {}
    in_flight = threading.Thread(target=lambda: slow.update(answer=_post(running.port, SLOW)))
    in_flight.start()
    time.sleep(0.1)
    assert running.stop() == 0
    in_flight.join()
    assert slow["answer"][0] == 200
    assert started["1"].stopped_at is not None and started["1"].inflight_at_stop == 0
    with pytest.raises(OSError):
        _post(running.port, ROW)


def test_serve_refuses_a_missing_alias_and_a_taken_port(tmp_path, monkeypatch):
    import socket

    from kit.registry.errors import RegistryError

    def no_alias(self):
        raise RegistryError("no version of 'toy' holds alias 'champion'")

    monkeypatch.setattr(Front, "resolve", no_alias)
    with pytest.raises(RegistryError, match="holds alias"):
        front_module.serve(tmp_path, "toy", "champion", port=0, log_dir=tmp_path / "log")
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        with pytest.raises(KitError, match="cannot listen"):
            front_module.serve(tmp_path, "toy", "champion", port=taken.getsockname()[1])


def test_cli_rejects_options_of_the_other_target(capsys):
    from kit.cli import main

    assert main(["serve", "cloud", "toy", "--alias", "a", "--reject-out-of-range"]) == 2
    assert "--reject-out-of-range: not an option of the cloud target" in capsys.readouterr().err
    assert main(["serve", "edge", "toy", "--alias", "a", "--log-inputs", "hash"]) == 2
    assert "--log-inputs: not an option of the edge target" in capsys.readouterr().err
    assert main(["serve", "edge", "toy", "--alias", "a", "--workers", "2", "--max-wait-ms", "0"]) == 2
    assert "--workers, --max-wait-ms: not an option of the edge target" in capsys.readouterr().err
    with pytest.raises(SystemExit) as bad:
        main(["serve", "cloud", "toy", "--alias", "a", "--max-batch", "0"])
    assert bad.value.code == 2 and "--max-batch: '0': use a whole number >= 1" in capsys.readouterr().err
