"""Edge target, Python side: Keras 3 export -> TF.js graph model -> bundle, and its errors.

One tiny model (Input(4) -> Dense(8, relu) -> Dense(3, softmax)) is built, exported and
converted once for the module.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest

from kit.errors import KitError
from kit.features import FeatureSpec, categorical, numeric
from kit.targets.edge import (
    BundleError,
    BundleIntegrityError,
    ConversionError,
    TfjsModelInfo,
    bundle_size,
    convert_saved_model,
    python_predict,
    read_bundle,
    read_tfjs_model,
    set_bundle_version,
    write_bundle,
)

os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

LABELS = ["setosa", "versicolor", "virginica"]


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    import keras

    keras.utils.set_random_seed(0)
    inputs = keras.Input(shape=(4,))
    hidden = keras.layers.Dense(8, activation="relu")(inputs)
    outputs = keras.layers.Dense(3, activation="softmax")(hidden)
    net = keras.Model(inputs, outputs)
    root = tmp_path_factory.mktemp("edge")
    net.export(str(root / "saved_model"), verbose=False)
    info = convert_saved_model(root / "saved_model", root / "tfjs")
    return {"keras": net, "root": root, "saved_model": root / "saved_model", "tfjs": root / "tfjs", "info": info}


@pytest.fixture(scope="module")
def spec():
    rng = np.random.default_rng(0)
    return FeatureSpec.of(*(numeric(name, rng.normal(5, 1, 50)) for name in
                            ["sepal_length", "sepal_width", "petal_length", "petal_width"]))


def bundle_of(model, spec, out, **overrides):
    arguments = dict(model_dir=model["tfjs"], kind="tfjs-graph", task="multiclass", labels=LABELS,
                     feature_spec=spec, model_name="iris-classifier", tfjs=model["info"])
    arguments.update(overrides)
    return write_bundle(out, **arguments)


# -- conversion ----------------------------------------------------------------------------------

def test_conversion_reads_the_signature_names_from_model_json(model):
    info = model["info"]
    data = json.loads((model["tfjs"] / "model.json").read_text())
    assert data["format"] == "graph-model"
    assert [info.input_name] == list(data["signature"]["inputs"])
    assert [info.output_name] == list(data["signature"]["outputs"])
    assert info.input_name.startswith("keras_tensor") and info.output_name == "output_0"
    assert info.input_shape == (None, 4) and info.output_shape == (None, 3)
    assert info.files == ("model.json", "group1-shard1of1.bin")
    assert sorted(p.name for p in model["tfjs"].iterdir()) == sorted(info.files)
    assert read_tfjs_model(model["tfjs"]) == info


def test_python_predict_matches_keras(model):
    X = np.random.default_rng(1).normal(size=(5, 4)).astype(np.float32)
    probabilities = python_predict(model["saved_model"], X)
    assert probabilities.shape == (5, 3)
    np.testing.assert_allclose(probabilities, model["keras"].predict(X, verbose=0), atol=1e-6)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1, atol=1e-6)
    with pytest.raises(ConversionError, match="2-D"):
        python_predict(model["saved_model"], X[0])


def test_reconverting_into_the_same_folder_replaces_it(model, tmp_path):
    out = tmp_path / "tfjs"
    convert_saved_model(model["saved_model"], out)
    (out / "group1-shard9of9.bin").write_bytes(b"stale")
    info = convert_saved_model(model["saved_model"], out)
    assert sorted(p.name for p in out.iterdir()) == sorted(info.files)
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no scratch left behind


def test_conversion_errors_name_the_path(model, tmp_path):
    with pytest.raises(ConversionError, match=r"nope: SavedModel folder not found; export"):
        convert_saved_model(tmp_path / "nope", tmp_path / "out")
    (tmp_path / "plain").mkdir()
    with pytest.raises(ConversionError, match=r"plain: not a SavedModel \(no saved_model.pb"):
        convert_saved_model(tmp_path / "plain", tmp_path / "out")
    (tmp_path / "model.keras").write_bytes(b"zip")
    with pytest.raises(ConversionError, match=r"model.keras: not a folder.*model.export"):
        convert_saved_model(tmp_path / "model.keras", tmp_path / "out")
    (tmp_path / "corrupt").mkdir()
    (tmp_path / "corrupt" / "saved_model.pb").write_bytes(b"not a protobuf")
    with pytest.raises(ConversionError) as caught:
        convert_saved_model(tmp_path / "corrupt", tmp_path / "out")
    message = str(caught.value)
    assert "corrupt: tensorflowjs could not convert it: Cannot parse proto file" in message
    assert "\n" not in message and isinstance(caught.value, KitError)
    assert not (tmp_path / "out").exists()
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("keep me")
    with pytest.raises(ConversionError, match=r"mine: holds \['notes.txt'\].*refusing"):
        convert_saved_model(model["saved_model"], tmp_path / "mine")
    assert (tmp_path / "mine" / "notes.txt").read_text() == "keep me"


# -- the bundle ----------------------------------------------------------------------------------

def test_bundle_layout_manifest_and_round_trip(model, spec, tmp_path):
    out = bundle_of(model, spec, tmp_path / "bundle")
    files = sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file())
    assert files == ["feature_spec.json", "manifest.json", "model/group1-shard1of1.bin", "model/model.json"]
    data = json.loads((out / "manifest.json").read_text())
    assert list(data) == ["format", "model", "kind", "task", "labels", "inputs", "tfjs", "files", "created_at"]
    assert data["format"] == "kit-edge-bundle/1"
    assert data["model"] == {"name": "iris-classifier", "version": "0"}
    assert data["tfjs"] == {"input": model["info"].input_name, "output": "output_0"}
    assert data["inputs"][0]["name"] == "sepal_length" and data["inputs"][0]["type"] == "number"
    assert set(data["inputs"][0]["range"]) == {"min", "max"}
    assert set(data["files"]) == {"feature_spec.json", "model/model.json", "model/group1-shard1of1.bin"}
    assert data["created_at"].endswith("Z")
    manifest = read_bundle(out)
    assert manifest.labels == LABELS and manifest.kind == "tfjs-graph"
    assert (out / "model" / "model.json").read_bytes() == (model["tfjs"] / "model.json").read_bytes()
    assert bundle_size(out) == sum(p.stat().st_size for p in out.rglob("*") if p.is_file())
    assert bundle_size(out) < 20_000


def test_tfjs_names_are_read_when_not_given(model, spec, tmp_path):
    manifest = read_bundle(bundle_of(model, spec, tmp_path / "b", tfjs=None))
    assert (manifest.tfjs.input, manifest.tfjs.output) == (model["info"].input_name, model["info"].output_name)
    with pytest.raises(BundleError, match="do not match the signature"):
        bundle_of(model, spec, tmp_path / "c", tfjs={"input": "x", "output": "output_0"})


def test_rewriting_a_bundle_replaces_it(model, spec, tmp_path):
    out = bundle_of(model, spec, tmp_path / "bundle")
    (out / "model" / "stale.bin").write_bytes(b"x")
    bundle_of(model, spec, out, model_version="2")
    assert read_bundle(out).model.version == "2"
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "data.csv").write_text("a,b\n")
    with pytest.raises(BundleError, match="not empty and not a bundle"):
        bundle_of(model, spec, tmp_path / "other")


def test_a_tampered_weight_file_is_refused(model, spec, tmp_path):
    out = bundle_of(model, spec, tmp_path / "bundle")
    shard = out / "model" / "group1-shard1of1.bin"
    data = bytearray(shard.read_bytes())
    data[10] ^= 0x01
    shard.write_bytes(bytes(data))
    with pytest.raises(BundleIntegrityError, match=r"group1-shard1of1.bin: sha256 .* does not match manifest.json"):
        read_bundle(out)


def test_missing_unlisted_and_spec_mismatch_are_refused(model, spec, tmp_path):
    out = bundle_of(model, spec, tmp_path / "bundle")
    (out / "model" / "extra.bin").write_bytes(b"x")
    with pytest.raises(BundleIntegrityError, match=r"extra.bin: not listed in manifest.json"):
        read_bundle(out)
    (out / "model" / "extra.bin").unlink()
    (out / "feature_spec.json").write_text((out / "feature_spec.json").read_text() + " ")
    with pytest.raises(BundleIntegrityError, match=r"feature_spec.json: sha256"):
        read_bundle(out)
    (out / "feature_spec.json").unlink()
    with pytest.raises(BundleIntegrityError, match=r"feature_spec.json: listed in manifest.json but missing"):
        read_bundle(out)


def test_read_bundle_errors(tmp_path):
    with pytest.raises(BundleError, match="bundle folder not found"):
        read_bundle(tmp_path / "nope")
    with pytest.raises(BundleError, match="manifest.json: not found"):
        read_bundle(tmp_path)
    (tmp_path / "manifest.json").write_text("{")
    with pytest.raises(BundleError, match="manifest.json: not valid JSON"):
        read_bundle(tmp_path)
    (tmp_path / "manifest.json").write_text('{"format": "kit-edge-bundle/9"}')
    with pytest.raises(BundleError, match="kit-edge-bundle/9"):
        read_bundle(tmp_path)


def test_paths_outside_the_bundle_are_refused(model, spec, tmp_path):
    out = bundle_of(model, spec, tmp_path / "bundle")
    data = json.loads((out / "manifest.json").read_text())
    data["files"]["../secret"] = "0" * 64
    (out / "manifest.json").write_text(json.dumps(data))
    with pytest.raises(BundleError, match="not a path inside the bundle"):
        read_bundle(out)


def test_set_bundle_version(model, spec, tmp_path):
    out = bundle_of(model, spec, tmp_path / "bundle")
    manifest = set_bundle_version(out, 3)
    assert manifest.model.version == "3"
    assert read_bundle(out).model.version == "3"
    assert json.loads((out / "manifest.json").read_text())["model"] == {"name": "iris-classifier", "version": "3"}


def test_write_bundle_checks_shapes_and_arguments(model, spec, tmp_path):
    narrow = FeatureSpec.of(*spec.inputs[:3])
    with pytest.raises(BundleError, match="model takes 4 features but the feature spec makes 3"):
        bundle_of(model, narrow, tmp_path / "a", feature_spec=narrow)
    with pytest.raises(BundleError, match="outputs 3 values per row, task='multiclass' needs 2"):
        bundle_of(model, spec, tmp_path / "a", labels=["a", "b"])
    with pytest.raises(BundleError, match="task='binary' needs 1.*P\\(labels\\[1\\]\\)"):
        bundle_of(model, spec, tmp_path / "a", task="binary", labels=["no", "yes"])
    with pytest.raises(BundleError, match="kind='onnx'"):
        bundle_of(model, spec, tmp_path / "a", kind="onnx")
    with pytest.raises(BundleError, match="duplicates"):
        bundle_of(model, spec, tmp_path / "a", labels=["a", "a", "b"])
    with pytest.raises(BundleError, match="model_dir .*nope not found"):
        bundle_of(model, spec, tmp_path / "a", model_dir=tmp_path / "nope")
    with pytest.raises(BundleError, match="model.json: not found"):
        bundle_of(model, spec, tmp_path / "a", model_dir=tmp_path)
    assert not (tmp_path / "a").exists()


def test_feature_spec_path_is_accepted(model, spec, tmp_path):
    path = spec.save(tmp_path / "feature_spec.json")
    out = bundle_of(model, spec, tmp_path / "bundle", feature_spec=path)
    assert (out / "feature_spec.json").read_bytes() == path.read_bytes()


def test_lightgbm_json_bundle(tmp_path):
    spec = FeatureSpec.of(numeric("x", [1, 2, 3]), categorical("c", ["a", "b"]))
    (tmp_path / "lgb").mkdir()
    (tmp_path / "lgb" / "model.json").write_text(json.dumps({"tree_info": []}))
    out = write_bundle(tmp_path / "bundle", model_dir=tmp_path / "lgb", kind="lightgbm-json", task="binary",
                       labels=["no", "yes"], feature_spec=spec, model_name="churn")
    manifest = read_bundle(out)
    assert manifest.tfjs is None and manifest.task == "binary"
    assert "tfjs" not in json.loads((out / "manifest.json").read_text())
    assert [f.type for f in manifest.inputs] == ["number", "string"]
    with pytest.raises(BundleError, match="only apply to kind='tfjs-graph'"):
        write_bundle(tmp_path / "b2", model_dir=tmp_path / "lgb", kind="lightgbm-json", task="binary",
                     labels=["no", "yes"], feature_spec=spec, model_name="churn", tfjs={"input": "a", "output": "b"})


def test_info_is_a_plain_value():
    info = TfjsModelInfo("keras_tensor", "output_0", ("model.json",))
    assert info.input_shape is None and info == TfjsModelInfo("keras_tensor", "output_0", ("model.json",))


def test_importing_the_edge_target_does_not_import_tensorflow():
    import subprocess
    import sys

    code = "import sys, kit.targets.edge; print(sorted(m for m in ('tensorflow', 'tensorflowjs', 'keras', 'pandas') if m in sys.modules))"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                          cwd=Path(__file__).resolve().parents[3])
    assert done.stdout.strip() == "[]"
