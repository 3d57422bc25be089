"""The CTR example at scale, and its two serving paths.

1. `kit run pipelines/ctr.yaml` at 1M and 10M synthetic rows (a fresh scratch project each):
   wall time, and per step its duration and its kernel's peak memory (the runner logs both).
2. Training: the kit's train step (`train_s`, around `lgb.train` in the notebook) against the
   same training in a bare Python script on the same files and parameters.
3. Cloud: `kit serve cloud` on the promoted model, single-row requests from 1, 8 and 32
   concurrent keep-alive clients: p50, p99, throughput, errors.
4. Edge: the JSON-tree bundle in Node (single-row handler p99 after warm-up) against Python's
   `booster.predict` on one numpy row.
Targets: cloud p99 < 20 ms at 8 clients; edge p99 < 0.1 ms.

    .venv/bin/python benchmarks/ctr.py [--sizes 1000000,10000000] [--seconds 10]

p50 and p99 are nearest-rank percentiles (kit.stats), the definition the gates use.

Prints tables and writes benchmarks/results/ctr.json.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _report import PERCENTILES, save, table
from _support import Scratch, http_load, stop

from kit.stats import percentile

STEPS = ["logs", "features", "train", "edge_bundle", "cloud_model", "evaluate"]


def run_pipeline(project: Scratch, rows: int) -> dict:
    started = time.perf_counter()
    done = project.kit("run", "pipelines/ctr.yaml", "-p", f"logs.rows={rows}")
    wall = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"the CTR pipeline failed at {rows} rows:\n{done.stderr[-3000:]}")
    runs = project.runs("ctr")
    steps = {name: {"duration_s": runs[name].data.metrics.get("duration_s"),
                    "peak_memory_mb": runs[name].data.metrics.get("peak_memory_mb")} for name in STEPS if name in runs}
    parent = runs["ctr"].data.metrics
    return {"rows": rows, "wall_s": wall, "steps": steps, "gates_s": parent.get("kit.gates_s"),
            "contracts_s": parent.get("kit.contracts_s"), "train_s": runs["train"].data.metrics.get("train_s"),
            "auc": runs["evaluate"].data.metrics.get("auc"), "params": dict(runs["train"].data.params),
            "outputs": {k: runs[s].data.params[k] for s, k in [("features", "train_path"), ("features", "valid_path"),
                                                               ("features", "spec_path"), ("train", "booster_path"),
                                                               ("edge_bundle", "bundle_dir")]}}


BARE = r"""
import json, sys, time
import lightgbm as lgb, pandas as pd
from kit.features import load_spec
paths, params = json.loads(sys.argv[1]), json.loads(sys.argv[2])
spec = load_spec(paths["spec_path"])
train, valid = pd.read_parquet(paths["train_path"]), pd.read_parquet(paths["valid_path"])
categorical = [i for i, item in enumerate(spec.inputs) if item.kind == "categorical"]
X_train, X_valid = spec.transform(train[spec.input_names]), spec.transform(valid[spec.input_names])
train_set = lgb.Dataset(X_train, train["click"].to_numpy(), feature_name=spec.input_names, categorical_feature=categorical)
valid_set = lgb.Dataset(X_valid, valid["click"].to_numpy(), reference=train_set)
started = time.perf_counter()
lgb.train({"objective": "binary", "metric": "binary_logloss", "num_leaves": int(params["num_leaves"]),
           "learning_rate": float(params["learning_rate"]), "seed": int(params["seed"]),
           "num_threads": int(params["num_threads"]), "deterministic": True, "force_row_wise": True, "verbosity": -1},
          train_set, num_boost_round=int(params["num_boost_round"]), valid_sets=[train_set, valid_set],
          valid_names=["train", "valid"],
          callbacks=[lgb.early_stopping(int(params["early_stopping_rounds"]), verbose=False), lgb.record_evaluation({})])
