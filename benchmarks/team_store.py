"""The team store's cost: the same pipelines against the embedded SQLite store and against the team
server (`kit server up`: PostgreSQL + MLflow server with basic-auth and proxied artifacts).

Whole process: each figure is `kit run PIPELINE` as a shell command, interleaved (SQLite, server,
SQLite, ...) after one warm-up of each. Pipelines: the 5 trivial chained notebooks of
runner_overhead.py and the Iris pipeline (`-p train.epochs=30`). Target: the server costs at most
1.2x SQLite for the Iris pipeline. It also counts the tracking requests each server run made (from
the server's access log): in all, per step, and by endpoint.

    .venv/bin/python benchmarks/team_store.py [--rounds 3] [--pipelines iris,five]

Prints a table and writes benchmarks/results/team_store.json.
"""

from __future__ import annotations

import argparse
import collections
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _report import save, table
from _support import KIT, Scratch

from kit.stats import DEFINITION, percentile

REQUEST = re.compile(r'"(GET|POST|PUT|PATCH|DELETE) (/[^ ?"]*)[^"]* HTTP/1\.[01]" \d+')
PIPELINES = {"iris": ("pipelines/iris.yaml", ["-p", "train.epochs=30"], 3),
             "five": ("five.yaml", [], 5)}


def five_notebooks(root: Path) -> None:
    """runner_overhead.py's 5 trivial chained notebooks, in five/ (notebooks/ links to the repo's)."""
    import nbformat

    steps = []
    for i in range(5):
        nb = nbformat.v4.new_notebook(metadata={"kernelspec": {"name": "kit", "display_name": "Python (kit)",
                                                               "language": "python"}})
        nb.cells = [nbformat.v4.new_code_cell("x = 1", metadata={"tags": ["parameters"]}),
                    nbformat.v4.new_code_cell("y = x + 1"), nbformat.v4.new_code_cell("print(y)")]
        (root / "five").mkdir(exist_ok=True)
        nbformat.write(nb, root / "five" / f"n{i}.ipynb")
        needs = f", needs: [s{i - 1}]" if i else ""
        steps.append(f"  - {{name: s{i}, notebook: five/n{i}.ipynb, parameters: {{x: {i}}}{needs}}}")
    (root / "five.yaml").write_text("name: five\nmodel: five\nsteps:\n" + "\n".join(steps) + "\n")


def project(root: Path, tracking: dict[str, str]) -> tuple[Scratch, dict[str, str]]:
    root.mkdir()
    scratch = Scratch(root)  # the repo's notebooks, pipelines and contracts, linked
    five_notebooks(root)
    subprocess.run(["git", "init", "-q"], cwd=root, check=True)
    return scratch, {**scratch.env, **tracking}


def timed_run(root: Path, env: dict[str, str], pipeline: str) -> float:
    path, args, _ = PIPELINES[pipeline]
    started = time.perf_counter()
    done = subprocess.run([*KIT, "run", path, *args], cwd=root, env=env, capture_output=True, text=True)
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"kit run {path} failed ({done.returncode}):\n{done.stderr[-3000:]}")
    return seconds


def requests_since(log: Path, offset: int) -> collections.Counter:
    text = log.read_bytes()[offset:].decode(errors="replace")
    counts = collections.Counter()
    for method, path in REQUEST.findall(text):
        if "/mlflow-artifacts/artifacts/" in path:
            path = "/api/2.0/mlflow-artifacts/artifacts/…"
        counts[f"{method} {path}"] += 1
    return counts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--pipelines", default="iris,five", help="comma-separated: iris, five")
    args = parser.parse_args()
    chosen = [p.strip() for p in args.pipelines.split(",") if p.strip()]

    results: dict = {"rounds": args.rounds, "pipelines": {}}
    # Not under a private temporary folder: PostgreSQL runs as the `postgres` user and must reach it.
    with tempfile.TemporaryDirectory(prefix="kit-team-bench-", dir="/tmp") as tmp:
        tmp_path = Path(tmp)
        tmp_path.chmod(0o755)
        server_dir = tmp_path / "server"
        clean = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_TRACKING_")}
        up = subprocess.run([*KIT, "server", "up", "--dir", str(server_dir)], env=clean, capture_output=True, text=True)
        if up.returncode != 0:
            raise SystemExit(f"kit server up failed:\n{up.stderr}")
        tracking = dict(line.removeprefix("export ").split("=", 1) for line in up.stdout.splitlines())
        log = server_dir / "logs" / "mlflow.log"
        try:
            local, local_env = project(tmp_path / "sqlite", {})
            remote, remote_env = project(tmp_path / "server-project", tracking)
            for pipeline in chosen:
                timed_run(local.root, local_env, pipeline)  # warm-up: store creation, first imports
                timed_run(remote.root, remote_env, pipeline)
                sqlite_s, server_s, requests = [], [], []
                for _ in range(args.rounds):
                    sqlite_s.append(timed_run(local.root, local_env, pipeline))
                    offset = log.stat().st_size
                    server_s.append(timed_run(remote.root, remote_env, pipeline))
                    requests.append(requests_since(log, offset))
                steps = PIPELINES[pipeline][2]
                last = requests[-1]
                results["pipelines"][pipeline] = {
                    "steps": steps, "sqlite_s": sqlite_s, "server_s": server_s,
                    "sqlite_p50_s": percentile(sqlite_s, 50), "server_p50_s": percentile(server_s, 50),
                    "server_over_sqlite": percentile(server_s, 50) / percentile(sqlite_s, 50),
                    "requests_per_run": sum(last.values()), "requests_per_step": sum(last.values()) / steps,
                    "requests_by_endpoint": dict(last.most_common()),
                }
        finally:
            subprocess.run([*KIT, "server", "down", "--dir", str(server_dir)], env=clean, capture_output=True)

    rows = [("pipeline", "SQLite p50", "server p50", "server / SQLite", "requests per run", "per step")]
    for name, found in results["pipelines"].items():
        target = "  (target <= 1.2x)" if name == "iris" else ""
        rows.append((name, f"{found['sqlite_p50_s']:.2f} s", f"{found['server_p50_s']:.2f} s",
                     f"{found['server_over_sqlite']:.3f}x{target}", str(found["requests_per_run"]),
                     f"{found['requests_per_step']:.1f}"))
    table(rows, note=f"whole `kit run` processes, interleaved, {args.rounds} rounds after a warm-up; p50: {DEFINITION}")
    for name, found in results["pipelines"].items():
        top = list(found["requests_by_endpoint"].items())[:8]
        table([(f"{name}: endpoint", "requests"), *[(endpoint, str(n)) for endpoint, n in top]])
    save("team_store", results)


if __name__ == "__main__":
    main()
