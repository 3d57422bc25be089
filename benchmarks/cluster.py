"""The cluster path's cost, in two parts; both run by default, each alone with --steps-only / --variants-only.

1. Per step: the 5 trivial chained notebooks (runner_overhead.py's) run by `kit run --force` on this
   machine and by `kit run --force --cluster` on a local 2-worker Dask cluster (`kit cluster up
   --workers 2`), both against the same MLflow tracking server (the cluster needs one, and so the
   store costs the same on both sides). Each figure is `kit run` as a shell command, interleaved
   (local, cluster, local, ...) after one warm-up of each (the workers' first kernels, the server's
   first requests). Target: the cluster path costs at most +0.3 s per step over the local one.

2. A CTR sweep of 8 variants at --rows rows (default 1M): `kit sweep pipelines/ctr.yaml -p
   logs.rows=ROWS -p train.num_threads=1 --grid train.num_leaves=15,31,63,127 --grid
   train.learning_rate=0.05,0.2 --metric evaluate.auc --direction max --no-promote --jobs 2`, run
   (a) on this machine and (b) with `--cluster` on the same 2-worker cluster, as whole processes
   (wall clock), interleaved local, cluster (--sweep-rounds N, default 1). `kit sweep` has no
   --force, so each sweep gets a fresh MLflow server (its own folder) and a fresh project: the
   step cache cannot make the second one free, and both do the same work. train.num_threads=1 in
   both modes: two variants run at once on this 2-core machine (two kernels locally, one per
   worker on the cluster), each on one core, like for like (the pipeline's default of 2 threads
   would oversubscribe the cores in both modes).
   Read back from MLflow afterwards: per variant its steps' run times (start to end), the shared
   steps (logs, features: run once, in v1), the worker of each cluster step run (tag kit.worker)
   and the inputs it was sent (tag kit.inputs_sent), and the bytes of the inputs each variant's
   steps need (the artifacts' sizes in the store). Then, on paper, the same sweep on 10 workers of
   this machine's size, with the model printed beside the figure (and in the JSON):
       wall ~ start-up + shared steps + ceil(8 / 10) waves x the slowest variant
              + every step's inputs sent once over the submitter's link at --bandwidth-gbit (1 Gbit/s)
              + steps on the critical path x the per-step cluster overhead of part 1
   Both modes here have the same 2 cores, which the submitter, the scheduler, the workers' kernels
   and the MLflow server share: the sweep is CPU-bound, so the cluster cannot beat the local run on
   this machine; part 2 measures what the cluster path costs and the per-variant figures the
   estimate needs, not a speed-up.

    .venv/bin/python benchmarks/cluster.py [--rounds 5] [--rows 1000000] [--sweep-rounds 1]
                                           [--steps-only | --variants-only]

Prints tables with the machine's load average and writes benchmarks/results/cluster.json (both parts).
"""

from __future__ import annotations

import argparse
import math
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _report import save, table
from _support import KIT, REPO, Scratch, free_port, stop
from team_store import five_notebooks

from kit.stats import DEFINITION, percentile

STEPS = 5
PIPELINE = "pipelines/ctr.yaml"
GRID = ("train.num_leaves=15,31,63,127", "train.learning_rate=0.05,0.2")  # 4 x 2 = 8 variants
VARIANTS = 8
SWEPT_STEP = "train"
ESTIMATE_WORKERS = 10
ASSUMED_OVERHEAD_S = 0.3  # per step, part 1's target: used only when part 1 did not run


def tracking_server(folder: Path) -> tuple[subprocess.Popen, str]:
    """A plain MLflow server (SQLite, proxied artifacts) on a free loopback port, once it answers."""
    import urllib.request

    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_TRACKING_")}
    log = open(folder / "mlflow.log", "w")
    process = subprocess.Popen([str(Path(sys.executable).parent / "mlflow"), "server", "--host", "127.0.0.1",
                                "--port", str(port), "--workers", "1",
                                "--backend-store-uri", f"sqlite:///{folder / 'mlflow.db'}",
                                "--artifacts-destination", str(folder / "artifacts")],
                               env={**env, "MLFLOW_DISABLE_TELEMETRY": "true"}, stdout=log, stderr=log,
                               start_new_session=True)
    uri = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"{uri}/health", timeout=2):
                return process, uri
        except OSError:
            time.sleep(0.5)
    process.kill()
    raise SystemExit(f"the MLflow server did not start; see {folder / 'mlflow.log'}")


