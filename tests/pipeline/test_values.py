"""Parameter values mean what they look like: `-p`, `--params` and pipeline files are read with
YAML 1.2 core-schema rules, null is refused where the default is not None, list and dict
elements are checked, and an error names the file the value was written in."""

from __future__ import annotations

import pytest

from kit.cli import main
from kit.errors import SpecError
from kit.pipeline import load, load_params_file, parse_overrides

PIPELINE = """
name: values
model: values-model
steps:
  - name: train
    notebook: notebooks/train.ipynb
"""

PARAMETERS = '''
label = "a"
epochs = 60
rate = 0.1
flag = False
sizes = [16, 8]
weights = {"a": 1.0, "b": 2.0}
mixed = [1, "a"]
anything = None
'''


@pytest.fixture
def demo(project):
    project.notebook("train.ipynb", PARAMETERS)
    return project


def values(project, *pairs: str) -> dict:
    return load(project.pipeline(PIPELINE), overrides=[parse_overrides(list(pairs))]).steps["train"].parameters


def refused(project, *pairs: str, text: str = PIPELINE) -> str:
    with pytest.raises(SpecError) as caught:
        load(project.pipeline(text), overrides=[parse_overrides(list(pairs))] if pairs else None)
    return str(caught.value)


@pytest.mark.parametrize("typed", ["yes", "no", "on", "off", "y", "n", "2026-01-01", "2001-12-14t21:59:43.10-05:00"])
def test_words_and_dates_stay_strings(demo, typed):
    assert values(demo, f"train.label={typed}") == {"label": typed}


@pytest.mark.parametrize("typed", ["yes", "on", "no", "off"])
def test_yes_and_on_are_not_booleans(demo, typed):
    assert "expected bool like the default False, got str" in refused(demo, f"train.flag={typed}")


@pytest.mark.parametrize("typed, expected", [("017", 17), ("0o17", 15), ("30", 30), ("-3", -3)])
def test_integers_are_decimal_unless_marked_octal(demo, typed, expected):
    assert values(demo, f"train.epochs={typed}") == {"epochs": expected}


@pytest.mark.parametrize("typed, expected", [("1e-3", 0.001), ("1.5E2", 150.0), ("2", 2.0), (".inf", float("inf"))])
def test_floats(demo, typed, expected):
    assert values(demo, f"train.rate={typed}") == {"rate": expected}


@pytest.mark.parametrize("typed", ["null", "~", "Null", ""])
def test_null_is_refused_where_the_default_is_not_none(demo, typed):
    if typed == "":  # an empty value is the empty string, refused for an int as a string
        assert "got str ''" in refused(demo, "train.epochs=")
        return
    message = refused(demo, f"train.epochs={typed}")
    assert "-p train.epochs=" in message and "expected int like the default 60, got null" in message


def test_null_is_fine_where_the_default_is_none(demo):
    assert values(demo, "train.anything=null", "train.label=x") == {"anything": None, "label": "x"}


def test_null_in_the_pipeline_file_names_its_line(demo):
    text = PIPELINE + "    parameters:\n      label: ~\n"
    assert "pipelines/p.yaml:7: step 'train', parameter 'label': expected str like the default \"a\", got null" \
        in refused(demo, text=text)


def test_null_is_refused_by_the_cli_before_any_kernel_starts(demo, capsys):
    path = demo.pipeline(PIPELINE)
    assert main(["run", str(path), "-p", "train.epochs=null"]) == 2
    assert "got null" in capsys.readouterr().err
    assert not (demo.root / "workspaces").exists()


def test_list_elements_are_checked_against_a_homogeneous_default(demo):
    assert values(demo, "train.sizes=[32, 4, 2]") == {"sizes": [32, 4, 2]}
    assert values(demo, "train.sizes=[]") == {"sizes": []}
    message = refused(demo, "train.sizes=[32, a]")
    assert "expected list of int like the default [16, 8], but element [1] is str 'a'" in message
    assert "element [0] is null" in refused(demo, "train.sizes=[~]")
    assert "got int 32" in refused(demo, "train.sizes=32")


