"""`kit dev` against a remote MLflow tracking server (artifacts proxied by the server): the
upstream outputs come from the server, not from this machine's run folders."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

pytestmark = pytest.mark.e2e


def test_kit_dev_fetches_upstream_outputs_from_a_remote_tracking_server(project, tracking_server, monkeypatch):
    uri = tracking_server
    project.notebook("make.ipynb", 'out_path = "o.csv"\nrows = 2',
                     "from pathlib import Path\nPath(out_path).write_text('x\\n' + '\\n'.join(map(str, range(rows))))")
    project.notebook("use.ipynb", 'in_path = "o.csv"\nsummary_path = "s.txt"',
                     "from pathlib import Path\nPath(summary_path).write_text(str(len(Path(in_path).read_text().split())))")
    pipeline = project.pipeline("""
        name: remote
        model: remote-model
        steps:
          - name: make
            notebook: notebooks/make.ipynb
            parameters: {rows: 5}
            outputs: {out_path: o.csv}
          - name: use
            notebook: notebooks/use.ipynb
            inputs: {in_path: make.out_path}
            outputs: {summary_path: s.txt}
    """)
    env = {**project.env, "MLFLOW_TRACKING_URI": uri}
    kit = [sys.executable, "-m", "kit.cli"]
    ran = subprocess.run([*kit, "run", str(pipeline)], cwd=project.root, env=env, capture_output=True, text=True,
                         timeout=600)
    assert ran.returncode == 0, ran.stderr
    for folder in (project.root / "workspaces").iterdir():  # nothing of the run is left on this machine
        subprocess.run(["rm", "-rf", str(folder)], check=True)
    assert not (project.root / "mlruns" / "artifacts").exists()

    done = subprocess.run([*kit, "dev", str(pipeline), "use"], cwd=project.root, env=env, capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    copy = project.root / "workspaces/dev/remote/use/use.ipynb"
    injected = next(c for c in nbformat.read(copy, as_version=4).cells if "kit-dev-injected" in c.metadata.get("tags", []))
    values = dict(line.split(" = ", 1) for line in injected.source.splitlines() if not line.startswith("#"))
    fetched = Path(eval(values["in_path"]))
    assert fetched.is_relative_to(project.root / "workspaces/dev/remote/use/inputs")
    assert fetched.read_text().split() == ["x", "0", "1", "2", "3", "4"]  # the run's output, rows=5
    # it came from the server, which stores it (and nothing of the run is left here)
    assert not (project.root / "mlruns" / "artifacts").exists() and fetched.read_bytes()
