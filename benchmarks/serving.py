"""Serving under load, measured with wrk (issue 14): `kit serve cloud`, MLflow's bare scoring
server (1 and 2 workers, two rounds each) and `kit serve edge`, at 1, 8 and 32 keep-alive
connections, single-row requests, one wrk thread, after a warm-up, on the same machine in one run.

Models: CTR (pipelines/ctr.yaml at --rows rows, in a scratch project: the cloud model is the
registered pyfunc, the edge model the JSON trees) and Iris (pipelines/iris_edge.yaml: the edge
bundle; the Iris pipelines log no MLflow model, so for the cloud servers the SavedModel and its
feature spec are wrapped in a pyfunc, as benchmarks/edge_vs_cloud.py did, and registered).
The scratch copies of the pipelines relax their latency gates: a benchmark measures, it does
not gate. Targets (CTR): cloud 8-conn p99 < 20 ms with 0 errors and throughput >= 3x the best
of two rounds of bare MLflow with the same number of worker processes; cloud 1-conn p99 <= 1.2x
bare's; 32 connections reported; edge 8-conn p99 < 1 ms and throughput >= 1.5x the 5,798
requests/s the issue measured before the fast path (`EDGE_BEFORE_RPS`).

    .venv/bin/python benchmarks/serving.py [--seconds 8] [--rounds 3] [--models ctr,iris] [--rows 50000]

Prints a table and the ratios, writes benchmarks/results/serving.json.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import re
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import mlflow.pyfunc
from _report import save, table

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
KIT = [sys.executable, "-m", "kit.cli"]
CONNECTIONS = (1, 8, 32)
EDGE_BEFORE_RPS = 5798  # `kit serve edge`, CTR, 8 connections, as issue 14 measured it before its fast path
IRIS_EXPERIMENT = "iris_edge"


class IrisPyfunc(mlflow.pyfunc.PythonModel):
    """The Iris model for the cloud servers: the feature spec, then the SavedModel."""

    def load_context(self, context):
        import tensorflow as tf

        from kit.features import load_spec

        self.spec = load_spec(context.artifacts["spec"])
        self.model = tf.saved_model.load(context.artifacts["saved_model"])

    def predict(self, context, model_input, params=None):
        features = self.spec.transform(model_input[self.spec.input_names]).astype("float32")
        return self.model.serve(features).numpy()


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def scratch_project(root: Path) -> dict:
    """A project whose pipelines are the repo's with latency gates relaxed."""
    (root / "pyproject.toml").write_text("[project]\nname = 'bench'\n")
    for name in ("notebooks", "data_contracts", "uv.lock"):
        (root / name).symlink_to(REPO / name)
    (root / "pipelines").mkdir()
    for pipeline in (REPO / "pipelines").glob("*.yaml"):
        text = re.sub(r"p99_ms: [0-9.]+", "p99_ms: 100000", pipeline.read_text())  # only latency gates have it
        blocks = text.split("- type: cloud_latency\n")
        for i in range(1, len(blocks)):  # a cloud gate on the default budget: give it one
            if "p99_ms" not in blocks[i].split("\n\n", 1)[0]:
                blocks[i] = "    p99_ms: 100000\n" + blocks[i]
        (root / "pipelines" / pipeline.name).write_text("- type: cloud_latency\n".join(blocks))
    return {**os.environ, "KIT_PROJECT_ROOT": str(root), "MLFLOW_DISABLE_TELEMETRY": "true",
            "MLFLOW_TRACKING_URI": f"sqlite:///{root / 'mlruns' / 'mlflow.db'}"}


def run_pipeline(root: Path, env: dict, pipeline: str, *params: str) -> None:
    done = subprocess.run([*KIT, "run", f"pipelines/{pipeline}", *params], cwd=root, env=env, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"{pipeline} failed:\n{done.stdout[-2000:]}\n{done.stderr[-3000:]}")


def client(env: dict):
    from mlflow import MlflowClient

    return MlflowClient(env["MLFLOW_TRACKING_URI"])


def ctr_rows(env: dict) -> list[dict]:
    import pandas as pd

    from kit.features import load_spec
    from kit.features.rows import request_rows

    runs = client(env).search_runs([client(env).get_experiment_by_name("ctr").experiment_id],
                                   filter_string="attributes.run_name = 'features'")
    params = runs[0].data.params
    spec = load_spec(params["spec_path"])
    return request_rows(pd.read_parquet(params["valid_path"]).head(1000), spec.input_names)


