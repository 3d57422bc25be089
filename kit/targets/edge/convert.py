"""Keras SavedModel -> TF.js graph model, and the Python reference prediction.

The one conversion path that loads in tfjs for Keras 3 (a Keras 3 layers model does not load in
tfjs; the `keras_keras` input corrupts weights) is
`model.export(saved_model_dir)` followed by tensorflowjs' `convert_tf_saved_model`, called
in-process here. The converter writes `model.json` (a `graph-model` whose `signature` names
the serving function's input and output tensors) and weight shards `group1-shard1of1.bin`...

    model.export("build/sm")                                   # Keras 3
    info = convert_saved_model("build/sm", "build/tfjs")
    info.input_name, info.output_name                          # "keras_tensor", "output_0"
    probabilities = python_predict("build/sm", X)              # for the parity gate

The signature keys are what the JS runtime feeds / fetches (GraphModel.execute accepts them).
Keras names the input after its KerasTensor ("keras_tensor", "keras_tensor_7", ... depending on
how many tensors the process made before) unless `keras.Input(name=...)` is given, so always
read them from the converted model, never assume them.
"""

from __future__ import annotations

import contextlib
import io
import json
import re
import shutil
import tempfile
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kit.errors import LibraryError

# Files tensorflowjs writes; a folder holding only these may be replaced by a new conversion.
_CONVERTER_FILE = re.compile(r"model\.json|group\d+-shard\d+of\d+\.bin")


class ConversionError(LibraryError):
    """A model could not be converted (or loaded for conversion / reference prediction)."""


@dataclass(frozen=True)
class TfjsModelInfo:
    """What the JS runtime needs to know about a converted graph model.

    `input_name` / `output_name`: the signature keys to feed and fetch; `files`: paths relative
    to the model folder (model.json first, then the weight shards); shapes as in the signature,
    None for an unknown dimension (the batch).
    """

    input_name: str
    output_name: str
    files: tuple[str, ...]
    input_shape: tuple[int | None, ...] | None = None
    output_shape: tuple[int | None, ...] | None = None


def check_saved_model(saved_model_dir: str | Path) -> Path:
    """The folder, if it looks like a SavedModel; else ConversionError saying what to do."""
    path = Path(saved_model_dir)
    if not path.exists():
        raise ConversionError(f"{path}: SavedModel folder not found; export the trained Keras model with"
                              " model.export(path) first, and pass that folder")
    if not path.is_dir():
        hint = " (a .keras file: load it and call model.export(folder))" if path.suffix in (".keras", ".h5") else ""
        raise ConversionError(f"{path}: not a folder; a SavedModel is a folder made by model.export(path){hint}")
    if not (path / "saved_model.pb").is_file() and not (path / "saved_model.pbtxt").is_file():
        raise ConversionError(f"{path}: not a SavedModel (no saved_model.pb in it); export the Keras model with"
                              " model.export(path) and pass that folder")
    return path


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return (text.splitlines()[0] if text else "") or type(exc).__name__


def _shape(entry: dict[str, Any]) -> tuple[int | None, ...] | None:
    dims = entry.get("tensorShape", {}).get("dim")
    if dims is None:
        return None
    return tuple(None if int(d.get("size", -1)) < 0 else int(d["size"]) for d in dims)


