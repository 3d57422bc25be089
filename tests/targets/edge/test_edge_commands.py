"""`kit serve edge` and `kit deploy edge` on a registered version whose bundle is broken: exit 2
with one line naming the file, never a traceback (a library error reaching a command)."""

from __future__ import annotations

import pytest

from conftest import Project

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    root = tmp_path_factory.mktemp("broken-bundle")
    project = Project(root)
    bundle = root / "artifacts" / "bundle"
    bundle.mkdir(parents=True)
    (bundle / "manifest.json").write_text("{not json")
    client = project.client()
    client.create_registered_model("broken")
    version = client.create_model_version("broken", source=str(bundle))
    client.set_registered_model_alias("broken", "champion", version.version)
    return project


@pytest.mark.parametrize("command", [["serve", "edge", "broken", "--alias", "champion", "--port", "0"],
                                     ["deploy", "edge", "broken", "--alias", "champion", "--out", "out"]],
                         ids=["serve", "deploy"])
def test_a_broken_bundle_is_exit_2_in_one_line(project, command):
    done = project.kit(*command, timeout=300)
    assert done.returncode == 2, done.stderr
    lines = [line for line in done.stderr.splitlines() if line.startswith("kit ")]
    assert len(lines) == 1 and "Traceback" not in done.stderr, done.stderr
    assert lines[0].startswith(f"kit {command[0]}: ") and "manifest.json: not valid JSON" in lines[0]