def register_iris_pyfunc(root: Path, env: dict) -> list[dict]:
    """The Iris SavedModel + feature spec as a pyfunc (IrisPyfunc, pickled by value), registered as
    iris-bench@cloud-champion; returns rows to send."""
    import mlflow.pyfunc
    import pandas as pd

    mlflow_client = client(env)
    experiment = mlflow_client.get_experiment_by_name(IRIS_EXPERIMENT)
    runs = mlflow_client.search_runs([experiment.experiment_id])
    params = {k: v for run in runs for k, v in run.data.params.items()}
    folder = root / "iris_pyfunc"
    mlflow.pyfunc.save_model(str(folder), python_model=IrisPyfunc(), pip_requirements=[],
                             artifacts={"saved_model": params["saved_model_dir"], "spec": params["spec_path"]})
    mlflow_client.create_registered_model("iris-bench")
    version = mlflow_client.create_model_version("iris-bench", str(folder))
    mlflow_client.set_registered_model_alias("iris-bench", "cloud-champion", version.version)
    frame = pd.read_csv(params["test_path"]) if str(params["test_path"]).endswith(".csv") else pd.read_parquet(params["test_path"])
    columns = ["sepal_length", "sepal_width", "petal_length", "petal_width"]
    return frame[columns].head(150).to_dict(orient="records")


def start(command: list[str], env: dict, cwd: Path, ready) -> subprocess.Popen:
    process = subprocess.Popen(command, cwd=cwd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                               start_new_session=True)
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"{' '.join(command)} exited with {process.returncode}")
        if ready():
            return process
        time.sleep(0.2)
    stop(process)
    raise SystemExit(f"{' '.join(command)} did not answer")


def stop(process: subprocess.Popen) -> None:
    import signal

    try:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=60)
    except (ProcessLookupError, subprocess.TimeoutExpired):
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()


def answers(port: int, method: str, path: str) -> bool:
    try:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
        connection.request(method, path)
        return connection.getresponse().status == 200
    except OSError:
        return False


def load(url: str, bodies: list[bytes], seconds: float, rounds: int) -> list[dict]:
    """Per connection count, `rounds` wrk runs back to back; each figure is the median over
    the rounds (one round's p99 on this 2-core machine swings 0.75-1.2 ms at the edge), and
    `p99_ms_rounds` keeps them all. Errors are summed."""
    import statistics

    from kit.targets.cloud import wrk

    wrk.run(url, bodies, 8, seconds=max(1.0, seconds / 2))  # warm-up: JIT, caches, lazy loads
    points = []
    for connections in CONNECTIONS:
        runs = [wrk.run(url, bodies, connections, seconds=seconds) for _ in range(rounds)]
        points.append({"connections": connections,
                       **{k: statistics.median(r[k] for r in runs) for k in ("p50_ms", "p99_ms", "throughput_rps")},
                       "errors": sum(r["errors"] for r in runs), "requests": sum(r["requests"] for r in runs),
                       "first_error": next((r["first_error"] for r in runs if r["first_error"]), ""),
                       "p99_ms_rounds": [r["p99_ms"] for r in runs]})
    return points


def measure_model(name: str, root: Path, env: dict, model: str, rows: list[dict], edge_rows: list[dict],
                  seconds: float, rounds: int) -> dict:
    cloud_bodies = [json.dumps({"dataframe_records": [row]}).encode() for row in rows]
    edge_bodies = [json.dumps(row).encode() for row in edge_rows]
    results = {}
    port = free_port()
    server = start([*KIT, "serve", "cloud", model, "--alias", "cloud-champion", "--port", str(port), "--workers", "2"],
                   env, root, lambda: answers(port, "GET", "/ping"))
    try:
        results["kit serve cloud (2 workers)"] = load(f"http://127.0.0.1:{port}/invocations", cloud_bodies, seconds, rounds)
    finally:
        stop(server)
    for workers in (1, 2):
        for round_ in (1, 2):
            port = free_port()
            server = start([str(Path(sys.executable).parent / "mlflow"), "models", "serve", "-m",
                            f"models:/{model}@cloud-champion", "--env-manager", "local", "--host", "127.0.0.1",
                            "-p", str(port), "--workers", str(workers)],
                           {**env, "PATH": f"{Path(sys.executable).parent}:{env['PATH']}",
                            "UVICORN_ACCESS_LOG": "false"}, root, lambda: answers(port, "GET", "/ping"))
            try:
                results[f"bare MLflow, {workers} worker{'s' if workers > 1 else ''}, round {round_}"] = load(
                    f"http://127.0.0.1:{port}/invocations", cloud_bodies, seconds, rounds)
            finally:
                stop(server)
    port = free_port()
    edge_model = "ctr" if name == "ctr" else "iris-classifier"  # the `model:` of ctr.yaml / iris_edge.yaml
    server = start([*KIT, "serve", "edge", edge_model, "--alias", "edge-champion", "--port", str(port)],
                   env, root, lambda: answers(port, "GET", "/health"))
    try:
        results["kit serve edge"] = load(f"http://127.0.0.1:{port}/predict", edge_bodies, seconds, rounds)
    finally:
        stop(server)
    return results


