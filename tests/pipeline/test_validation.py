"""Every bad pipeline file or parameter is refused before a kernel starts, with a message
that names the file (and line), and exit code 2."""

from __future__ import annotations

import pytest

from kit.cli import main
from kit.errors import SpecError
from kit.pipeline import load, load_params_file, parse_overrides

GOOD = """
name: demo
model: demo-model
steps:
  - name: make
    notebook: notebooks/make.ipynb
    parameters: {rows: 10}
    outputs: {out_path: table.csv}
  - name: use
    notebook: notebooks/use.ipynb
    inputs: {in_path: make.out_path}
    parameters: {rate: 0.5, label: x}
"""


@pytest.fixture
def demo(project):
    project.notebook("make.ipynb", 'rows = 3  # how many\nout_path = "table.csv"\nflag = False\nnames = ["a"]')
    project.notebook("use.ipynb", 'in_path = "table.csv"\nrate = 0.1\nlabel = "a"\ncount = 1')
    return project


def refused(project, text: str, overrides=None) -> str:
    path = project.pipeline(text)
    with pytest.raises(SpecError) as caught:
        load(path, overrides=overrides)
    return str(caught.value)


def test_good_pipeline_loads_in_dependency_order(demo):
    plan = load(demo.pipeline(GOOD))
    assert list(plan.steps) == ["make", "use"]
    assert plan.steps["use"].needs == ("make",)  # implied by its input
    assert plan.steps["use"].parameters == {"rate": 0.5, "label": "x"}


def test_unknown_key_is_named_with_its_line(demo):
    message = refused(demo, GOOD.replace("    parameters: {rows: 10}", "    parameters: {rows: 10}\n    retry: 3"))
    assert "pipelines/p.yaml:7" in message and "unknown key 'retry'" in message


def test_missing_required_key(demo):
    message = refused(demo, GOOD.replace("model: demo-model\n", ""))
    assert "model" in message and "required key is missing" in message


def test_invalid_yaml_names_the_line(demo):
    message = refused(demo, "name: demo\nsteps: [\n  - a: b\n")
    assert "pipelines/p.yaml:" in message and "not valid YAML" in message


def test_missing_notebook(demo):
    message = refused(demo, GOOD.replace("notebooks/use.ipynb", "notebooks/nope.ipynb"))
    assert "p.yaml:9" in message and "notebook notebooks/nope.ipynb not found" in message


def test_unknown_dependency(demo):
    message = refused(demo, GOOD.replace("    inputs: {in_path: make.out_path}", "    needs: [mkae]"))
    assert "step 'use' needs unknown step 'mkae'" in message


def test_cyclic_dependencies(demo):
    text = GOOD.replace("    parameters: {rows: 10}", "    parameters: {rows: 10}\n    needs: [use]")
    message = refused(demo, text)
    assert "cycle" in message and "make" in message and "use" in message


def test_duplicate_step_names(demo):
    message = refused(demo, GOOD.replace("name: use", "name: make"))
    assert "duplicate step name 'make'" in message


def test_notebook_without_parameters_cell(demo):
    demo.notebook("use.ipynb", None, "print(1)")
    message = refused(demo, GOOD)
    assert "has no cell tagged 'parameters'" in message and "notebooks/use.ipynb" in message


def test_unknown_parameter_suggests_the_close_one(demo):
    message = refused(demo, GOOD.replace("{rows: 10}", "{rwos: 10}"))
    assert "p.yaml:6" in message and "has no such parameter" in message and "did you mean 'rows'?" in message


def test_wrong_type_is_refused(demo):
    message = refused(demo, GOOD.replace("{rows: 10}", "{rows: ten}"))
    assert "parameter 'rows'" in message and "expected int like the default 3, got str 'ten'" in message


@pytest.mark.parametrize("value, ok", [("7", True), ("0.5", False), ("true", False)])
def test_int_parameter_takes_only_ints(demo, value, ok):
    path = demo.pipeline(GOOD)
    overrides = [parse_overrides([f"make.rows={value}"])]
    if ok:
        assert load(path, overrides=overrides).steps["make"].parameters["rows"] == 7
    else:
        with pytest.raises(SpecError, match="expected int"):
            load(path, overrides=overrides)