def timed_run(root: Path, env: dict[str, str], *extra: str) -> float:
    started = time.perf_counter()
    done = subprocess.run([*KIT, "run", "five.yaml", "--force", *extra], cwd=root, env=env, capture_output=True,
                          text=True)
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"kit run five.yaml {' '.join(extra)} failed ({done.returncode}):\n{done.stderr[-3000:]}")
    return seconds


def cluster_up(folder: Path) -> str:
    up = subprocess.run([*KIT, "cluster", "up", "--workers", "2", "--dir", str(folder)], capture_output=True,
                        text=True)
    if up.returncode != 0:
        raise SystemExit(f"kit cluster up failed:\n{up.stderr}")
    return up.stdout.strip().split("=", 1)[1]


# -- part 1: 5 trivial notebooks ------------------------------------------------------------------

def steps_part(tmp_path: Path, address: str, rounds: int) -> dict:
    (tmp_path / "server").mkdir()
    server, uri = tracking_server(tmp_path / "server")
    try:
        root = tmp_path / "project"
        root.mkdir()
        scratch = Scratch(root)
        five_notebooks(root)
        env = {**scratch.env, "MLFLOW_TRACKING_URI": uri}
        env.pop("KIT_CLUSTER", None)
        cluster = ("--cluster", address)
        timed_run(root, env)  # warm-up: the experiment, the first imports, the workers' first kernels
        timed_run(root, env, *cluster)
        local_s, cluster_s = [], []
        for _ in range(rounds):
            local_s.append(timed_run(root, env))
            cluster_s.append(timed_run(root, env, *cluster))
    finally:
        stop(server)
    local_p50, cluster_p50 = percentile(local_s, 50), percentile(cluster_s, 50)
    return {"rounds": rounds, "steps": STEPS, "local_s": local_s, "cluster_s": cluster_s, "local_p50_s": local_p50,
            "cluster_p50_s": cluster_p50, "overhead_per_step_s": (cluster_p50 - local_p50) / STEPS}


def steps_table(r: dict, load: str) -> None:
    local_s, cluster_s, per_step = r["local_s"], r["cluster_s"], r["overhead_per_step_s"]
    table([("5 trivial chained notebooks", "p50", "min", "max"),
           ("this machine (kit run --force)", f"{r['local_p50_s']:.2f} s", f"{min(local_s):.2f} s",
            f"{max(local_s):.2f} s"),
           ("2-worker cluster (--cluster)", f"{r['cluster_p50_s']:.2f} s", f"{min(cluster_s):.2f} s",
            f"{max(cluster_s):.2f} s"),
           ("cluster - local, per step", f"{per_step:+.2f} s  (target <= +0.3 s)", "", "")],
          note=f"whole `kit run` processes against one MLflow server, interleaved, {r['rounds']} rounds after a "
               f"warm-up; {load}; p50: {DEFINITION}")


# -- part 2: a CTR sweep of 8 variants ------------------------------------------------------------

def sweep_once(folder: Path, rows: int, address: str | None) -> dict:
    """One `kit sweep` as a shell command in a fresh project against a fresh MLflow server, then its runs."""
    (folder / "server").mkdir(parents=True)
    server, uri = tracking_server(folder / "server")
    try:
        root = folder / "project"
        root.mkdir()
        scratch = Scratch(root)
        env = {**scratch.env, "MLFLOW_TRACKING_URI": uri}
        env.pop("KIT_CLUSTER", None)
        command = [*KIT, "sweep", PIPELINE, "-p", f"logs.rows={rows}", "-p", "train.num_threads=1",
                   *(arg for axis in GRID for arg in ("--grid", axis)), "--metric", "evaluate.auc",
                   "--direction", "max", "--no-promote", "--jobs", "2", *(("--cluster", address) if address else ())]
        started = time.perf_counter()
        done = subprocess.run(command, cwd=root, env=env, capture_output=True, text=True)
        wall = time.perf_counter() - started
        if done.returncode != 0:
            mode = "--cluster" if address else "locally"
            raise SystemExit(f"kit sweep {mode} failed ({done.returncode}):\n{done.stderr[-3000:]}")
        return {"mode": "cluster" if address else "local", "wall_s": wall, **read_sweep(uri)}
    finally:
        stop(server)


