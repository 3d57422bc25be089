"""The feature spec file: loading, the errors a broken file gets, saving and round trips."""

from __future__ import annotations

import copy
import json
import subprocess
import sys

import pytest

from kit.errors import KitError, SpecError
from kit.features import FeatureSpec, FeatureSpecError, load_spec

EXAMPLE = {  # the example of FORMAT.md
    "format": "kit-feature-spec/1",
    "inputs": [
        {
            "name": "sepal_length",
            "kind": "numeric",
            "missing": {"strategy": "fill", "value": 5.8},
            "range": {"min": 4.3, "max": 7.9},
            "transform": {"type": "standardize", "mean": 5.84, "std": 0.82},
        },
        {
            "name": "device",
            "kind": "categorical",
            "missing": {"strategy": "oov"},
            "transform": {"type": "vocabulary", "values": ["desktop", "mobile", "tablet"], "output": "one_hot"},
        },
    ],
}


def write(tmp_path, data, name="feature_spec.json"):
    path = tmp_path / name
    path.write_text(data if isinstance(data, str) else json.dumps(data))
    return path


def broken(tmp_path, change):
    data = copy.deepcopy(EXAMPLE)
    change(data)
    return write(tmp_path, data)


def test_the_format_example_loads(tmp_path):
    spec = load_spec(write(tmp_path, EXAMPLE))
    assert spec.width == 5
    assert spec.column_names == ["sepal_length", "device=desktop", "device=mobile", "device=tablet", "device=<oov>"]
    assert spec.input_names == ["sepal_length", "device"]
    assert spec.request_fields() == [
        {"name": "sepal_length", "type": "number", "range": {"min": 4.3, "max": 7.9}},
        {"name": "device", "type": "string"},
    ]


def test_save_load_round_trip(tmp_path):
    spec = load_spec(write(tmp_path, EXAMPLE))
    path = spec.save(tmp_path / "out" / "again.json")
    again = load_spec(path)
    assert again == spec
    assert json.loads(path.read_text()) == EXAMPLE
    assert again.to_json() == spec.to_json()


def test_defaults_are_written_explicitly(tmp_path):
    data = {"format": "kit-feature-spec/1", "inputs": [
        {"name": "x", "kind": "numeric", "transform": {"type": "identity"}},
        {"name": "c", "kind": "categorical", "transform": {"type": "vocabulary", "values": ["a"], "output": "index"}},
    ]}
    spec = load_spec(write(tmp_path, data))
    written = json.loads(spec.to_json())
    assert written["inputs"][0]["missing"] == {"strategy": "error"}
    assert written["inputs"][1]["missing"] == {"strategy": "oov"}
    assert "range" not in written["inputs"][0]
    assert spec.column_names == ["x", "c[index]"]


