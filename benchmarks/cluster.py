"""The cluster path's cost per step: the 5 trivial chained notebooks (runner_overhead.py's) run by
`kit run --force` on this machine and by `kit run --force --cluster` on a local 2-worker Dask cluster
(`kit cluster up --workers 2`), both against the same MLflow tracking server (the cluster needs
one, and so the store costs the same on both sides).

Whole process: each figure is `kit run` as a shell command, interleaved (local, cluster, local, ...)
after one warm-up of each (the workers' first kernels, the server's first requests). Target: the
cluster path costs at most +0.3 s per step over the local one.

    .venv/bin/python benchmarks/cluster.py [--rounds 5]

Prints a table with the machine's load average and writes benchmarks/results/cluster.json.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _report import save, table
from _support import KIT, Scratch, free_port
from team_store import five_notebooks

from kit.stats import DEFINITION, percentile

STEPS = 5


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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()

    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="kit-cluster-bench-", dir="/tmp") as tmp:
        tmp_path = Path(tmp)
        (tmp_path / "server").mkdir()
        server, uri = tracking_server(tmp_path / "server")
        cluster_dir = tmp_path / "cluster"
        try:
            up = subprocess.run([*KIT, "cluster", "up", "--workers", "2", "--dir", str(cluster_dir)],
                                capture_output=True, text=True)
            if up.returncode != 0:
                raise SystemExit(f"kit cluster up failed:\n{up.stderr}")
            address = up.stdout.strip().split("=", 1)[1]
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
            for _ in range(args.rounds):
                local_s.append(timed_run(root, env))
                cluster_s.append(timed_run(root, env, *cluster))
        finally:
            subprocess.run([*KIT, "cluster", "down", "--dir", str(cluster_dir)], capture_output=True)
            server.terminate()
            server.wait(30)
    load_after = os.getloadavg()

    local_p50, cluster_p50 = percentile(local_s, 50), percentile(cluster_s, 50)
    per_step = (cluster_p50 - local_p50) / STEPS
    results = {"rounds": args.rounds, "steps": STEPS, "local_s": local_s, "cluster_s": cluster_s,
               "local_p50_s": local_p50, "cluster_p50_s": cluster_p50, "overhead_per_step_s": per_step,
               "cpus": os.cpu_count(), "load_average_before": load_before, "load_average_after": load_after}
    table([("5 trivial chained notebooks", "p50", "min", "max"),
           ("this machine (kit run --force)", f"{local_p50:.2f} s", f"{min(local_s):.2f} s", f"{max(local_s):.2f} s"),
           ("2-worker cluster (--cluster)", f"{cluster_p50:.2f} s", f"{min(cluster_s):.2f} s",
            f"{max(cluster_s):.2f} s"),
           ("cluster - local, per step", f"{per_step:+.2f} s  (target <= +0.3 s)", "", "")],
          note=f"whole `kit run` processes against one MLflow server, interleaved, {args.rounds} rounds after a "
               f"warm-up; {os.cpu_count()} cores, load average {load_before[0]:.1f} before, {load_after[0]:.1f} "
               f"after (other sessions share the machine); p50: {DEFINITION}")
    save("cluster", results)


if __name__ == "__main__":
    main()
