"""JupyterLab as `make lab` starts it, with the package's Jupytext extension: saving the paired
Iris evaluate notebook updates its `.py`, a `.py` opens as a notebook, and `kit dev` prints
the URL of its working copy in the running Lab."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest

from conftest import REPO, Project, free_port, serving

pytestmark = pytest.mark.e2e
TOKEN = "kit-test-token"


@pytest.fixture
def lab(project: Project, tmp_path_factory):
    for name in ("notebooks", "pipelines"):
        shutil.copytree(REPO / name, project.root / name)
    (project.root / "data_contracts").symlink_to(REPO / "data_contracts")
    runtime = tmp_path_factory.mktemp("jupyter-runtime")
    env = {**project.env, "JUPYTER_RUNTIME_DIR": str(runtime)}
    port = free_port()
    # the Makefile's `lab` command, on this project's root
    command = [str(Path(sys.executable).parent / "jupyter"), "lab", "--allow-root", "--no-browser",
               "--LabApp.extension_manager=readonly", "--LabApp.default_url=/lab/tree/notebooks",
               f"--port={port}", f"--IdentityProvider.token={TOKEN}", str(project.root)]
    base = f"http://127.0.0.1:{port}"
    with serving(command, f"{base}/api/status?token={TOKEN}", runtime, env, name="jupyter-lab"):
        yield base, env


def contents(base: str, path: str, model: dict | None = None) -> dict:
    data = None if model is None else json.dumps(model).encode()
    request = urllib.request.Request(f"{base}/api/contents/{path}?token={TOKEN}", data=data,
                                     method="GET" if model is None else "PUT",
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=60) as answer:
        return json.loads(answer.read())


def test_saving_the_paired_notebook_in_jupyterlab_updates_its_py(lab, project):
    base, _ = lab
    opened = contents(base, "notebooks/40_evaluate.py")  # a .py opens as a notebook
    assert opened["type"] == "notebook"
    assert any("parameters" in c["metadata"].get("tags", []) for c in opened["content"]["cells"])

    model = contents(base, "notebooks/40_evaluate.ipynb")
    model["content"]["cells"].append({"cell_type": "code", "source": "print('saved from JupyterLab')",
                                      "metadata": {}, "outputs": [], "execution_count": None})
    contents(base, "notebooks/40_evaluate.ipynb", {"type": "notebook", "format": "json", "content": model["content"]})
    script = (project.root / "notebooks/40_evaluate.py").read_text()
    assert script.rstrip().endswith("# %%\nprint('saved from JupyterLab')")


def test_kit_dev_prints_the_jupyterlab_url_of_the_working_copy(lab, project):
    base, env = lab
    done = subprocess.run([sys.executable, "-m", "kit.cli", "dev", "pipelines/iris.yaml", "features"],
                          cwd=project.root, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    url = f"{base}/lab/tree/workspaces/dev/iris/features/10_features.ipynb?token={TOKEN}"
    assert url in done.stdout.replace("localhost", "127.0.0.1")
    assert contents(base, "workspaces/dev/iris/features/10_features.ipynb")["type"] == "notebook"