print(time.perf_counter() - started)
"""


def bare_training(result: dict) -> float:
    done = subprocess.run([sys.executable, "-c", BARE, json.dumps(result["outputs"]), json.dumps(result["params"])],
                          capture_output=True, text=True, check=True)
    return float(done.stdout.strip().splitlines()[-1])


def cloud_load(port: int, rows: list[dict], clients: int, seconds: float) -> dict:
    bodies = [json.dumps({"dataframe_records": [row]}) for row in rows]

    def send(connection, i: int) -> int:
        connection.request("POST", "/invocations", bodies[i % len(bodies)], {"Content-Type": "application/json"})
        response = connection.getresponse()
        response.read()
        return response.status

    return http_load(port, send, clients, seconds)


def edge_vs_python(result: dict, rows: list[dict]) -> dict:
    import lightgbm as lgb

    from kit.features import load_spec
    from kit.targets.edge.node import bridge

    latency = bridge(Path(result["outputs"]["bundle_dir"]), rows[:200], bench=5000, warmup=5000)["latency_ms"]
    spec = load_spec(result["outputs"]["spec_path"])
    booster = lgb.Booster(model_file=result["outputs"]["booster_path"])
    X = spec.transform(rows[:200])
    for i in range(500):
        booster.predict(X[i % len(X)][None, :])
    times = []
    for i in range(5000):
        started = time.perf_counter()
        booster.predict(X[i % len(X)][None, :])
        times.append((time.perf_counter() - started) * 1000)
    return {"edge_p50_ms": latency["p50"], "edge_p99_ms": latency["p99"],
            "python_p50_ms": percentile(times, 50), "python_p99_ms": percentile(times, 99)}


def sample_rows(result: dict) -> list[dict]:
    import pandas as pd

    from kit.features import load_spec
    from kit.features.rows import request_rows

    spec = load_spec(result["outputs"]["spec_path"])
    return request_rows(pd.read_parquet(result["outputs"]["valid_path"]).head(1000), spec.input_names)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="1000000,10000000")
    parser.add_argument("--seconds", type=float, default=10.0, help="load per client count")
    args = parser.parse_args()
    results: dict = {"pipeline": []}
    with tempfile.TemporaryDirectory() as tmp:
        projects = []
        for rows in [int(n) for n in args.sizes.split(",")]:
            root = Path(tmp) / f"rows{rows}"
            root.mkdir()
            projects.append(Scratch(root))
            print(f"running the CTR pipeline on {rows:,} rows ...", flush=True)
            result = run_pipeline(projects[-1], rows)
            result["bare_train_s"] = bare_training(result)
            results["pipeline"].append(result)
        first = results["pipeline"][0]
        rows = sample_rows(first)
        server, port = projects[0].serve("cloud", "ctr", "--alias", "cloud-champion")
        try:
            cloud_load(port, rows, 4, 3)  # warm-up
            results["cloud"] = [cloud_load(port, rows, clients, args.seconds) for clients in (1, 8, 32)]
        finally:
            stop(server)
        results["edge"] = edge_vs_python(first, rows)

    print("\npipeline (per step: seconds / peak MB of the step's kernel)")
    header = ("rows", "total s", *STEPS, "gates s", "AUC")
    lines = [header]
    for r in results["pipeline"]:
        cells = [f"{r['steps'][s]['duration_s']:.0f}s/{r['steps'][s]['peak_memory_mb'] or 0:.0f}MB" if s in r["steps"] else "-"
                 for s in STEPS]
        lines.append((f"{r['rows']:,}", f"{r['wall_s']:.0f}", *cells, f"{r['gates_s'] or 0:.1f}", f"{r['auc']:.3f}"))
    table(lines)
    print("\ntraining (lgb.train only)")
    table([("rows", "kit step s", "bare script s", "kit / bare")] +
          [(f"{r['rows']:,}", f"{r['train_s']:.2f}", f"{r['bare_train_s']:.2f}", f"{r['train_s'] / r['bare_train_s']:.3f}x")
           for r in results["pipeline"]])
    print("\ncloud: kit serve cloud (MLflow scoring server behind the kit's front), single-row requests")
    table([("clients", "p50 ms", "p99 ms", "req/s", "errors")] +
          [(str(c["clients"]), f"{c['p50_ms']:.2f}", f"{c['p99_ms']:.2f}", f"{c['throughput_rps']:.0f}", str(c["errors"]))
           for c in results["cloud"]], note=PERCENTILES)
    e = results["edge"]
    print("\nedge JSON trees in Node vs booster.predict on one numpy row")
    table([("", "p50 ms", "p99 ms"), ("edge (Node handler)", f"{e['edge_p50_ms']:.4f}", f"{e['edge_p99_ms']:.4f}"),
           ("Python booster.predict", f"{e['python_p50_ms']:.4f}", f"{e['python_p99_ms']:.4f}")], note=PERCENTILES)
    print("targets: cloud p99 < 20 ms at 8 clients; edge p99 < 0.1 ms")
    save("ctr", results)


if __name__ == "__main__":
    main()
