"""`extends:` builds a pipeline on another one: the merged pipeline is checked as one, and every
error names the file and line where the offending text is, in whichever file that is."""

from __future__ import annotations

import pytest

from kit.cli import main
from kit.errors import SpecError
from kit.pipeline import load

from tests.conftest import REPO, Project

BASE = """
name: base
model: base-model
description: from the base
timeout: 100
steps:
  - name: make
    notebook: notebooks/make.ipynb
    parameters: {rows: 10}
    outputs: {out_path: table.csv}
  - name: use
    notebook: notebooks/use.ipynb
    inputs: {in_path: make.out_path}
    parameters: {rate: 0.5}
gates:
  - type: artifact_size
    max_bytes: 1000
promote:
  alias: champion
  source: {step: make, output: out_path}
"""


@pytest.fixture
def demo(project):
    project.notebook("make.ipynb", 'rows = 3\nout_path = "table.csv"')
    project.notebook("use.ipynb", 'in_path = "table.csv"\nrate = 0.1\nlabel = "a"')
    project.notebook("report.ipynb", 'in_path = "table.csv"\nwidth = 80')
    project.pipeline(BASE, "base.yaml")
    return project


def refused(path) -> str:
    with pytest.raises(SpecError) as caught:
        load(path)
    return str(caught.value)


def test_child_adds_a_step_and_inherits_the_rest(demo):
    child = demo.pipeline("""
        extends: base.yaml
        name: child
        steps:
          - name: report
            notebook: notebooks/report.ipynb
            inputs: {in_path: make.out_path}
        """, "child.yaml")
    plan = load(child)
    assert plan.name == "child"
    assert list(plan.steps) == ["make", "use", "report"]
    assert plan.spec.model == "base-model" and plan.spec.timeout == 100 and plan.spec.description == "from the base"
    assert [g["type"] for g in plan.spec.gates] == ["artifact_size"]
    assert plan.spec.promotions[0].alias == "champion"
    assert plan.files == (demo.root / "pipelines/base.yaml", child)
    assert plan.steps["make"].defined_at == "pipelines/base.yaml:6"
    assert plan.steps["report"].defined_at == "pipelines/child.yaml:4"


def test_child_replaces_a_step_by_name_and_replaces_gates_and_promote_whole(demo):
    child = demo.pipeline("""
        extends: base.yaml
        name: child
        model: child-model
        steps:
          - name: use
            notebook: notebooks/use.ipynb
            inputs: {in_path: make.out_path}
            parameters: {label: b}
        gates: []
        promote:
          - alias: other
            source: {step: make, output: out_path}
        """, "child.yaml")
    plan = load(child)
    assert list(plan.steps) == ["make", "use"]
    assert plan.steps["use"].parameters == {"label": "b"}  # replaced whole: the base's rate is gone
    assert plan.spec.model == "child-model" and plan.spec.gates == []
    assert [p.alias for p in plan.spec.promotions] == ["other"]


def test_name_is_not_inherited(demo):
    child = demo.pipeline("extends: base.yaml\nmodel: other\n", "child.yaml")
    message = refused(child)
    assert "pipelines/child.yaml:1: name: required key is missing" in message
    assert "names its own pipeline" in message


def test_error_in_the_parent_names_the_parent_file_and_line(demo):
    demo.pipeline(BASE.replace("{rows: 10}", "{rows: ten}"), "base.yaml")
    child = demo.pipeline("extends: base.yaml\nname: child\n", "child.yaml")
    message = refused(child)
    assert "pipelines/base.yaml:8:" in message and "expected int like the default 3" in message


def test_error_in_the_child_names_the_child_file_and_line(demo):
    child = demo.pipeline("""
        extends: base.yaml
        name: child
        steps:
          - name: report
            notebook: notebooks/report.ipynb
            inputs: {in_path: make.nothing}
            retry: 2
        """, "child.yaml")
    message = refused(child)
    assert "pipelines/child.yaml:7: steps.2: unknown key 'retry'" in message
    demo.pipeline("extends: base.yaml\nname: child\nsteps:\n  - name: report\n    notebook: notebooks/report.ipynb\n"
                  "    inputs: {in_path: make.nothing}\n", "child.yaml")
    message = refused(child)
    assert "pipelines/child.yaml:6: step 'report': input 'in_path' refers to 'make.nothing'" in message


def test_merged_pipeline_is_checked_as_one(demo):
    # the child's step refers to a step only the parent declares, and the parent's
    # promotion to an output the child's replacement no longer declares
    child = demo.pipeline("""
        extends: base.yaml
        name: child
        steps:
          - name: make
            notebook: notebooks/make.ipynb
        """, "child.yaml")
    message = refused(child)
    assert "pipelines/base.yaml:12: step 'use': input 'in_path' refers to 'make.out_path'" in message
    assert "pipelines/base.yaml:19: promote: step 'make' declares no output 'out_path'" in message