def read_sweep(uri: str) -> dict:
    """The sweep as MLflow holds it: per variant its steps' times, workers, inputs and their sizes."""
    from mlflow import MlflowClient

    from kit.pipeline import load

    pipeline = load(REPO / PIPELINE, root=REPO, check_kernel=False)
    affected = {SWEPT_STEP} | pipeline.dependents(SWEPT_STEP)
    client = MlflowClient(uri)
    experiment = client.get_experiment_by_name(pipeline.name)
    runs = client.search_runs([experiment.experiment_id], max_results=5000)
    sweep_run = next(r for r in runs if r.data.tags.get("kit.kind") == "sweep")
    variant_runs = sorted((r for r in runs if r.data.tags.get("kit.sweep.run_id") == sweep_run.info.run_id),
                          key=lambda r: int(r.data.tags["kit.sweep.variant"]))
    sizes: dict[tuple[str, str], int] = {}

    def size(run, output: str) -> int:
        """Bytes of a step run's output in the store (a cached run's: its producer's)."""
        run_id = run.data.tags.get("kit.cache.source_run", run.info.run_id)
        if (run_id, output) not in sizes:
            sizes[run_id, output] = tree_bytes(client, run_id, f"outputs/{output}")
        return sizes[run_id, output]

    variants = []
    for variant in variant_runs:
        steps = {r.data.tags["kit.step"]: r for r in runs
                 if r.data.tags.get("mlflow.parentRunId") == variant.info.run_id}
        shown = {}
        for name, run in steps.items():
            tags = run.data.tags
            inputs = {param: size(steps[source], output)
                      for param, (source, output) in pipeline.steps[name].inputs.items()}
            sent = tags.get("kit.inputs_sent")
            sent_params = [p for p in (sent or "").split(", ") if p in inputs]
            shown[name] = {"seconds": (run.info.end_time - run.info.start_time) / 1000,
                           "status": tags.get("kit.status"),
                           "worker": tags.get("kit.worker_name") or tags.get("kit.worker"), "input_bytes": inputs,
                           "output_bytes": 0 if tags.get("kit.status") == "cached" else
                           tree_bytes(client, run.info.run_id, "outputs"),
                           "inputs_sent": sent, "sent_bytes": sum(inputs[p] for p in sent_params) if sent else None}
        own = [shown[n] for n in pipeline.steps if n in affected and n in shown]
        variants.append({
            "number": int(variant.data.tags["kit.sweep.variant"]),
            "values": {k.removeprefix("kit.sweep.param."): v for k, v in variant.data.tags.items()
                       if k.startswith("kit.sweep.param.")},
            "state": variant.data.tags.get("kit.sweep.status"),
            "auc": steps["evaluate"].data.metrics.get("auc") if "evaluate" in steps else None,
            "best_iteration": steps[SWEPT_STEP].data.metrics.get("best_iteration") if SWEPT_STEP in steps else None,
            "run_s": (variant.info.end_time - variant.info.start_time) / 1000,
            "variant_steps_s": sum(s["seconds"] for s in own),  # its own steps (train and after), one after another
            "input_bytes": sum(sum(s["input_bytes"].values()) for s in own),
            "output_bytes": sum(s["output_bytes"] for s in own),
            "sent_bytes": sum(s["sent_bytes"] or 0 for s in own) if any(s["inputs_sent"] for s in own) else None,
            "workers": sorted({s["worker"] for s in own if s["worker"]}),
            "steps": shown})
    first = variants[0]["steps"]
    shared = [n for n in pipeline.steps if n not in affected]
    return {"sweep_run_s": (sweep_run.info.end_time - sweep_run.info.start_time) / 1000, "shared_steps": shared,
            "shared_s": sum(first[n]["seconds"] for n in shared),
            "shared_input_bytes": sum(sum(first[n]["input_bytes"].values()) for n in shared),
            "shared_output_bytes": sum(first[n]["output_bytes"] for n in shared),
            "steps_per_variant": len(affected), "variants": variants}


def tree_bytes(client, run_id: str, path: str) -> int:
    return sum(tree_bytes(client, run_id, f.path) if f.is_dir else (f.file_size or 0)
               for f in client.list_artifacts(run_id, path))


def sweep_part(tmp_path: Path, address: str, rows: int, rounds: int) -> dict:
    local, cluster = [], []
    for i in range(rounds):  # interleaved: local, cluster, local, ...
        local.append(sweep_once(tmp_path / f"sweep-local-{i}", rows, None))
        cluster.append(sweep_once(tmp_path / f"sweep-cluster-{i}", rows, address))
    return {"rows": rows, "rounds": rounds, "grid": list(GRID), "num_threads": 1, "jobs": 2, "local": local,
            "cluster": cluster}


