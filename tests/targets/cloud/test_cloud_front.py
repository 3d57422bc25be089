"""The front server and its HTTP, against fake scoring servers (in-process asyncio servers that
answer with their version), so switching, draining and failures are exact and fast. The real
stack is tested in tests/e2e/test_cloud.py."""

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
from kit.targets.cloud.proxy import BadRequest, Pool, read_request, response
from kit.targets.cloud.server import ScoringServerError

ROW = json.dumps({"dataframe_records": [{"x": 1}]}).encode()
SLOW = json.dumps({"dataframe_records": [{"x": "slow"}]}).encode()


# -- the HTTP pieces ---------------------------------------------------------------------------

class _Writer:
    def __init__(self):
        self.written = b""

    def write(self, data):
        self.written += data


async def _parse(raw: bytes, max_body: int = 1 << 20):
    reader = asyncio.StreamReader(limit=4096)
    reader.feed_data(raw)
    reader.feed_eof()
    writer = _Writer()
    return await read_request(reader, writer, max_body), writer.written


def test_request_forms_are_read():
    request, _ = asyncio.run(_parse(b"POST /invocations?x=1 HTTP/1.1\r\nContent-Type: application/json\r\n"
                                    b"Content-Length: 4\r\n\r\nabcd"))
    assert (request.method, request.path, request.query, request.body, request.keep_alive) == (
        "POST", "/invocations", "x=1", b"abcd", True)
    assert request.headers["content-type"] == "application/json"
    chunked, _ = asyncio.run(_parse(b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"
                                    b"3\r\nabc\r\n2;ext=1\r\nde\r\n0\r\nTrailer: x\r\n\r\n"))
    assert chunked.body == b"abcde"
    old, _ = asyncio.run(_parse(b"GET /ping HTTP/1.0\r\n\r\n"))
    assert old.keep_alive is False
    close, _ = asyncio.run(_parse(b"GET /ping HTTP/1.1\r\nConnection: close\r\n\r\n"))
    assert close.keep_alive is False
    expect, written = asyncio.run(_parse(b"POST / HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\nhi"))
    assert expect.body == b"hi" and written == b"HTTP/1.1 100 Continue\r\n\r\n"
    assert asyncio.run(_parse(b""))[0] is None  # the client closed between requests


@pytest.mark.parametrize("raw, status", [
    (b"GARBAGE\r\n\r\n", 400),
    (b"GET / HTTP/1.1\r\nno colon here\r\n\r\n", 400),
    (b"POST / HTTP/1.1\r\nContent-Length: 2\r\nTransfer-Encoding: chunked\r\n\r\n", 400),
    (b"POST / HTTP/1.1\r\nContent-Length: -1\r\n\r\n", 400),
    (b"POST / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n", 400),
    (b"POST / HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\n", 501),
    (b"POST / HTTP/1.1\r\nContent-Length: 999\r\n\r\n", 413),
    (b"GET / HTTP/1.1\r\nX-Big: " + b"a" * 5000 + b"\r\n\r\n", 431),
])
def test_bad_requests_are_refused_with_their_status(raw, status):
    with pytest.raises(BadRequest) as caught:
        asyncio.run(_parse(raw, max_body=100))
    assert caught.value.status == status


def test_response_bytes():
    assert response(200, b"{}", [("Content-Type", "application/json")], close=True) == (
        b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Type: application/json\r\nConnection: close\r\n\r\n{}")


# -- fake scoring servers ----------------------------------------------------------------------

class FakeScoring:
    """Stands in for a ScoringServer: answers POST /invocations with its version; a body holding
    "slow" takes `delay` seconds; `close_after_answer` drops the connection after each answer
    without saying so (as a backend restarting would)."""

    def __init__(self, version: str, delay: float = 0.5, close_after_answer: bool = False):
        self.version, self.delay, self.close_after_answer = version, delay, close_after_answer
        self.connections = 0
        self.answered = 0
        self.inflight = 0
        self.stopped_at: float | None = None
        self.inflight_at_stop: int | None = None

    async def start(self) -> FakeScoring:
        self.loop = asyncio.get_running_loop()
        self.server = await asyncio.start_server(self.handle, "127.0.0.1", 0)
        self.port = self.server.sockets[0].getsockname()[1]
        return self

    async def handle(self, reader, writer):
        self.connections += 1
        try:
            while (request := await read_request(reader, writer, 1 << 20)) is not None:
                self.inflight += 1
                if b"slow" in request.body:
                    await asyncio.sleep(self.delay)
                body = json.dumps({"predictions": [{"version": self.version}]}).encode()
                status = 200 if request.path in ("/invocations", "/ping") else 404
                writer.write(response(status, body, [("Content-Type", "application/json")]))
                self.answered += 1
                self.inflight -= 1
                if self.close_after_answer:
                    break
        finally:
            writer.close()

    def stop(self, timeout: float = 30) -> None:  # called from a thread, as ScoringServer.stop is
        self.stopped_at = time.monotonic()
        self.inflight_at_stop = self.inflight
        self.loop.call_soon_threadsafe(self.server.close)


def test_pool_reuses_connections_and_retries_one_the_backend_dropped():
    async def scenario():
        keeping = await FakeScoring("1").start()
        pool = Pool("127.0.0.1", keeping.port)
        for _ in range(5):
            status, _, body = await pool.request("POST", "/invocations", {"Content-Type": "application/json"}, ROW)
            assert status == 200 and json.loads(body)["predictions"][0]["version"] == "1"
        assert keeping.connections == 1
        dropping = await FakeScoring("2", close_after_answer=True).start()
        pool = Pool("127.0.0.1", dropping.port)
        for _ in range(3):
            status, _, _ = await pool.request("POST", "/invocations", {}, ROW)
            assert status == 200
        assert dropping.connections == 3 and dropping.answered == 3
        pool.close()

    asyncio.run(scenario())


# -- the front, on fake backends ---------------------------------------------------------------

def _post(port: int, body: bytes, headers: dict | None = None) -> tuple[int, dict, dict]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    connection.request("POST", "/invocations", body, {"Content-Type": "application/json", **(headers or {})})
    answer = connection.getresponse()
    payload = json.loads(answer.read())
    connection.close()
    return answer.status, dict(answer.getheaders()), payload


def _start_front(tmp_path, monkeypatch, registry: dict, fail: set[str] = frozenset()):
    """A Front on fake backends; `registry["version"]` is what the alias resolves to."""
    started: dict[str, FakeScoring] = {}

    async def start_backend(self, version):
        if version in fail:
            raise ScoringServerError(f"v{version} would not start: model file corrupt")
        fake = await FakeScoring(version).start()
        started[version] = fake
        return front_module.Backend(version, fake)

    monkeypatch.setattr(Front, "start_backend", start_backend)
    monkeypatch.setattr(Front, "resolve", lambda self: registry["version"])
    monkeypatch.setattr(front_module, "CLIENT_IDLE_SECONDS", 75)
    return started


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
        from kit.targets.cloud.proxy import Request

        reload = Request("POST", "/admin/reload", "", {}, b"", True)
        status, body, _ = running.call(running.front.route(reload, "10.1.2.3", time.perf_counter()))
        assert status == 403
        status, body, _ = running.call(running.front.route(reload, "127.0.0.1", time.perf_counter()))
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
        refused.read()
        assert refused.status == 501
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
