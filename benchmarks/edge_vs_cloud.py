"""HTTP single-row prediction: the Node edge server against MLflow's scoring server, same model.

Runs pipelines/iris_edge.yaml in a scratch project, then serves the same model twice:
- edge: the bundle (TF.js graph model + feature spec) through the kit's Node server;
- cloud: `mlflow models serve --env-manager local` on a pyfunc wrapping the same SavedModel
  and the same feature spec (kit.features in Python).
Both get the same warm-up, then the same keep-alive client sends single-row requests one at
a time (latency) and from 4 threads (throughput). Also: bundle size, cold start (process start
to first answer). Targets: edge p99 < 2 ms, and >= 10x lower than the scoring server's p99.

    .venv/bin/python benchmarks/edge_vs_cloud.py [--requests 3000]

Prints a table and writes benchmarks/results/edge_vs_cloud.json.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import mlflow.pyfunc
from _report import save, table

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
ROW = {"sepal_length": 6.3, "sepal_width": 2.8, "petal_length": 5.1, "petal_width": 1.5}


class IrisPyfunc(mlflow.pyfunc.PythonModel):
    """The Iris model for MLflow's scoring server: the feature spec, then the SavedModel."""

    def load_context(self, context):
        import tensorflow as tf

        from kit.features import load_spec

        self.spec = load_spec(context.artifacts["spec"])
        self.model = tf.saved_model.load(context.artifacts["saved_model"])

    def predict(self, context, model_input, params=None):
        features = self.spec.transform(model_input[self.spec.input_names]).astype("float32")
        return self.model.serve(features).numpy()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run_pipeline(root: Path) -> dict[str, Path]:
    from kit.run import run
    from kit.run.plan import load_plan
    from kit.run.progress import PlainProgress

    (root / "pyproject.toml").write_text("[project]\nname = 'bench'\n")
    for name in ("notebooks", "pipelines", "data_contracts", "uv.lock"):
        (root / name).symlink_to(REPO / name)
    os.environ["KIT_PROJECT_ROOT"] = str(root)
    with open(os.devnull, "w") as sink:
        plan = load_plan(root / "pipelines" / "iris_edge.yaml")
        result = run(plan, progress=PlainProgress(list(plan.pipeline.steps), sink))
    return {"bundle": result.steps["convert"].outputs["bundle_dir"],
            "saved_model": result.steps["train"].outputs["saved_model_dir"],
            "spec": result.steps["features"].outputs["spec_path"]}


def start(command: list[str], port: int, probe, env=None) -> tuple[subprocess.Popen, float]:
    """Start a server; return it and the seconds from process start to its first answer."""
    started = time.perf_counter()
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    deadline = started + 180
    while time.perf_counter() < deadline:
        try:
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
            if probe(connection) == 200:
                return process, time.perf_counter() - started
        except OSError:
            pass
        time.sleep(0.05)
    process.kill()
    raise RuntimeError(f"{command[0]} did not answer on port {port}")


def edge_request(connection) -> int:
    query = "&".join(f"{k}={v}" for k, v in ROW.items())
    connection.request("GET", f"/predict?{query}")
    response = connection.getresponse()
    response.read()
    return response.status


def cloud_request(connection) -> int:
    body = json.dumps({"dataframe_records": [ROW]})
    connection.request("POST", "/invocations", body, {"Content-Type": "application/json"})
    response = connection.getresponse()
    response.read()
    return response.status


def measure(port: int, request, count: int) -> dict:
    connection = http.client.HTTPConnection("127.0.0.1", port)
    for _ in range(3000 if request is edge_request else 300):  # warm-up (V8 JIT for the edge)
        assert request(connection) == 200
    times, errors = [], 0
    for _ in range(count):
        started = time.perf_counter()
        errors += request(connection) != 200
        times.append((time.perf_counter() - started) * 1000)
    times.sort()
    throughput = parallel_throughput(port, request, threads=4, seconds=5)
    return {"p50_ms": times[len(times) // 2], "p99_ms": times[int(len(times) * 0.99)], "mean_ms": statistics.mean(times),
            "errors": errors, "requests": count, "throughput_rps_4_clients": throughput}


def parallel_throughput(port: int, request, threads: int, seconds: float) -> float:
    done = [0] * threads
    stop = time.perf_counter() + seconds

    def client(i):
        connection = http.client.HTTPConnection("127.0.0.1", port)
        while time.perf_counter() < stop:
            if request(connection) == 200:
                done[i] += 1

    workers = [threading.Thread(target=client, args=(i,)) for i in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    return sum(done) / seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=3000)
    args = parser.parse_args()
    from kit.targets.edge import bundle_size
    from kit.targets.edge.deploy import serve_command

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        paths = run_pipeline(root)
        model_dir = root / "pyfunc"
        mlflow.pyfunc.save_model(str(model_dir), python_model=IrisPyfunc(), pip_requirements=[],
                                 artifacts={"saved_model": str(paths["saved_model"]), "spec": str(paths["spec"])})

        edge_port, cloud_port = free_port(), free_port()
        edge, edge_cold = start(serve_command(paths["bundle"], edge_port, "127.0.0.1"), edge_port, edge_request)
        env = {**os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"}
        cloud, cloud_cold = start([str(Path(sys.executable).parent / "mlflow"), "models", "serve", "-m", str(model_dir),
                                   "--env-manager", "local", "--host", "127.0.0.1", "-p", str(cloud_port)],
                                  cloud_port, cloud_request, env=env)
        try:
            edge_figures = measure(edge_port, edge_request, args.requests)
            cloud_figures = measure(cloud_port, cloud_request, args.requests)
        finally:
            for process in (edge, cloud):
                process.terminate()
                process.wait(timeout=30)
        size = bundle_size(paths["bundle"])

    results = {"edge": {**edge_figures, "cold_start_s": edge_cold, "bundle_bytes": size},
               "cloud": {**cloud_figures, "cold_start_s": cloud_cold},
               "p99_ratio_cloud_over_edge": cloud_figures["p99_ms"] / edge_figures["p99_ms"]}
    rows = [("", "edge (Node, TF.js)", "cloud (MLflow scoring server)")]
    for key, label in [("p50_ms", "p50 ms"), ("p99_ms", "p99 ms"), ("throughput_rps_4_clients", "req/s, 4 clients"),
                       ("errors", "errors"), ("cold_start_s", "cold start s")]:
        e, c = results["edge"][key], results["cloud"][key]
        rows.append((label, f"{e:.3f}" if isinstance(e, float) else str(e), f"{c:.3f}" if isinstance(c, float) else str(c)))
    rows.append(("bundle bytes", str(size), ""))
    table(rows)
    print(f"cloud p99 / edge p99: {results['p99_ratio_cloud_over_edge']:.1f}x  (target >= 10x; edge p99 target < 2 ms)")
    save("edge_vs_cloud", results)


if __name__ == "__main__":
    main()