def p50(sweeps: list[dict], key) -> float:
    return percentile([key(s) for s in sweeps], 50)


def estimate(part: dict, overhead: float | None, bandwidth_gbit: float, workers: int) -> dict:
    """The same sweep on `workers` workers of this machine's size, on paper, from the local figures."""
    local = part["local"]
    per_variant = [p50(local, lambda s, i=i: s["variants"][i]["variant_steps_s"]) for i in range(VARIANTS)]
    slowest = max(per_variant)
    shared = p50(local, lambda s: s["shared_s"])
    startup = p50(local, lambda s: s["wall_s"] - s["sweep_run_s"])
    # A negative figure (the cluster run was the faster one: noise, other load) counts as no overhead.
    overhead_s = max(overhead, 0.0) if overhead is not None else ASSUMED_OVERHEAD_S
    first = local[0]
    sent = (first["shared_input_bytes"] + first["shared_output_bytes"]
            + sum(v["input_bytes"] + v["output_bytes"] for v in first["variants"]))
    transfer = sent * 8 / (bandwidth_gbit * 1e9)

    def path(waves: int) -> int:  # steps one after another: the shared ones, then a variant's per wave
        return len(first["shared_steps"]) + waves * first["steps_per_variant"]

    waves = math.ceil(VARIANTS / workers)
    steps_on_path = path(waves)
    wall = startup + shared + waves * slowest + transfer + steps_on_path * overhead_s
    two = math.ceil(VARIANTS / 2)
    check = startup + shared + two * slowest + path(two) * overhead_s
    return {
        "workers": workers, "wall_s": wall,
        "model": (f"wall = start-up + shared steps + ceil({VARIANTS}/{workers}) waves x slowest variant + transfer + "
                  f"steps on the critical path x per-step cluster overhead (part 1's, 0 if negative), the sweep "
                  f"run with one variant per worker (--jobs {min(VARIANTS, workers)}); transfer = every step's "
                  f"input files "
                  f"sent to its worker and its outputs sent back, all over the submitter's one link at "
                  f"{bandwidth_gbit:g} Gbit/s (no input held by a worker: an upper bound; the MLflow server "
                  f"assumed beside the submitter); steps on the critical path = shared steps + waves x a "
                  f"variant's steps; per-variant and shared times are this machine's local step runs (each variant "
                  f"on one core, train.num_threads=1), so a worker of this size running one variant is at least "
                  f"as fast (its own cores, no second kernel beside it)"),
        "startup_s": startup, "shared_s": shared, "waves": waves, "slowest_variant_s": slowest,
        "per_variant_s": per_variant, "transfer_bytes": sent, "bandwidth_gbit_s": bandwidth_gbit,
        "transfer_s": transfer, "steps_on_critical_path": steps_on_path, "overhead_per_step_s": overhead_s,
        "overhead_measured": overhead is not None, "overhead_part1_s": overhead,
        "same_model_at_2_workers_s": check,  # against the measured 2-worker cluster wall (no transfer on loopback)
    }