def read_tfjs_model(model_dir: str | Path) -> TfjsModelInfo:
    """Signature names, shapes and files of a converted graph model (its `model.json`)."""
    model_json = Path(model_dir) / "model.json"
    try:
        data = json.loads(model_json.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConversionError(f"{model_json}: not found; convert the SavedModel with convert_saved_model first") from None
    except (OSError, ValueError) as exc:
        raise ConversionError(f"{model_json}: cannot read it as JSON: {_first_line(exc)}; convert again") from None
    if not isinstance(data, dict) or data.get("format") != "graph-model":
        raise ConversionError(f"{model_json}: not a TF.js graph model (format {data.get('format') if isinstance(data, dict) else None!r});"
                              " convert a SavedModel with convert_saved_model (Keras layers-model output does not load)")
    signature = data.get("signature") or {}
    inputs, outputs = signature.get("inputs") or {}, signature.get("outputs") or {}
    if len(inputs) != 1 or len(outputs) != 1:
        raise ConversionError(f"{model_json}: the serving signature has inputs {sorted(inputs)} and outputs {sorted(outputs)};"
                              " the edge bundle needs exactly one input (the feature vector) and one output"
                              " (the probabilities): build the Keras model with one Input and one output")
    (input_name, input_entry), = inputs.items()
    (output_name, output_entry), = outputs.items()
    shards = [p for group in data.get("weightsManifest", []) for p in group.get("paths", [])]
    for shard in shards:
        if "/" in shard or "\\" in shard or shard.startswith(".") or not (Path(model_dir) / shard).is_file():
            raise ConversionError(f"{model_json}: weight file {shard!r} it refers to is missing next to it; convert again")
    return TfjsModelInfo(input_name=input_name, output_name=output_name, files=("model.json", *shards),
                         input_shape=_shape(input_entry), output_shape=_shape(output_entry))


def _import_converter():
    # tensorflowjs imports tensorflow_decision_forests (prints a banner) and tensorflow_hub
    # (warns about pkg_resources): keep both out of the user's output.
    with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
        warnings.simplefilter("ignore")
        from tensorflowjs.converters import convert_tf_saved_model
    return convert_tf_saved_model


def convert_saved_model(saved_model_dir: str | Path, out_dir: str | Path) -> TfjsModelInfo:
    """Convert a SavedModel (from Keras `model.export`) into a TF.js graph model in `out_dir`.

    `out_dir` is created; if it exists it must be empty or hold only a previous conversion
    (model.json + weight shards), which is replaced. The conversion runs in a sibling scratch
    folder, so a failure leaves `out_dir` as it was. Raises ConversionError.
    """
    source = check_saved_model(saved_model_dir)
    out = Path(out_dir)
    if out.exists():
        if not out.is_dir():
            raise ConversionError(f"{out}: exists and is not a folder; choose a folder for the TF.js model")
        foreign = sorted(p.name for p in out.iterdir() if not (p.is_file() and _CONVERTER_FILE.fullmatch(p.name)))
        if foreign:
            raise ConversionError(f"{out}: holds {foreign[:3]}, which a conversion did not write; refusing to replace"
                                  " it: choose an empty or new folder")
    convert = _import_converter()
    with staged_folder(out) as staging:
        try:
            convert(str(source), str(staging))
        except Exception as exc:  # the converter raises OSError, ValueError, TF errors...
            raise ConversionError(f"{source}: tensorflowjs could not convert it: {_first_line(exc)}."
                                  " Check that it is a SavedModel exported with model.export() from a model with"
                                  " one input and one output, using only ops TF.js supports") from None
        info = read_tfjs_model(staging)
    return info


@contextlib.contextmanager
def staged_folder(out: Path):
    """A scratch folder beside `out` that replaces `out` when the block succeeds; on failure it
    is removed and `out` stays as it was."""
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        yield staging
        if out.exists():
            shutil.rmtree(out)
        staging.rename(out)
    finally:
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)


def python_predict(saved_model_dir: str | Path, X: Any):
    """The SavedModel's own output for a float32 batch X (n, width): numpy (n, outputs), float32.

    Uses `tf.saved_model.load(dir).serve` (what Keras `model.export` writes), falling back to
    the `serving_default` signature. The reference side of the Python-vs-JavaScript parity check.
    """
    import numpy as np

    path = check_saved_model(saved_model_dir)
    X = np.asarray(X, dtype=np.float32)
    if X.ndim != 2:
        raise ConversionError(f"python_predict: X must be a 2-D batch (rows, features), got shape {X.shape}")
    import tensorflow as tf

    try:
        loaded = tf.saved_model.load(str(path))
    except Exception as exc:
        raise ConversionError(f"{path}: TensorFlow cannot load this SavedModel: {_first_line(exc)}") from None
    try:
        if hasattr(loaded, "serve"):
            result = loaded.serve(tf.constant(X))
        else:
            signature = loaded.signatures["serving_default"]
            (name,) = signature.structured_input_signature[1].keys()
            result = signature(**{name: tf.constant(X)})
    except (KeyError, ValueError, TypeError, tf.errors.InvalidArgumentError) as exc:
        raise ConversionError(f"{path}: the model refused a batch of shape {X.shape}: {_first_line(exc)}") from None
    if isinstance(result, dict):
        if len(result) != 1:
            raise ConversionError(f"{path}: the model has outputs {sorted(result)}; expected exactly one")
        (result,) = result.values()
    return np.asarray(result)
