"""The environment files agree: environment.yml pins exactly what uv.lock pins, and the
pins the stack needs are in the lock."""

from __future__ import annotations

import subprocess
import tomllib
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]


def lock_pins() -> set[str]:
    exported = subprocess.run(
        [str(REPO / ".tools/bin/uv"), "export", "--frozen", "--no-hashes", "--no-dev", "--no-emit-project",
         "--no-header", "--no-annotate"],
        cwd=REPO, capture_output=True, text=True, check=True,
    ).stdout
    return {line.split(";")[0].strip() for line in exported.splitlines() if line[:1].isalnum()}


def test_environment_yml_pins_the_same_set_as_the_lock():
    env = yaml.safe_load((REPO / "environment.yml").read_text())
    pip = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict))
    assert set(pip) == lock_pins(), "run scripts/export-environment-yml after changing the lock"
    assert "python=3.11" in env["dependencies"]


def test_lock_holds_the_stack_with_its_needed_pins():
    versions = {p["name"]: p["version"] for p in tomllib.loads((REPO / "uv.lock").read_text())["package"]}
    assert versions["tensorflow"] == "2.19.0" and versions["tensorflowjs"] == "4.22.0"
    assert versions["mlflow"] == "3.17.2" and versions["great-expectations"] == "1.24.1"
    assert versions["papermill"] == "2.7.0" and versions["pandas"].startswith("3.")
    assert int(versions["ydf"].split(".")[1]) < 16  # ydf 0.16 needs protobuf 6; TF 2.19 needs 5
    assert int(versions["setuptools"].split(".")[0]) < 81  # tensorflow_hub imports pkg_resources
    assert "rfc3987-syntax" not in versions  # 2-3 s on every nbformat import (jsonschema 1392)


def test_setup_is_idempotent():
    before = (REPO / ".venv/share/jupyter/kernels/kit/kernel.json").read_text()
    done = subprocess.run([str(REPO / "scripts/setup")], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert done.stdout == "" and done.stderr == ""  # nothing to do, nothing said
    assert (REPO / ".venv/share/jupyter/kernels/kit/kernel.json").read_text() == before