def sweep_tables(part: dict, est: dict, load: str) -> None:
    local, cluster = part["local"], part["cluster"]
    mb = 1e6

    def variant_row(i: int) -> tuple[str, ...]:
        v = local[0]["variants"][i]
        shown = " ".join(f"{k.split('.', 1)[1]}={val}" for k, val in v["values"].items())
        workers = sorted({w for s in cluster for w in s["variants"][i]["workers"]})
        auc = f"{v['auc']:.4f}" if v["auc"] is not None else "-"
        sent = [s["variants"][i]["sent_bytes"] for s in cluster if s["variants"][i]["sent_bytes"] is not None]
        return (f"v{v['number']} {shown}", auc, f"{p50(local, lambda s: s['variants'][i]['variant_steps_s']):.1f} s",
                f"{p50(cluster, lambda s: s['variants'][i]['variant_steps_s']):.1f} s",
                f"{v['input_bytes'] / mb:.1f} MB", f"{max(sent) / mb:.1f} MB" if sent else "-", ", ".join(workers))

    rows = [(f"CTR sweep, {VARIANTS} variants, {part['rows']:,} rows", "auc", "local -j 2", "cluster",
             "inputs needed", "sent (cluster)", "cluster workers"),
            ("whole `kit sweep` process", "", f"{p50(local, lambda s: s['wall_s']):.1f} s",
             f"{p50(cluster, lambda s: s['wall_s']):.1f} s", "", "", ""),
            (f"shared steps in v1 ({', '.join(local[0]['shared_steps'])})", "",
             f"{p50(local, lambda s: s['shared_s']):.1f} s",
             f"{p50(cluster, lambda s: s['shared_s']):.1f} s", f"{local[0]['shared_input_bytes'] / mb:.1f} MB", "", ""),
            *(variant_row(i) for i in range(VARIANTS))]
    table(rows, note=f"whole processes, each in a fresh project and MLflow server, interleaved local, cluster, "
                     f"{part['rounds']} round(s), no warm-up; per variant: its own {local[0]['steps_per_variant']} "
                     f"step runs (train and after) start to end, from MLflow; inputs: the files its steps read, "
                     f"sizes from the store; both modes 2 variants at a time on the same 2 cores "
                     f"(train.num_threads=1): CPU-bound, the cluster cannot be faster here; {load}; p50: {DEFINITION}")
    measured = (f"part 1: {est['overhead_part1_s']:+.2f} s" if est["overhead_measured"]
                else "not measured (part 1 skipped): part 1's target")
    table([(f"on paper: the same sweep on {est['workers']} workers of this machine's size", "seconds"),
           ("start-up and bookkeeping outside the sweep run (local, measured)", f"{est['startup_s']:.1f}"),
           ("shared steps (local, measured)", f"{est['shared_s']:.1f}"),
           (f"{est['waves']} wave(s) x slowest variant (local, measured)",
            f"{est['waves'] * est['slowest_variant_s']:.1f}"),
           (f"inputs and outputs: {est['transfer_bytes'] / mb:.0f} MB at {est['bandwidth_gbit_s']:g} Gbit/s (assumed)",
            f"{est['transfer_s']:.1f}"),
           (f"{est['steps_on_critical_path']} steps x {est['overhead_per_step_s']:+.2f} s overhead ({measured})",
            f"{est['steps_on_critical_path'] * est['overhead_per_step_s']:.1f}"),
           (f"estimated wall on {est['workers']} workers", f"{est['wall_s']:.1f}"),
           ("check: the same model at 2 workers (4 waves x slowest) vs the measured cluster wall",
            f"{est['same_model_at_2_workers_s']:.1f} vs {p50(cluster, lambda s: s['wall_s']):.1f}")],
          note=est["model"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=5, help="part 1: rounds of the 5 notebooks (default 5)")
    parser.add_argument("--rows", type=int, default=1_000_000, help="part 2: CTR rows (default 1000000)")
    parser.add_argument("--sweep-rounds", type=int, default=1, help="part 2: sweeps per mode (default 1)")
    parser.add_argument("--bandwidth-gbit", type=float, default=1.0,
                        help="part 2's estimate: the network the inputs cross, Gbit/s (default 1)")
    only = parser.add_mutually_exclusive_group()
    only.add_argument("--steps-only", action="store_true", help="part 1 only (the 5 notebooks)")
    only.add_argument("--variants-only", action="store_true", help="part 2 only (the CTR sweep)")
    args = parser.parse_args()

    results: dict = {"cpus": os.cpu_count()}
    results["load_average_before"] = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="kit-cluster-bench-", dir="/tmp") as tmp:
        tmp_path = Path(tmp)
        cluster_dir = tmp_path / "cluster"
        try:
            address = cluster_up(cluster_dir)
            if not args.variants_only:
                results["steps"] = steps_part(tmp_path, address, args.rounds)
            if not args.steps_only:
                results["sweep"] = sweep_part(tmp_path, address, args.rows, args.sweep_rounds)
        finally:
            subprocess.run([*KIT, "cluster", "down", "--dir", str(cluster_dir)], capture_output=True)
    results["load_average_after"] = load_after = os.getloadavg()
    before = results["load_average_before"]
    load = (f"{os.cpu_count()} cores, load average {before[0]:.1f} before, {load_after[0]:.1f} after (other sessions "
            f"share the machine)")
    if "steps" in results:
        steps_table(results["steps"], load)
    if "sweep" in results:
        overhead = results["steps"]["overhead_per_step_s"] if "steps" in results else None
        results["sweep"]["estimate"] = est = estimate(results["sweep"], overhead, args.bandwidth_gbit, ESTIMATE_WORKERS)
        sweep_tables(results["sweep"], est, load)
    save("cluster", results)


if __name__ == "__main__":
    main()