def test_int_for_float_is_fine_and_becomes_float(demo):
    plan = load(demo.pipeline(GOOD), overrides=[parse_overrides(["use.rate=2"])])
    assert plan.steps["use"].parameters["rate"] == 2.0 and isinstance(plan.steps["use"].parameters["rate"], float)


def test_bool_and_list_defaults_keep_their_types(demo):
    path = demo.pipeline(GOOD)
    plan = load(path, overrides=[{"make": {"flag": True, "names": ["b", "c"]}}])
    assert plan.steps["make"].parameters == {"rows": 10, "flag": True, "names": ["b", "c"]}
    with pytest.raises(SpecError, match="expected bool"):
        load(path, overrides=[{"make": {"flag": 1}}])


def test_override_wins_over_params_file_over_pipeline_file(demo, tmp_path):
    params = tmp_path / "params.yaml"
    params.write_text("make: {rows: 20}\nuse: {label: from-file}\n")
    plan = load(demo.pipeline(GOOD), overrides=[load_params_file(params), parse_overrides(["make.rows=30"])])
    assert plan.steps["make"].parameters["rows"] == 30
    assert plan.steps["use"].parameters["label"] == "from-file"


def test_override_for_unknown_step(demo):
    message = refused(demo, GOOD, overrides=[{"trian": {"epochs": 1}}])
    assert "unknown step 'trian'" in message


def test_runner_managed_paths_cannot_be_set(demo):
    message = refused(demo, GOOD, overrides=[{"make": {"out_path": "/tmp/elsewhere.csv"}}])
    assert "set by the runner" in message


@pytest.mark.parametrize("bad", ["train.epochs", "epochs=5", ".epochs=5", "train.=5"])
def test_malformed_override(bad):
    with pytest.raises(SpecError, match="expected STEP.PARAM=VALUE"):
        parse_overrides([bad])


def test_params_file_of_the_wrong_shape(tmp_path):
    params = tmp_path / "params.yaml"
    params.write_text("- epochs: 5\n")
    with pytest.raises(SpecError, match="mapping of step name to parameters"):
        load_params_file(params)


def test_input_from_an_output_that_is_not_declared(demo):
    message = refused(demo, GOOD.replace("make.out_path", "make.table"))
    assert "step 'make' declares no output 'table' (it declares: out_path)" in message


def test_output_must_stay_inside_the_step_folder(demo):
    message = refused(demo, GOOD.replace("{out_path: table.csv}", "{out_path: ../../etc/x.csv}"))
    assert "must be a relative name inside the step's folder" in message


def test_output_that_is_not_a_notebook_parameter(demo):
    message = refused(demo, GOOD.replace("{out_path: table.csv}", "{out_path: table.csv, extra: e.csv}"))
    assert "output 'extra' is not a parameter of notebooks/make.ipynb" in message


def test_every_problem_is_reported_at_once(demo):
    message = refused(demo, GOOD.replace("{rows: 10}", "{rwos: 10}").replace("label: x", "label: 3"))
    assert "rwos" in message and "label" in message


def test_unknown_kernel(demo):
    message = refused(demo, GOOD.replace("model: demo-model", "model: demo-model\nkernel: nonesuch"))
    assert "Jupyter kernel 'nonesuch' is not installed" in message


def test_cli_validate_exit_codes(demo, capsys):
    good = demo.pipeline(GOOD)
    assert main(["validate", str(good)]) == 0
    assert "OK, 2 steps in order: make -> use" in capsys.readouterr().out
    assert main(["validate", str(good), "-p", "make.rows=many"]) == 2
    assert "expected int" in capsys.readouterr().err
    assert main(["run", str(good), "-p", "make.rwos=1"]) == 2  # refused before anything runs
    assert not (demo.root / "workspaces").exists()


def test_unreadable_pipeline_file(project, capsys):
    assert main(["validate", str(project.root / "missing.yaml")]) == 2
    assert "cannot read pipeline file" in capsys.readouterr().err