def test_duplicate_step_in_one_file_is_still_reported(demo):
    child = demo.pipeline("""
        extends: base.yaml
        name: child
        steps:
          - {name: report, notebook: notebooks/report.ipynb}
          - {name: report, notebook: notebooks/report.ipynb}
        """, "child.yaml")
    assert "pipelines/child.yaml:5: duplicate step name 'report'" in refused(child)


def test_chains_of_three_files_and_paths_relative_to_the_file(demo):
    demo.pipeline("extends: ../pipelines/base.yaml\nname: middle\nmodel: middle-model\n", "middle.yaml", folder="variants")
    child = demo.pipeline("extends: ../variants/middle.yaml\nname: leaf\n", "leaf.yaml", folder="more")
    plan = load(child)
    assert plan.spec.model == "middle-model" and list(plan.steps) == ["make", "use"]
    assert [p.relative_to(demo.root).as_posix() for p in plan.files] == [
        "pipelines/base.yaml", "variants/middle.yaml", "more/leaf.yaml"]


def test_cycle_is_exit_2_with_the_chain_named(demo, capsys):
    demo.pipeline("extends: b.yaml\nname: a\n", "a.yaml")
    demo.pipeline("extends: c.yaml\nname: b\n", "b.yaml")
    demo.pipeline("name: c\nextends: a.yaml\n", "c.yaml")
    assert main(["validate", str(demo.root / "pipelines/a.yaml")]) == 2
    err = capsys.readouterr().err
    assert "pipelines/c.yaml:2: extends: a cycle of files: " \
           "pipelines/a.yaml -> pipelines/b.yaml -> pipelines/c.yaml -> pipelines/a.yaml" in err
    assert "Traceback" not in err


def test_a_file_extending_itself_is_a_cycle(demo):
    path = demo.pipeline("extends: ./self.yaml\nname: self\n", "self.yaml")
    assert "a cycle of files: pipelines/self.yaml -> pipelines/self.yaml" in refused(path)


def test_missing_parent_is_exit_2_with_the_chain_named(demo, capsys):
    demo.pipeline("extends: gone.yaml\nname: middle\n", "middle.yaml")
    child = demo.pipeline("# a comment first\nextends: middle.yaml\nname: child\n", "child.yaml")
    assert main(["validate", str(child)]) == 2
    err = capsys.readouterr().err
    assert "pipelines/middle.yaml:1: extends: gone.yaml not found" in err
    assert "chain: pipelines/child.yaml -> pipelines/middle.yaml -> pipelines/gone.yaml" in err


@pytest.mark.parametrize("value, expected", [
    ("[base.yaml]", "expected the path of the pipeline file"),
    ("''", "expected the path of the pipeline file"),
    ("/etc/passwd", "must be relative"),
    ("../../base.yaml", "leaves the project root"),
])
def test_bad_extends_values(demo, value, expected):
    child = demo.pipeline(f"name: child\nextends: {value}\n", "child.yaml")
    message = refused(child)
    assert message.startswith("pipelines/child.yaml:2: extends") and expected in message


def test_parent_that_is_not_a_mapping(demo):
    demo.pipeline("- just\n- a list\n", "list.yaml")
    child = demo.pipeline("extends: list.yaml\nname: child\n", "child.yaml")
    assert "pipelines/list.yaml: a pipeline file is a mapping" in refused(child)


def test_repo_iris_edge_extends_iris_and_validate_prints_the_merged_plan(tmp_path, monkeypatch, capsys):
    text = (REPO / "pipelines/iris_edge.yaml").read_text()
    assert "extends: iris.yaml" in text and "notebooks/10_features.ipynb" not in text
    project = Project.linked(tmp_path)  # the test suite's layout: pipelines/ and notebooks/ are links
    monkeypatch.setenv("KIT_PROJECT_ROOT", str(project.root))
    assert main(["validate", str(project.root / "pipelines/iris_edge.yaml")]) == 0
    out = capsys.readouterr().out
    assert "OK, 4 steps in order: features -> train -> evaluate -> convert" in out
    assert "merged from pipelines/iris.yaml <- pipelines/iris_edge.yaml" in out
    assert "features: notebooks/10_features.ipynb (test_size=0.2, seed=42)  [from pipelines/iris.yaml:" in out
    assert "convert: notebooks/30_convert.ipynb (model_name='iris-classifier')  [from pipelines/iris_edge.yaml:" in out
    assert "gate edge_parity" in out and "to alias 'edge-champion'" in out