def point(series: list[dict], connections: int) -> dict:
    return next(p for p in series if p["connections"] == connections)


def ratios(results: dict, name: str) -> dict:
    cloud = results["kit serve cloud (2 workers)"]
    bare2 = [results[f"bare MLflow, 2 workers, round {r}"] for r in (1, 2)]
    best8 = max(point(s, 8)["throughput_rps"] for s in bare2)
    bare_p99_1 = min(point(s, 1)["p99_ms"] for s in bare2)
    c8, c1, c32 = point(cloud, 8), point(cloud, 1), point(cloud, 32)
    e8 = point(results["kit serve edge"], 8)
    edge = {"edge_8_p99_ms": e8["p99_ms"], "edge_8_p99_under_1ms": e8["p99_ms"] < 1}
    if name == "ctr":  # the before-figure is the CTR model's
        edge["edge_8_throughput_over_before"] = e8["throughput_rps"] / EDGE_BEFORE_RPS
    return {**edge,
            "cloud_8_p99_ms": c8["p99_ms"], "cloud_8_errors": c8["errors"], "cloud_8_p99_under_20ms": c8["p99_ms"] < 20,
            "cloud_8_throughput_over_best_bare_2_workers": c8["throughput_rps"] / best8,
            "cloud_1_p99_over_bare_2_workers_p99": c1["p99_ms"] / bare_p99_1,
            "cloud_32_p99_ms": c32["p99_ms"], "cloud_32_errors": c32["errors"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=8, help="per wrk round (default 8)")
    parser.add_argument("--rounds", type=int, default=3, help="wrk rounds per point, medians reported (default 3)")
    parser.add_argument("--models", default="ctr,iris")
    parser.add_argument("--rows", type=int, default=50000, help="CTR pipeline rows")
    args = parser.parse_args()
    from kit.targets.cloud import wrk

    if not wrk.installed():
        raise SystemExit("wrk is not installed: run scripts/setup-system")
    results: dict = {"seconds_per_round": args.seconds, "rounds_per_point": args.rounds, "cpus": os.cpu_count(), "models": {}}
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        env = scratch_project(root)
        for name in args.models.split(","):
            print(f"{name}: running its pipeline ...", flush=True)
            if name == "ctr":
                run_pipeline(root, env, "ctr.yaml", "-p", f"logs.rows={args.rows}")
                rows = edge_rows = ctr_rows(env)
                model = "ctr"
            else:
                run_pipeline(root, env, "iris_edge.yaml")
                rows = edge_rows = register_iris_pyfunc(root, env)
                model = "iris-bench"
            print(f"{name}: measuring ...", flush=True)
            measured = measure_model(name, root, env, model, rows, edge_rows, args.seconds, args.rounds)
            results["models"][name] = {"series": measured, "ratios": ratios(measured, name)}
    lines = [("model", "server", *[f"{c} conn: p50 / p99 ms, req/s, errors" for c in CONNECTIONS])]
    for name, figures in results["models"].items():
        for server, series in figures["series"].items():
            lines.append((name, server, *[f"{p['p50_ms']:.2f} / {p['p99_ms']:.2f}, {p['throughput_rps']:.0f}, {p['errors']}"
                                          for p in series]))
    table(lines)
    for name, figures in results["models"].items():
        r = figures["ratios"]
        print(f"{name}: cloud 8-conn p99 {r['cloud_8_p99_ms']:.2f} ms (target < 20), errors {r['cloud_8_errors']}; "
              f"throughput {r['cloud_8_throughput_over_best_bare_2_workers']:.2f}x the best bare 2-worker round "
              f"(target >= 3); 1-conn p99 {r['cloud_1_p99_over_bare_2_workers_p99']:.2f}x bare's (target <= 1.2); "
              f"32-conn p99 {r['cloud_32_p99_ms']:.2f} ms, errors {r['cloud_32_errors']}; "
              f"edge 8-conn p99 {r['edge_8_p99_ms']:.3f} ms (target < 1)"
              + (f", throughput {r['edge_8_throughput_over_before']:.1f}x before (target >= 1.5)"
                 if "edge_8_throughput_over_before" in r else ""))
    print("percentiles: nearest rank over wrk's 1 µs latency histogram (kit.stats)")
    save("serving", results)


if __name__ == "__main__":
    main()