@pytest.mark.parametrize("change, expected", [
    (lambda d: d["inputs"][0]["transform"].update(type="log"), ["'sepal_length'", "'log'", "standardize"]),
    (lambda d: d["inputs"][0]["transform"].update(std=0), ["'sepal_length'", "std must be > 0"]),
    (lambda d: d["inputs"][0]["transform"].update(std=-1), ["'sepal_length'", "std must be > 0"]),
    (lambda d: d["inputs"][0].update(transform={"type": "minmax", "min": 2, "max": 2}), ["'sepal_length'", "min < max"]),
    (lambda d: d["inputs"][0].update(transform={"type": "bucketize", "boundaries": [1, 3, 2], "output": "index"}),
     ["'sepal_length'", "strictly increasing", "boundaries[1]=3.0"]),
    (lambda d: d["inputs"][0].update(transform={"type": "bucketize", "boundaries": [1, 1], "output": "index"}),
     ["'sepal_length'", "strictly increasing"]),
    (lambda d: d["inputs"][1].update(name="sepal_length"), ["'sepal_length'", "appears twice", "inputs[0]", "inputs[1]"]),
    (lambda d: d["inputs"][1].update(color="red"), ["'device'", "color", "unknown key"]),
    (lambda d: d["inputs"][0]["transform"].update(mean="5.8"), ["'sepal_length'", "transform.mean", "'5.8'"]),
    (lambda d: d["inputs"][0]["transform"].pop("type"), ["'sepal_length'", "'type'", "missing"]),
    (lambda d: d["inputs"][0].update(missing={"strategy": "oov"}), ["'sepal_length'", "'oov'"]),
    (lambda d: d["inputs"][1].update(missing={"strategy": "fill", "value": "x"}), ["'device'", "'fill'"]),
    (lambda d: d["inputs"][0].update(kind="text"), ["'sepal_length'", "'text'", "numeric"]),
    (lambda d: d["inputs"][0].update(range={"min": 8, "max": 4}), ["'sepal_length'", "range.min"]),
    (lambda d: d["inputs"][1]["transform"].update(values=["a", "b", "a"]), ["'device'", "'a' appears twice"]),
    (lambda d: d["inputs"][1]["transform"].update(values=["a", 3]), ["'device'", "values.1"]),
    (lambda d: d["inputs"][1]["transform"].pop("output"), ["'device'", "output", "missing"]),
    (lambda d: d.update(inputs=[]), ["inputs", "at least 1"]),
    (lambda d: d.update(format="kit-feature-spec/2"), ["kit-feature-spec/2", "not supported"]),
    (lambda d: d.pop("format"), ["not a feature spec"]),
])
def test_broken_spec_is_refused_naming_file_and_input(tmp_path, change, expected):
    path = broken(tmp_path, change)
    with pytest.raises(FeatureSpecError) as caught:
        load_spec(path)
    message = str(caught.value)
    assert message.startswith(str(path))
    for part in expected:
        assert part in message


def test_invalid_json_names_file_and_line(tmp_path):
    path = write(tmp_path, '{"format": "kit-feature-spec/1",\n "inputs": [}')
    with pytest.raises(FeatureSpecError, match=r"feature_spec\.json: not valid JSON at line 2"):
        load_spec(path)


def test_nan_and_infinity_literals_are_refused(tmp_path):
    text = json.dumps(EXAMPLE).replace("0.82", "NaN")
    with pytest.raises(FeatureSpecError, match="NaN is not valid JSON"):
        load_spec(write(tmp_path, text))
    text = json.dumps(EXAMPLE).replace("0.82", "Infinity")
    with pytest.raises(FeatureSpecError, match="Infinity"):
        load_spec(write(tmp_path, text))


def test_missing_file(tmp_path):
    with pytest.raises(FeatureSpecError, match="not found"):
        load_spec(tmp_path / "nope.json")


def test_error_family():
    # issue 8: a library error of its own, not a command outcome; a command that meets one exits 2
    from kit.cli import exit_code
    from kit.errors import LibraryError

    assert issubclass(FeatureSpecError, LibraryError) and not issubclass(FeatureSpecError, SpecError)
    assert exit_code(FeatureSpecError("x")) == 2


def test_from_dict_and_of_validate_too():
    with pytest.raises(FeatureSpecError, match="std must be > 0"):
        FeatureSpec.from_dict({"format": "kit-feature-spec/1", "inputs": [
            {"name": "x", "kind": "numeric", "transform": {"type": "standardize", "mean": 0, "std": 0}}]})
    spec = FeatureSpec.from_dict(EXAMPLE)
    with pytest.raises(FeatureSpecError, match="appears twice"):
        FeatureSpec.of(spec.inputs[0], spec.inputs[0])
    assert FeatureSpec.of(*spec.inputs) == spec
    assert isinstance(FeatureSpecError("x"), KitError)


def test_import_does_not_load_heavy_libraries():
    code = "import sys, json, kit.features; print(json.dumps(sorted(sys.modules)))"
    loaded = set(json.loads(subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                                           check=True).stdout))
    assert not {"tensorflow", "tensorflowjs", "pandas", "keras"} & loaded
