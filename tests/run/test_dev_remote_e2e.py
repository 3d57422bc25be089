"""`kit dev` against a remote MLflow tracking server (artifacts proxied by the server): the
upstream outputs come from the server, not from this machine's run folders."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import nbformat
import pytest

pytestmark = pytest.mark.e2e


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def server(tmp_path_factory):
    folder = tmp_path_factory.mktemp("mlflow-server")
    port = free_port()
    command = [str(Path(sys.executable).parent / "mlflow"), "server", "--host", "127.0.0.1", "--port", str(port),
               "--backend-store-uri", f"sqlite:///{folder / 'server.db'}",
               "--artifacts-destination", str(folder / "artifacts"), "--workers", "1"]
    process = subprocess.Popen(command, cwd=folder, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    uri = f"http://127.0.0.1:{port}"
    try:
        for _ in range(240):
            try:
                urllib.request.urlopen(f"{uri}/health", timeout=2)
                break
            except OSError:
                if process.poll() is not None:
                    pytest.fail(f"mlflow server exited: {process.stderr.read().decode()[-2000:]}")
                time.sleep(0.5)
        else:
            pytest.fail("mlflow server did not answer within 120 s")
        yield uri, folder
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()


def test_kit_dev_fetches_upstream_outputs_from_a_remote_tracking_server(project, server, monkeypatch):
    uri, server_folder = server
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
    assert any((server_folder / "artifacts").rglob("o.csv"))  # it was stored by the server
