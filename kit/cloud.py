"""The cloud target's model, in MLflow's flavor shape (`save_model`, `log_model`, `load_model`).

A cloud model takes the same RAW rows as the edge (the feature spec is applied inside the model),
so a client can switch between edge and cloud without changing its requests. `kit serve cloud`
runs MLflow's scoring server on it; `mlflow.pyfunc.load_model` loads it like any MLflow model.

    import kit.cloud
    kit.cloud.save_model(booster, "build/cloud_model", feature_spec="build/feature_spec.json",
                         task="binary", labels=["no_click", "click"], model_name="ctr")
    model = kit.cloud.load_model("build/cloud_model")
    model.predict([{"device": "mobile", "hour": 20}])      # a DataFrame: probability, prediction

Importing this module loads neither mlflow, pandas, lightgbm nor tensorflow.
"""

from __future__ import annotations

import sys
from pathlib import Path
import typing
from typing import Any, Literal, Sequence

from kit.targets.cloud.pyfunc import FLAVOR_NAME, CloudModel

if typing.TYPE_CHECKING:
    from mlflow.models.model import ModelInfo
    from pandas import DataFrame

__all__ = ["FLAVOR_NAME", "CloudModel", "load_model", "log_model", "read_predictions", "save_model"]


def save_model(model: Any, path: str | Path, *, feature_spec: Any, task: Literal["binary", "multiclass"],
               labels: Sequence[Any], kind: Literal["lightgbm", "savedmodel"] | None = None,
               model_name: str | None = None, mlflow_model: Any = None,
               metadata: dict[str, Any] | None = None) -> Path:
    """Save a model that serves raw rows as an MLflow model folder at `path` (which must not exist).

    Args:
        model: a `lightgbm.Booster` or fitted LGBM estimator, LightGBM's text model file
            (`booster.save_model`), or a SavedModel folder (Keras `model.export`).
        path: the new folder.
        feature_spec: the `kit.features.FeatureSpec` the model was trained on, or its JSON file.
        task: `"binary"` (the model outputs P(labels[1])) or `"multiclass"` (one probability per label).
        labels: the class names in output order (binary: `[negative, positive]`).
        kind: `"lightgbm"` or `"savedmodel"`; by default a folder is a SavedModel and anything else LightGBM.
        model_name: the registered model's name, recorded in the model's metadata.
        mlflow_model: the `mlflow.models.Model` this flavor is added to (`log_model` passes it).
        metadata: extra MLmodel metadata.

    Returns:
        `path`. Bad arguments raise `kit.SpecError` saying which and how to fix them.
    """
    from mlflow.models import Model
    from mlflow.pyfunc import add_to_model

    from kit.targets.cloud.pyfunc import write_model_files

    path = Path(path)
    conf = write_model_files(model, path, feature_spec=feature_spec, task=task, labels=labels, kind=kind,
                             model_name=model_name)
    mlflow_model = mlflow_model if mlflow_model is not None else Model()
    mlflow_model.metadata = {
        **(mlflow_model.metadata or {}), **(metadata or {}),
        "kit.kind": conf["kind"], "kit.task": task, "kit.labels": conf["labels"], "kit.inputs": conf["inputs"],
        **({"kit.model_name": model_name} if model_name else {}),
    }
    # No signature on purpose: raw values must reach the feature spec, which judges them as the edge does.
    add_to_model(mlflow_model, loader_module=__name__)
    mlflow_model.add_flavor(FLAVOR_NAME, **conf)
    mlflow_model.save(str(path / "MLmodel"))
    return path


def log_model(model: Any, name: str = "model", *, feature_spec: Any, task: Literal["binary", "multiclass"],
              labels: Sequence[Any], kind: Literal["lightgbm", "savedmodel"] | None = None,
              model_name: str | None = None, registered_model_name: str | None = None,
              metadata: dict[str, Any] | None = None, **kwargs: Any) -> ModelInfo:
    """Log a cloud model as an artifact of the active MLflow run (one is started if none is).

    Takes `save_model`'s arguments (but `name`, the logged model's name, instead of `path`) and
    `registered_model_name` (if given, also register a new version of that model); other
    keyword arguments go to `mlflow.models.Model.log` (e.g. `params`, `tags`).

    Returns:
        MLflow's model info; its `model_uri` loads the model back.
    """
    from mlflow.models import Model

    return Model.log(artifact_path=None, name=name, flavor=sys.modules[__name__], model=model,
                     feature_spec=feature_spec, task=task, labels=labels, kind=kind, model_name=model_name,
                     registered_model_name=registered_model_name, metadata=metadata, **kwargs)


def load_model(model_uri: str | Path, dst_path: str | Path | None = None) -> CloudModel:
    """Load a cloud model from a folder or an MLflow URI (`runs:/...`, `models:/name@alias`, ...).

    Args:
        model_uri: the model's folder or MLflow URI.
        dst_path: an existing folder to download a remote model into (default: a temporary one).

    Returns:
        The model; `predict(rows)` answers raw rows with a DataFrame.
    """
    from mlflow.artifacts import download_artifacts

    local = Path(model_uri) if Path(model_uri).is_dir() else \
        Path(download_artifacts(artifact_uri=str(model_uri), dst_path=None if dst_path is None else str(dst_path)))
    return CloudModel.load(local)


def _load_pyfunc(path: str) -> CloudModel:
    """MLflow's pyfunc loader (`mlflow.pyfunc.load_model` and the scoring server call it)."""
    return CloudModel.load(path)


def read_predictions(log_dir: str | Path) -> DataFrame:
    """The prediction log `kit serve cloud` writes (one folder per model and alias, e.g.
    `mlruns/predictions/ctr-cloud-champion`) as a DataFrame, one row per predicted row, oldest
    first: time (UTC), model, version, request_id, latency_ms, status, row, rows, input_sha256,
    input (with `--log-inputs full`), output.

        df = kit.cloud.read_predictions("mlruns/predictions/ctr-cloud-champion")
        df.groupby("version")["latency_ms"].describe()      # an A/B comparison
    """
    from kit.targets.cloud.predlog import read_predictions as read

    return read(log_dir)
