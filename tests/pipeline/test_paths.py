"""A notebook, contract or `extends:` path that resolves outside the project root is refused by
`kit validate` and `kit run` (exit 2, naming the file and line). Top-level folders that are links
the project made (the test suite's scratch projects link notebooks/ to the repo's) still work."""

from __future__ import annotations

import pytest

from kit.cli import main
from kit.errors import SpecError
from kit.pipeline import load

from tests.conftest import write_notebook

PIPELINE = """
name: paths
model: paths-model
steps:
  - name: make
    notebook: {notebook}
    outputs: {{out_path: table.csv}}
    contracts: {{out_path: {contract}}}
"""


@pytest.fixture
def demo(project):
    project.notebook("make.ipynb", 'out_path = "table.csv"')
    contracts = project.root / "data_contracts"
    contracts.mkdir()
    (contracts / "table.json").write_text('{"expectations": []}')
    return project


def pipeline(project, notebook="notebooks/make.ipynb", contract="data_contracts/table.json"):
    return project.pipeline(PIPELINE.format(notebook=notebook, contract=contract))


def refused(path) -> str:
    with pytest.raises(SpecError) as caught:
        load(path)
    return str(caught.value)


def test_a_notebook_inside_the_project_is_fine(demo):
    assert list(load(pipeline(demo)).steps) == ["make"]


@pytest.mark.parametrize("notebook, reason", [
    ("/etc/passwd", "must be relative, not absolute"),
    ("../outside.ipynb", "leaves the project root"),
    ("notebooks/../../outside.ipynb", "leaves the project root"),
    ("~/make.ipynb", "must be relative"),
])
def test_notebook_outside_the_root_is_refused(demo, notebook, reason):
    write_notebook(demo.root.parent / "outside.ipynb", 'out_path = "x"')
    message = refused(pipeline(demo, notebook=notebook))
    assert message.startswith(f"pipelines/p.yaml:5: step 'make': notebook {notebook} {reason}")


def test_notebook_link_that_leaves_the_tree_is_refused(demo, tmp_path_factory):
    outside = write_notebook(tmp_path_factory.mktemp("elsewhere") / "evil.ipynb", 'out_path = "x"')
    (demo.root / "notebooks" / "evil.ipynb").symlink_to(outside)
    (demo.root / "evil.ipynb").symlink_to(outside)  # a top-level link to a file is judged the same way
    for notebook in ("notebooks/evil.ipynb", "evil.ipynb"):
        message = refused(pipeline(demo, notebook=notebook))
        assert f"pipelines/p.yaml:5: step 'make': notebook {notebook} leads out of the project root" in message


def test_link_to_a_folder_below_the_top_level_that_leaves_the_tree_is_refused(demo, tmp_path_factory):
    elsewhere = tmp_path_factory.mktemp("elsewhere")
    write_notebook(elsewhere / "make.ipynb", 'out_path = "x"')
    (demo.root / "notebooks" / "shared").symlink_to(elsewhere)
    assert "leads out of the project root" in refused(pipeline(demo, notebook="notebooks/shared/make.ipynb"))


def test_links_that_stay_inside_are_fine(demo):
    (demo.root / "notebooks" / "alias.ipynb").symlink_to(demo.root / "notebooks" / "make.ipynb")
    assert list(load(pipeline(demo, notebook="notebooks/alias.ipynb")).steps) == ["make"]


def test_a_top_level_folder_linked_elsewhere_is_part_of_the_project(project, tmp_path_factory):
    shared = tmp_path_factory.mktemp("shared-notebooks")
    write_notebook(shared / "make.ipynb", 'out_path = "x"')
    (project.root / "notebooks").symlink_to(shared)
    (project.root / "data_contracts").mkdir()
    (project.root / "data_contracts" / "table.json").write_text('{"expectations": []}')
    assert list(load(pipeline(project)).steps) == ["make"]


@pytest.mark.parametrize("contract, reason", [
    ("/etc/hosts", "must be relative"),
    ("../table.json", "leaves the project root"),
])
def test_contract_outside_the_root_is_refused(demo, contract, reason):
    (demo.root.parent / "table.json").write_text("{}")
    message = refused(pipeline(demo, contract=contract))
    assert f"pipelines/p.yaml:7: step 'make': contract file {contract} {reason}" in message


def test_extends_link_that_leaves_the_tree_is_refused(demo, tmp_path_factory):
    outside = tmp_path_factory.mktemp("elsewhere") / "base.yaml"
    outside.write_text(PIPELINE.format(notebook="notebooks/make.ipynb", contract="data_contracts/table.json"))
    (demo.root / "pipelines").mkdir()
    (demo.root / "pipelines" / "base.yaml").symlink_to(outside)
    child = demo.pipeline("name: child\nextends: base.yaml\n", "child.yaml")
    assert "pipelines/child.yaml:2: extends: base.yaml leads out of the project root" in refused(child)


@pytest.mark.parametrize("command", ["validate", "run"])
def test_validate_and_run_exit_2_before_anything_runs(demo, command, capsys):
    path = pipeline(demo, notebook="../outside.ipynb")
    assert main([command, str(path)]) == 2
    err = capsys.readouterr().err
    assert "pipelines/p.yaml:5: step 'make': notebook ../outside.ipynb leaves the project root" in err
    assert not (demo.root / "workspaces").exists()
