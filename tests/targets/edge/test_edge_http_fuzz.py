"""The edge Node server over HTTP: Schemathesis fuzzes it from its own OpenAPI description (zero
5xx, every 4xx with a JSON error body), /metrics parses with prometheus_client and counts what was
sent, and an oversized request head gets a JSON 431 naming the limit. The server is started with
the command `kit serve edge` runs (serve_command), on a small LightGBM JSON-tree bundle."""

from __future__ import annotations

import json
import os
import select
import socket
import subprocess
import urllib.error
import urllib.request

import numpy as np
import pandas as pd
import pytest
import schemathesis
from schemathesis.config import SchemathesisConfig
from hypothesis import HealthCheck, settings
from prometheus_client.parser import text_string_to_metric_families

from kit.features import FeatureSpec, categorical, numeric
from kit.targets.edge import write_bundle
from kit.targets.edge.deploy import serve_command
from kit.targets.edge.lightgbm import export_booster

lgb = pytest.importorskip("lightgbm")

# Derandomized (the same cases every run); KIT_FUZZ_EXAMPLES=600 for a longer run.
EXAMPLES_PER_OPERATION = int(os.environ.get("KIT_FUZZ_EXAMPLES", "60"))
CASES_RUN: list[str] = []


@pytest.fixture(scope="module")
def bundle(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("edge-http")
    rng = np.random.default_rng(3)
    n = 600
    raw = pd.DataFrame({"bid": rng.uniform(0, 5, n), "depth": rng.integers(1, 20, n).astype(float),
                        "device": rng.choice(["mobile", "desktop", "tablet"], n).astype(object)})
    spec = FeatureSpec.of(numeric("bid", raw["bid"], transform="identity", missing="nan"),
                          numeric("depth", raw["depth"], transform="identity", missing="fill"),
                          categorical("device", raw["device"], output="index"))
    y = (raw["bid"] + (raw["device"] == "mobile") * 2 + rng.normal(0, 1, n) > 3.5).astype(int)
    booster = lgb.train({"objective": "binary", "num_leaves": 7, "verbose": -1, "seed": 1},
                        lgb.Dataset(spec.transform(raw[spec.input_names]), y, categorical_feature=[2]), num_boost_round=10)
    model_dir = export_booster(booster, tmp / "model").parent
    return write_bundle(tmp / "bundle", model_dir=model_dir, kind="lightgbm-json", task="binary",
                        labels=["no_click", "click"], feature_spec=spec, model_name="ctr-mini")


@pytest.fixture(scope="module")
def server(bundle):
    process = subprocess.Popen(serve_command(bundle, 0, "127.0.0.1"), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        ready, _, _ = select.select([process.stdout], [], [], 30)
        line = process.stdout.readline() if ready else ""
        assert line.startswith("listening on "), line + process.stderr.read() if process.poll() is not None else line
        yield line.split()[-1]
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    assert process.returncode == 0, process.stderr.read()  # no crash while fuzzed


@pytest.fixture(scope="module")
def api_schema(server):
    # A schema-violating request may also be refused as too large (413): a batch past maxItems
    # is often past the body limit too.
    config = SchemathesisConfig.from_dict({"checks": {"negative_data_rejection": {"expected-statuses": [400, 404, 405, 413]}}})
    return schemathesis.openapi.from_url(f"{server}/openapi.json", config=config)


schema = schemathesis.pytest.from_fixture("api_schema")


def every_4xx_has_a_json_error(ctx, response, case):
    if 400 <= response.status_code < 500:
        assert response.headers.get("content-type", [""])[0].startswith("application/json"), response.headers
        if case.method.upper() != "HEAD":
            body = json.loads(response.text)
            assert isinstance(body.get("error"), str) and body["error"], body
            assert "field" in body, body


@schema.parametrize()
@settings(max_examples=EXAMPLES_PER_OPERATION, derandomize=True, database=None, deadline=None,
          suppress_health_check=list(HealthCheck))
def test_schemathesis_finds_no_5xx_and_json_4xx(case):
    CASES_RUN.append(case.method)
    response = case.call_and_validate(additional_checks=[every_4xx_has_a_json_error])
    assert response.status_code < 500, response.text


def test_fuzz_ran_cases(server):
    # Runs after the parametrized test in file order; the count goes into the report.
    print(f"schemathesis cases against the edge server: {len(CASES_RUN)}")
    assert len(CASES_RUN) >= 2 * EXAMPLES_PER_OPERATION


def get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=10) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


def test_metrics_parse_and_count_the_requests_sent(bundle):
    # A server of its own, so the counters hold exactly what this test sent.
    process = subprocess.Popen(serve_command(bundle, 0, "127.0.0.1"), stdout=subprocess.PIPE, text=True)
    try:
        url = process.stdout.readline().split()[-1]
        for _ in range(7):
            assert get(f"{url}/predict?bid=1.5&depth=3&device=mobile")[0] == 200
        for _ in range(2):
            assert get(f"{url}/predict?bid=oops")[0] == 400
        assert get(f"{url}/nowhere")[0] == 404
        request = urllib.request.Request(f"{url}/predict", data=json.dumps([{"bid": 1}] * 4).encode(), method="POST")
        assert json.loads(urllib.request.urlopen(request, timeout=10).read())["predictions"][3]["prediction"]
        status, text = get(f"{url}/metrics")
    finally:
        process.terminate()
        process.wait(timeout=10)
    assert status == 200
    families = {f.name: f for f in text_string_to_metric_families(text)}
    requests = {(s.labels["route"], s.labels["method"], s.labels["status"]): s.value
                for s in families["kit_edge_requests"].samples if s.name == "kit_edge_requests_total"}
    assert requests == {("/predict", "GET", "200"): 7, ("/predict", "GET", "400"): 2, ("other", "GET", "404"): 1,
                        ("/predict", "POST", "200"): 1}
    errors = {s.labels["status"]: s.value for s in families["kit_edge_request_errors"].samples if s.name.endswith("_total")}
    assert errors == {"400": 2, "404": 1}
    latency = {s.name: s for s in families["kit_edge_request_duration_seconds"].samples}
    assert latency["kit_edge_request_duration_seconds_count"].value == 11
    rows = [s for s in families["kit_edge_batch_rows"].samples]
    assert {s.name: s.value for s in rows if not s.name.endswith("_bucket")} == {"kit_edge_batch_rows_count": 8, "kit_edge_batch_rows_sum": 11}
    assert [s.labels for s in families["kit_edge_model_info"].samples] == [{"name": "ctr-mini", "version": "0", "kind": "lightgbm-json"}]


def test_an_oversized_request_head_gets_a_json_431_naming_the_limit(server):
    host, port = server.removeprefix("http://").split(":")
    for head in (f"GET /predict?bid={'1' * 20000} HTTP/1.1\r\nHost: x\r\n\r\n",
                 f"GET /health HTTP/1.1\r\nHost: x\r\nX-Big: {'a' * 17000}\r\n\r\n"):
        with socket.create_connection((host, int(port)), timeout=10) as sock:
            sock.sendall(head.encode())
            answer = b""
            while chunk := sock.recv(65536):
                answer += chunk
        status_line, _, rest = answer.decode().partition("\r\n")
        headers, _, body = rest.partition("\r\n\r\n")
        assert status_line.startswith("HTTP/1.1 431")
        assert "content-type: application/json" in headers.lower()
        assert "16384 bytes" in json.loads(body)["error"]
    assert get(f"{server}/health")[0] == 200