def test_dict_values_are_checked_and_ints_become_floats(demo):
    assert values(demo, "train.weights={a: 3, c: 0.5}") == {"weights": {"a": 3.0, "c": 0.5}}
    assert "element ['b'] is str 'x'" in refused(demo, "train.weights={a: 1, b: x}")


def test_a_mixed_default_takes_any_elements(demo):
    assert values(demo, "train.mixed=[true, 2.5, x]") == {"mixed": [True, 2.5, "x"]}


def test_params_file_uses_yaml_1_2(demo, tmp_path):
    params = tmp_path / "params.yaml"
    params.write_text("train:\n  label: no\n  epochs: 017\n  rate: 1e-3\n")
    assert load(demo.pipeline(PIPELINE), overrides=[load_params_file(params)]).steps["train"].parameters == {
        "label": "no", "epochs": 17, "rate": 0.001}


def test_pipeline_file_uses_yaml_1_2(demo):
    text = PIPELINE + "    parameters: {label: off, epochs: 010, rate: 5e-1}\n"
    assert load(demo.pipeline(text)).steps["train"].parameters == {"label": "off", "epochs": 10, "rate": 0.5}


def test_type_error_in_a_params_file_names_that_file_and_line(demo, tmp_path, capsys):
    params = tmp_path / "my params.yaml"
    params.write_text("# overrides\ntrain:\n  epochs: 5\n  sizes: [32, a]\n")
    path = demo.pipeline(PIPELINE)
    assert main(["validate", str(path), "--params", str(params)]) == 2
    err = capsys.readouterr().err
    assert f"{params}:4: step 'train', parameter 'sizes': expected list of int" in err
    assert "p.yaml" not in err


def test_unknown_names_in_a_params_file_name_that_file_and_line(demo, tmp_path):
    params = tmp_path / "params.yaml"
    params.write_text("train:\n  epochs: 5\n  epoch: 6\ntrian:\n  rate: 1\n")
    with pytest.raises(SpecError) as caught:
        load(demo.pipeline(PIPELINE), overrides=[load_params_file(params)])
    message = str(caught.value)
    assert f"{params}:3: step 'train', parameter 'epoch': notebooks/train.ipynb has no such parameter" in message
    assert f"{params}:4: parameter override for unknown step 'trian'" in message


def test_params_file_problems_name_the_file_and_line(tmp_path):
    params = tmp_path / "params.yaml"
    params.write_text("train:\n  epochs: 5\nevaluate: 3\n")
    with pytest.raises(SpecError, match=r"params.yaml:3: --params: expected a mapping of step name"):
        load_params_file(params)
    params.write_text("train:\n  epochs: [1,\n")
    with pytest.raises(SpecError, match=r"params.yaml:3: not valid YAML"):
        load_params_file(params)
    params.write_text("train: {a: 1, a: 2}\n")
    with pytest.raises(SpecError, match=r"params.yaml:1: not valid YAML: found duplicate key"):
        load_params_file(params)


def test_duplicate_keys_in_a_pipeline_file_are_refused(demo):
    text = PIPELINE + "    parameters: {epochs: 5}\n    parameters: {epochs: 6}\n"
    assert "pipelines/p.yaml:7: not valid YAML: found duplicate key" in refused(demo, text=text)


def test_values_are_plain_data(tmp_path):
    params = tmp_path / "params.yaml"
    for tagged in ("!!binary aGVsbG8=", "!!set {a, b}", "!!omap [a: 1]", "!python/object:os.system x"):
        params.write_text(f"train:\n  label: {tagged}\n")
        with pytest.raises(SpecError, match=r"params.yaml:2: not valid YAML: could not determine a constructor"):
            load_params_file(params)
