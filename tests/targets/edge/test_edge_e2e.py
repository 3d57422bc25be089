"""The edge target end to end: iris_edge.yaml with real conversion, Node gates, `kit serve edge`
over HTTP, `kit deploy edge`, the browser page in headless Chromium, a broken bundle refused."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np
import pytest

from conftest import KIT, REPO, Project

pytestmark = pytest.mark.e2e
RUNTIME = REPO / "kit" / "targets" / "edge" / "runtime"
ROW = {"sepal_length": 6.3, "sepal_width": 2.8, "petal_length": 5.1, "petal_width": 1.5}


@pytest.fixture(scope="module")
def edge(tmp_path_factory):
    root = tmp_path_factory.mktemp("edge")
    project = Project.linked(root)
    done = subprocess.run([*KIT, "run", "pipelines/iris_edge.yaml", "-p", "train.epochs=30"], cwd=root,
                          env=project.env, capture_output=True, text=True, timeout=900)
    return project, done


def step_output(project, pipeline: str, step: str, param: str) -> Path:
    run = next(r for r in project.runs(pipeline) if r.info.run_name == step)
    return Path(run.data.params[param])


def python_probabilities(project, row: dict) -> np.ndarray:
    from kit.features import load_spec
    from kit.targets.edge import python_predict

    spec = load_spec(step_output(project, "iris_edge", "features", "spec_path"))
    features = spec.transform([row]).astype(np.float32)
    return python_predict(step_output(project, "iris_edge", "train", "saved_model_dir"), features)[0]


def get(url: str, data: bytes | None = None):
    request = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json"} if data else {})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read() or b"{}")


@pytest.fixture(scope="module")
def server(edge):
    project, done = edge
    assert done.returncode == 0, done.stderr
    process = subprocess.Popen([*KIT, "serve", "edge", "iris-classifier", "--alias", "edge-champion", "--port", "0",
                                "--reject-out-of-range"], cwd=project.root, env=project.env,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    url = None
    for line in process.stdout:
        if line.startswith("listening on "):
            url = line.split()[-1]
            break
    assert url, process.stderr.read()
    yield url
    process.terminate()
    process.wait(timeout=30)


def test_pipeline_passes_the_edge_gates_and_moves_the_alias(edge):
    project, done = edge
    assert done.returncode == 0, done.stderr
    assert "registered iris-classifier v1; edge-champion moved (none) -> v1" in done.stdout
    version = project.client().get_model_version_by_alias("iris-classifier", "edge-champion")
    assert version.tags["kit.gate.edge_parity"].startswith("passed")
    assert version.tags["kit.gate.edge_latency"].startswith("passed")
    parent = next(r for r in project.runs("iris_edge") if r.info.run_name == "iris_edge")
    assert parent.data.metrics["gate.edge_parity"] <= 1e-5
    assert parent.data.metrics["gate.artifact_size"] < 100_000  # a few KB of bundle


def test_served_answer_matches_python(edge, server):
    project, _ = edge
    query = "&".join(f"{k}={v}" for k, v in ROW.items())
    status, body = get(f"{server}/predict?{query}")
    assert status == 200 and body["model"] == {"name": "iris-classifier", "version": "1"}
    expected = python_probabilities(project, ROW)
    got = np.array([body["probabilities"][label] for label in ("setosa", "versicolor", "virginica")])
    assert np.max(np.abs(got - expected)) < 1e-5
    assert body["prediction"] == ["setosa", "versicolor", "virginica"][int(expected.argmax())]
    status, batch = get(f"{server}/predict", json.dumps([ROW, {**ROW, "petal_length": 1.4, "petal_width": 0.2}]).encode())
    assert status == 200 and [p["prediction"] for p in batch["predictions"]][1] == "setosa"
    status, meta = get(f"{server}/metadata")
    assert [i["name"] for i in meta["inputs"]] == list(ROW)


@pytest.mark.parametrize("query, field", [
    ("sepal_width=2.8&petal_length=5.1&petal_width=1.5", "sepal_length"),                 # missing
    ("sepal_length=abc&sepal_width=2.8&petal_length=5.1&petal_width=1.5", "sepal_length"),  # not a number
    ("sepal_length=NaN&sepal_width=2.8&petal_length=5.1&petal_width=1.5", "sepal_length"),
    ("sepal_length=Infinity&sepal_width=2.8&petal_length=5.1&petal_width=1.5", "sepal_length"),
    ("sepal_length=6.3&sepal_width=2.8&petal_length=5.1&petal_width=1.5&colour=red", "colour"),  # unknown
    ("sepal_length=60&sepal_width=2.8&petal_length=5.1&petal_width=1.5", "sepal_length"),   # out of range
])
def test_bad_requests_get_400_naming_the_field(server, query, field):
    status, body = get(f"{server}/predict?{query}")
    assert status == 400 and body["field"] == field and body["error"]


def test_bad_bodies_do_not_crash_the_server(server):
    assert get(f"{server}/predict", b"{not json")[0] == 400
    assert get(f"{server}/predict", json.dumps([ROW] * 1001).encode())[0] in (400, 413)  # rows or bytes over the limit
    assert get(f"{server}/predict", b"[" + b" " * 70000 + b"]")[0] in (400, 413)
    assert get(f"{server}/nope")[0] == 404
    assert get(f"{server}/health") == (200, {"status": "ok", "model": {"name": "iris-classifier", "version": "1"}})


def test_browser_page_predicts_in_page_and_falls_back(edge):
    project, done = edge
    assert done.returncode == 0
    assert Path("/usr/bin/chromium").exists(), "make test installs chromium (scripts/setup-system)"
    bundle = step_output(project, "iris_edge", "convert", "bundle_dir")
    run = subprocess.run(["node", "--test", "test/browser.test.js"], cwd=RUNTIME, capture_output=True, text=True,
                         env={**os.environ, "KIT_TEST_BUNDLE": str(bundle)}, timeout=300)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "# skipped 0" in run.stdout and "# fail 0" in run.stdout and "# pass 0" not in run.stdout


def test_deploy_builds_a_worker_that_answers_and_follows_rollback(edge, tmp_path):
    project, done = edge
    assert done.returncode == 0
    from kit.registry import Registry, versions

    registry = Registry(project.root, project.client())
    first = versions.get(registry.client, "iris-classifier", "1")
    second = versions.register(registry.client, "iris-classifier", first.source, first.run_id,
                               {"kit.gates": "passed"}).version
    registry.promote("iris-classifier", second, "edge-champion", reason="test: a newer model")

    def deployed_version(out: Path) -> str:
        done = project.kit("deploy", "edge", "iris-classifier", "--alias", "edge-champion", "--out", str(out))
        assert done.returncode == 0, done.stderr
        assert "Cloudflare Workers" in (out / "README.md").read_text()
        script = ("const w = await import(process.argv[1]);"
                  "const r = await w.default.fetch(new Request('http://edge/predict?" +
                  "&".join(f"{k}={v}" for k, v in ROW.items()) + "'));"
                  "console.log(JSON.stringify(await r.json()));")
        answer = subprocess.run(["node", "--input-type=module", "-e", script, str(out / "worker.js")],
                                capture_output=True, text=True, timeout=60, cwd=tmp_path)
        assert answer.returncode == 0, answer.stderr
        return json.loads(answer.stdout)["model"]["version"]

    assert deployed_version(tmp_path / "a") == second
    assert project.kit("rollback", "iris-classifier", "--alias", "edge-champion").returncode == 0
    assert deployed_version(tmp_path / "b") == "1"


TAMPER = """
import hashlib, json, shutil
from pathlib import Path
shutil.copytree(source_bundle, bundle_dir)
shutil.copytree(source_saved_model, saved_model_dir)
shutil.copy(source_rows, rows_path)
shard = next(Path(bundle_dir, "model").glob("*.bin"))
data = bytearray(shard.read_bytes())
data[0:4] = bytes(4) if data[0:4] != bytes(4) else b"\\x00\\x00\\x80\\x3f"  # one weight changed
shard.write_bytes(bytes(data))
manifest = json.loads(Path(bundle_dir, "manifest.json").read_text())
manifest["files"]["model/" + shard.name] = hashlib.sha256(bytes(data)).hexdigest()  # hashes fine: only parity can tell
Path(bundle_dir, "manifest.json").write_text(json.dumps(manifest))
"""


def test_altered_weights_fail_the_parity_gate_and_are_not_promoted(edge):
    project, done = edge
    assert done.returncode == 0
    # notebooks/ and pipelines/ here are links to the repo's own: write the test's files elsewhere
    project.notebook("tamper.ipynb", 'source_bundle = ""\nsource_saved_model = ""\nsource_rows = ""\n'
                     'bundle_dir = "b"\nsaved_model_dir = "s"\nrows_path = "r.parquet"', TAMPER, folder="scratch")
    before = project.client().get_model_version_by_alias("iris-classifier", "edge-champion").version
    path = project.pipeline(f"""
        name: tampered
        model: iris-classifier
        steps:
          - name: tamper
            notebook: scratch/tamper.ipynb
            parameters:
              source_bundle: "{step_output(project, 'iris_edge', 'convert', 'bundle_dir')}"
              source_saved_model: "{step_output(project, 'iris_edge', 'train', 'saved_model_dir')}"
              source_rows: "{step_output(project, 'iris_edge', 'features', 'test_path')}"
            outputs: {{bundle_dir: bundle, saved_model_dir: saved_model, rows_path: rows.parquet}}
        gates:
          - type: edge_parity
            bundle: {{step: tamper, output: bundle_dir}}
            reference: {{step: tamper, output: saved_model_dir}}
            rows: {{step: tamper, output: rows_path}}
        promote:
          alias: edge-champion
          source: {{step: tamper, output: bundle_dir}}
    """, name="tampered.yaml", folder="scratch")
    result = project.kit("run", str(path))
    assert result.returncode == 3, result.stderr
    assert "edge_parity" in result.stderr and "max |Node - Python|" in result.stderr
    assert project.client().get_model_version_by_alias("iris-classifier", "edge-champion").version == before
