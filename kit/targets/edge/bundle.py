"""The edge bundle (`kit-edge-bundle/1`, FORMAT.md): a folder the JS runtime loads.

    manifest.json        format, model name/version, kind, task, labels, raw inputs, tfjs names,
                         sha256 of every other file, created_at
    feature_spec.json    the feature spec
    model/               tfjs-graph: model.json + weight shards; lightgbm-json: model.json

    info = convert_saved_model("build/sm", "build/tfjs")
    write_bundle("build/bundle", model_dir="build/tfjs", kind="tfjs-graph", task="multiclass",
                 labels=["setosa", "versicolor", "virginica"], feature_spec=spec,
                 model_name="iris-classifier", tfjs=info)
    manifest = read_bundle("build/bundle")      # verifies format and every hash
    set_bundle_version("build/bundle", "3")     # after registration (the manifest is not hashed)

`write_bundle` checks what it can before writing: the TF.js signature's input width equals the
spec's width, and its output width equals len(labels) (multiclass) or 1 (binary: P(labels[1])).
A bundle holds exactly the files its manifest lists; `read_bundle` refuses any other file too.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Mapping, Sequence
from datetime import datetime, timezone
from pathlib import Path, PurePosixPath
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, Strict, ValidationError

from kit.errors import LibraryError
from kit.files import folder_size, sha256_file
from kit.features.spec import FeatureSpec, FeatureSpecError, Range, load_spec
from kit.targets.edge.convert import ConversionError, TfjsModelInfo, read_tfjs_model, staged_folder

FORMAT = "kit-edge-bundle/1"
KINDS = ("tfjs-graph", "lightgbm-json")
TASKS = ("multiclass", "binary")


class BundleError(LibraryError):
    """A bundle cannot be written or read (wrong arguments, missing or malformed files)."""


class BundleIntegrityError(BundleError):
    """A bundle file does not match its manifest (modified, truncated, missing or unlisted)."""


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


Text = Annotated[str, Strict(), Field(min_length=1)]


class ModelRef(_Model):
    name: Text
    version: Text


class InputField(_Model):
    name: Text
    type: Literal["number", "string"]
    range: Range | None = None


class TfjsNames(_Model):
    input: Text
    output: Text


class Manifest(_Model):
    """manifest.json. `files` maps a bundle-relative POSIX path to the sha256 hex of its bytes."""

    format: Literal["kit-edge-bundle/1"]
    model: ModelRef
    kind: Literal["tfjs-graph", "lightgbm-json"]
    task: Literal["multiclass", "binary"]
    labels: list[Text] = Field(min_length=2)
    inputs: list[InputField] = Field(min_length=1)
    tfjs: TfjsNames | None = None
    files: dict[str, Annotated[str, Strict(), Field(pattern=r"^[0-9a-f]{64}$")]]
    created_at: Text

    def to_json(self) -> str:
        return json.dumps(self.model_dump(mode="json", exclude_none=True), indent=2, allow_nan=False) + "\n"


# -- writing -----------------------------------------------------------------------------------

def _spec(feature_spec: FeatureSpec | str | Path) -> FeatureSpec:
    if isinstance(feature_spec, FeatureSpec):
        return feature_spec
    if isinstance(feature_spec, (str, Path)):
        return load_spec(feature_spec)
    raise BundleError(f"write_bundle: feature_spec must be a FeatureSpec or the path of a feature_spec.json,"
                      f" got {type(feature_spec).__name__}")


def _check_arguments(kind: str, task: str, labels: Any, model_name: Any, model_version: Any) -> list[str]:
    if kind not in KINDS:
        raise BundleError(f"write_bundle: kind={kind!r}; use one of {list(KINDS)}")
    if task not in TASKS:
        raise BundleError(f"write_bundle: task={task!r}; use one of {list(TASKS)}")
    if isinstance(labels, str) or not isinstance(labels, Sequence) or not all(isinstance(x, str) and x for x in labels):
        raise BundleError(f"write_bundle: labels must be a list of non-empty strings, got {labels!r}")
    labels = list(labels)
    if len(set(labels)) != len(labels):
        raise BundleError(f"write_bundle: labels {labels} contain duplicates; each class needs its own label")
    if task == "binary" and len(labels) != 2:
        raise BundleError(f"write_bundle: task='binary' needs exactly 2 labels [negative, positive], got {labels}")
    if task == "multiclass" and len(labels) < 2:
        raise BundleError(f"write_bundle: task='multiclass' needs at least 2 labels, got {labels}")
    if not isinstance(model_name, str) or not model_name:
        raise BundleError(f"write_bundle: model_name must be a non-empty string, got {model_name!r}")
    if not isinstance(model_version, str) or not model_version:
        raise BundleError(f"write_bundle: model_version must be a non-empty string such as '3', got {model_version!r}")
    return labels


def _tfjs_files(model_dir: Path, tfjs: TfjsModelInfo | Mapping | None, spec: FeatureSpec, task: str,
                labels: list[str]) -> tuple[list[str], TfjsNames]:
    try:
        info = read_tfjs_model(model_dir)
    except ConversionError as exc:
        raise BundleError(f"write_bundle: model_dir: {exc}") from None
    if tfjs is not None:
        given = (tfjs.input_name, tfjs.output_name) if isinstance(tfjs, TfjsModelInfo) else (tfjs.get("input"), tfjs.get("output"))
        if given != (info.input_name, info.output_name):
            raise BundleError(f"write_bundle: tfjs names {given} do not match the signature of {model_dir / 'model.json'}"
                              f" ({info.input_name!r}, {info.output_name!r}); pass the TfjsModelInfo that"
                              " convert_saved_model returned for this folder, or tfjs=None to read them")
    width = info.input_shape[-1] if info.input_shape else None
    if width is not None and width != spec.width:
        raise BundleError(f"write_bundle: the model takes {width} features but the feature spec makes {spec.width}"
                          f" ({spec.column_names}); use the spec the model was trained with")
    outputs = info.output_shape[-1] if info.output_shape else None
    expected = len(labels) if task == "multiclass" else 1
    if outputs is not None and outputs != expected:
        hint = ("a binary model outputs one probability, P(labels[1]) (a sigmoid unit); for a 2-unit softmax"
                " use task='multiclass'" if task == "binary" else f"labels has {len(labels)} entries")
        raise BundleError(f"write_bundle: the model outputs {outputs} values per row, task={task!r} needs {expected}:"
                          f" {hint}")
    return list(info.files), TfjsNames(input=info.input_name, output=info.output_name)


def _lightgbm_files(model_dir: Path) -> tuple[Path, list[str]]:
    source = model_dir if model_dir.is_file() else model_dir / "model.json"
    try:
        json.loads(source.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise BundleError(f"write_bundle: {source}: not found; write booster.dump_model() as JSON to"
                          " <model_dir>/model.json") from None
    except (OSError, ValueError) as exc:
        raise BundleError(f"write_bundle: {source}: not a JSON file ({exc})") from None
    return source, ["model.json"]


def write_bundle(out_dir: str | Path, *, model_dir: str | Path, kind: str, task: str, labels: Sequence[str],
                 feature_spec: FeatureSpec | str | Path, model_name: str, model_version: str = "0",
                 tfjs: TfjsModelInfo | Mapping[str, str] | None = None) -> Path:
    """Lay out a bundle in `out_dir` (FORMAT.md) and return its path.

    `model_dir`: the converted TF.js folder (kind "tfjs-graph"; its model.json and the weight
    shards it lists are copied into model/) or, for "lightgbm-json", a folder with model.json
    (or that file itself). `tfjs`: the TfjsModelInfo from `convert_saved_model` (checked
    against model.json) or None to read the names from model.json. `out_dir` must be new,
    empty, or a previous bundle (replaced); it is built in a scratch folder next to it first.
    """
    labels = _check_arguments(kind, task, labels, model_name, model_version)
    spec = _spec(feature_spec)
    model_dir = Path(model_dir)
    if not model_dir.exists():
        raise BundleError(f"write_bundle: model_dir {model_dir} not found; convert the model first")
    tfjs_names = None
    if kind == "tfjs-graph":
        if not model_dir.is_dir():
            raise BundleError(f"write_bundle: model_dir {model_dir} is not a folder; pass the folder"
                              " convert_saved_model wrote")
        model_files, tfjs_names = _tfjs_files(model_dir, tfjs, spec, task, labels)
        copies = [(model_dir / name, name) for name in model_files]
    else:
        if tfjs is not None:
            raise BundleError("write_bundle: tfjs names only apply to kind='tfjs-graph'; leave tfjs=None")
        source, _ = _lightgbm_files(model_dir)
        copies = [(source, "model.json")]

    out = Path(out_dir)
    if out.exists():
        if not out.is_dir():
            raise BundleError(f"write_bundle: {out} exists and is not a folder; choose a folder for the bundle")
        if any(out.iterdir()) and not (out / "manifest.json").is_file():
            raise BundleError(f"write_bundle: {out} is not empty and not a bundle; refusing to replace it:"
                              " choose an empty or new folder")
    with staged_folder(out) as staging:
        (staging / "feature_spec.json").write_text(spec.to_json(), encoding="utf-8")
        (staging / "model").mkdir()
        for source, name in copies:
            shutil.copyfile(source, staging / "model" / name)
        files = {"feature_spec.json": sha256_file(staging / "feature_spec.json")}
        files.update({f"model/{name}": sha256_file(staging / "model" / name) for _, name in copies})
        manifest = Manifest(
            format=FORMAT,
            model=ModelRef(name=model_name, version=model_version),
            kind=kind,  # type: ignore[arg-type]
            task=task,  # type: ignore[arg-type]
            labels=labels,
            inputs=[InputField.model_validate(f) for f in spec.request_fields()],
            tfjs=tfjs_names,
            files=files,
            created_at=datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        )
        (staging / "manifest.json").write_text(manifest.to_json(), encoding="utf-8")
    return out


# -- reading -----------------------------------------------------------------------------------

def find_bundle(folder: Path) -> Path | None:
    """The bundle in `folder` or the shallowest one under it (a downloaded artifact nests it), or None."""
    found = sorted(Path(folder).rglob("manifest.json"), key=lambda p: len(p.parts))
    return found[0].parent if found else None


def _load_manifest(bundle: Path) -> Manifest:
    if not bundle.is_dir():
        raise BundleError(f"{bundle}: bundle folder not found; build it with write_bundle (a notebook's convert step)")
    path = bundle / "manifest.json"
    try:
        data = json.loads(path.read_text(encoding="utf-8"), parse_constant=_reject_constant)
    except FileNotFoundError:
        raise BundleError(f"{path}: not found, so {bundle} is not an edge bundle; build it with write_bundle") from None
    except (OSError, ValueError) as exc:
        raise BundleError(f"{path}: not valid JSON: {exc}; rebuild the bundle with write_bundle") from None
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        found = data.get("format") if isinstance(data, dict) else None
        raise BundleError(f"{path}: format {found!r} is not {FORMAT!r}; rebuild the bundle with this kit")
    try:
        return Manifest.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(str(p) for p in e['loc']) or 'manifest'}: {e['msg']}"
                             for e in exc.errors(include_url=False))
        raise BundleError(f"{path}: {problems}; rebuild the bundle with write_bundle") from None


def _reject_constant(name: str) -> float:
    raise ValueError(f"{name} is not valid JSON")


def read_bundle(bundle_dir: str | Path) -> Manifest:
    """Read and verify a bundle: manifest format, every listed file's sha256, no unlisted files,
    the feature spec (and that the manifest's inputs come from it), the TF.js signature names.
    Raises BundleIntegrityError naming the file that does not match, BundleError otherwise."""
    bundle = Path(bundle_dir)
    manifest = _load_manifest(bundle)
    root = bundle.resolve()
    for name, expected in manifest.files.items():
        pure = PurePosixPath(name)
        if pure.is_absolute() or ".." in pure.parts or "\\" in name or name == "manifest.json":
            raise BundleError(f"{bundle / 'manifest.json'}: files lists {name!r}, which is not a path inside the"
                              " bundle; rebuild the bundle with write_bundle")
        path = bundle / name
        if not path.is_file():
            raise BundleIntegrityError(f"{path}: listed in manifest.json but missing; copy the whole bundle folder"
                                       " again or rebuild it")
        actual = sha256_file(path)
        if actual != expected:
            raise BundleIntegrityError(f"{path}: sha256 {actual} does not match manifest.json ({expected}): the file"
                                       " was modified or copied incompletely; rebuild the bundle (write_bundle)")
    listed = set(manifest.files) | {"manifest.json"}
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        rel = path.relative_to(root).as_posix()
        if rel not in listed:
            raise BundleIntegrityError(f"{bundle / rel}: not listed in manifest.json; a bundle holds exactly the"
                                       " files its manifest lists: remove it or rebuild the bundle")
    for required in ("feature_spec.json", "model/model.json"):
        if required not in manifest.files:
            raise BundleError(f"{bundle / 'manifest.json'}: files does not list {required}; rebuild the bundle")
    try:
        spec = load_spec(bundle / "feature_spec.json")
    except FeatureSpecError as exc:
        raise BundleError(f"{bundle}: its feature spec is invalid: {exc}") from None
    if [f.model_dump(exclude_none=True) for f in manifest.inputs] != spec.request_fields():
        raise BundleError(f"{bundle / 'manifest.json'}: inputs do not match feature_spec.json; rebuild the bundle")
    if manifest.kind == "tfjs-graph":
        try:
            info = read_tfjs_model(bundle / "model")
        except ConversionError as exc:
            raise BundleError(f"{bundle}: {exc}") from None
        if manifest.tfjs is None or (manifest.tfjs.input, manifest.tfjs.output) != (info.input_name, info.output_name):
            raise BundleError(f"{bundle / 'manifest.json'}: tfjs names {manifest.tfjs} do not match model/model.json's"
                              f" signature ({info.input_name!r}, {info.output_name!r}); rebuild the bundle")
    elif manifest.tfjs is not None:
        raise BundleError(f"{bundle / 'manifest.json'}: a {manifest.kind} bundle has no tfjs names; rebuild the bundle")
    return manifest


def bundle_size(bundle_dir: str | Path) -> int:
    """Total bytes of every file in the bundle folder (manifest included)."""
    bundle = Path(bundle_dir)
    if not bundle.is_dir():
        raise BundleError(f"{bundle}: bundle folder not found")
    return folder_size(bundle)


def set_bundle_version(bundle_dir: str | Path, version: str | int) -> Manifest:
    """Verify the bundle, then set manifest.json's model.version (e.g. the registry version)."""
    version = str(version)
    if not version:
        raise BundleError("set_bundle_version: version must be non-empty, e.g. '3'")
    manifest = read_bundle(bundle_dir)
    updated = manifest.model_copy(update={"model": ModelRef(name=manifest.model.name, version=version)})
    (Path(bundle_dir) / "manifest.json").write_text(updated.to_json(), encoding="utf-8")
    return updated
