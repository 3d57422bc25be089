"""The cloud_latency gate's parts without a scoring server: its config, the request bodies it
sends, the load test and its percentiles (the real server is in tests/targets/cloud/test_cloud_e2e.py)."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pandas as pd
import pytest
from pydantic import ValidationError

from kit.gates import GateContext
from kit.targets.cloud.gates import CloudLatency, load_test, percentile, request_bodies
from kit.targets.cloud.server import ScoringServerError, free_port, start_scoring_server

CONFIG = {"model": {"step": "train", "output": "model_dir"}, "rows": {"step": "features", "output": "test_path"}}


def context(outputs) -> GateContext:
    return GateContext(model_name="toy", alias="cloud-champion", outputs=outputs, metrics=lambda step: {},
                       champion=None, candidate=None)


def test_config_defaults_and_refusals():
    gate = CloudLatency.model_validate(CONFIG)
    assert (gate.clients, gate.requests, gate.p99_ms, gate.max_errors, gate.warmup) == (8, 2000, 20.0, 0, 200)
    assert gate.step == "train" and gate.label == "cloud_latency"
    with pytest.raises(ValidationError):
        CloudLatency.model_validate({**CONFIG, "clients": 0})
    with pytest.raises(ValidationError):
        CloudLatency.model_validate({**CONFIG, "p99": 5})  # unknown key


def test_a_missing_output_fails_the_gate_with_the_reason():
    result = CloudLatency.model_validate(CONFIG).evaluate(context({"train": {}}))
    assert not result.passed and "step 'train' has no output 'model_dir'" in result.detail


def test_bodies_hold_one_raw_row_each_with_missing_values_omitted(tmp_path):
    model = tmp_path / "model"
    model.mkdir()
    (model / "MLmodel").write_text("metadata:\n  kit.inputs: [x, device]\n")
    pd.DataFrame({"x": [1.5, None], "device": ["mobile", None], "label": [1, 0]}).to_csv(tmp_path / "rows.csv", index=False)
    bodies = [json.loads(b) for b in request_bodies(tmp_path / "rows.csv", model, 10)]
    assert bodies == [{"dataframe_records": [{"x": 1.5, "device": "mobile"}]}, {"dataframe_records": [{}]}]
    (model / "MLmodel").write_text("flavors: {}\n")  # not from save_spec_model: every column is sent
    assert json.loads(request_bodies(tmp_path / "rows.csv", model, 1)[0]) == {
        "dataframe_records": [{"x": 1.5, "device": "mobile", "label": 1}]}


def test_percentile_is_nearest_rank():
    values = [float(i) for i in range(1, 101)]
    assert percentile(values, 50) == 50.0 and percentile(values, 99) == 99.0 and percentile(values, 100) == 100.0
    assert percentile([3.0], 99) == 3.0


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    seen: list = []

    def do_POST(self):
        body = self.rfile.read(int(self.headers["Content-Length"]))
        self.seen.append(body)
        status = 400 if b"bad" in body else 200
        self.send_response(status)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"{}")

    def log_message(self, *args):
        pass


def test_load_test_counts_requests_errors_and_cycles_rows():
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        _Handler.seen.clear()
        stats = load_test(server.server_address[1], [b"good", b"bad", b"good", b"good"], clients=3, requests=40, warmup=8)
    finally:
        server.shutdown()
    assert stats["requests"] == 40 and len(_Handler.seen) == 48 and _Handler.seen.count(b"bad") == 12  # 48 / 4
    timed_bad = sum(1 for i, n_warm, n_timed in ((0, 3, 14), (1, 3, 13), (2, 2, 13))  # each client's share
                    for k in range(n_warm, n_warm + n_timed) if (i + k * 3) % 4 == 1)
    assert stats["errors"] == timed_bad and stats["first_error"].startswith("HTTP 400")
    assert 0 < stats["p50_ms"] <= stats["p99_ms"] and stats["throughput_rps"] > 0


def test_start_refuses_a_folder_that_is_not_a_model(tmp_path):
    with pytest.raises(ScoringServerError, match="not an MLflow model folder"):
        start_scoring_server(tmp_path, free_port())


def test_a_server_that_exits_reports_its_log(tmp_path):
    (tmp_path / "MLmodel").write_text("this: [is not a model\n")
    with pytest.raises(ScoringServerError, match="exited with code") as caught:
        start_scoring_server(tmp_path, free_port(), timeout=60)
    assert "Traceback" in str(caught.value) or "Error" in str(caught.value)
