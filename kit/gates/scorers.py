"""Scoring a model version on raw rows, whatever kind of model it is: the scorer registry.

A scorer takes a model's files (the registered file or folder, plus the feature spec and class
labels recorded with it, for kinds that do not carry them) and a DataFrame of raw rows, applies
that model's OWN preprocessing, and returns its predictions. Built in: MLflow models (any pyfunc,
e.g. the cloud target's), Keras SavedModel folders and `.keras` files, LightGBM text models.
Targets add theirs through the `kit.scorers` entry point group (the edge bundle, scored in Node),
so the core never imports a target. The first scorer whose `matches` says yes is used; entry
point scorers are asked first.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from kit.errors import KitError
from kit.plugins import Plugins


class ScoringError(KitError):
    """A model could not be scored: unknown kind, missing feature spec, a crash while predicting."""


@dataclass
class ModelFiles:
    path: Path  # the model's file or folder, as registered
    feature_spec: Path | None = None  # the preprocessing, for kinds that do not carry it
    labels: list[Any] | None = None  # class names in output order, for kinds that do not carry them
    uri: str | None = None  # models:/NAME/VERSION for a registered version (MLflow loads it by URI)
    tracking_uri: str | None = None  # the store `uri` is in


@dataclass
class Predictions:
    values: np.ndarray  # binary: P(labels[1]) (n,); multiclass: (n, classes); regression: (n,)
    labels: list[Any] | None  # class names in output order (None: regression or unknown)


class Scorer:
    kind: ClassVar[str]

    def matches(self, path: Path) -> bool:  # pragma: no cover - abstract
        raise NotImplementedError

    def predict(self, model: ModelFiles, rows) -> Predictions:  # pragma: no cover - abstract
        raise NotImplementedError


_SCORERS: Plugins[Scorer] = Plugins("kit.scorers", name_of=lambda scorer: scorer.kind,
                                    make=lambda scorer_class: scorer_class())
register = _SCORERS.register  # add a scorer class (usable as a class decorator)
known = _SCORERS.known  # kind -> scorer, entry point scorers first


def model_path(path: Path) -> Path:
    """A registered file output arrives as a folder holding that one file: the file itself."""
    path = Path(path)
    if path.is_dir():
        entries = list(path.iterdir())
        if len(entries) == 1 and entries[0].is_file():
            return entries[0]
    return path


def predict(model: ModelFiles, rows) -> Predictions:
    path = model_path(model.path)
    for scorer in known().values():
        if scorer.matches(path):
            try:
                return scorer.predict(ModelFiles(path, model.feature_spec, model.labels, model.uri,
                                                 model.tracking_uri), rows)
            except ScoringError:
                raise
            except Exception as exc:  # a model that cannot score these rows: say which and why
                raise ScoringError(f"the {scorer.kind} scorer could not score {path.name}: "
                                   f"{type(exc).__name__}: {exc}") from exc
    raise ScoringError(f"no scorer knows the model at {path} (known kinds: {', '.join(known())})")


def _features(model: ModelFiles, rows, kind: str) -> np.ndarray:
    from kit.features import load_spec

    if model.feature_spec is None:
        raise ScoringError(f"a {kind} model carries no feature spec, and none was recorded with it "
                           "(declare `feature_spec` in the evaluation step's `evaluation:`)")
    spec = load_spec(model.feature_spec)
    return spec.transform(rows[spec.input_names])


def _squeeze(values, labels) -> Predictions:
    values = np.asarray(values, dtype=np.float64)
    if values.ndim == 2 and values.shape[1] == 1:
        values = values[:, 0]
    return Predictions(values, labels)


@register
class MlflowModelScorer(Scorer):
    """Any MLflow model folder, loaded with `mlflow.pyfunc.load_model` (by its models:/ URI when registered)."""

    kind = "mlflow-model"

    def matches(self, path: Path) -> bool:
        return path.is_dir() and (path / "MLmodel").is_file()

    def predict(self, model: ModelFiles, rows) -> Predictions:
        import mlflow
        import mlflow.pyfunc

        if model.uri and model.tracking_uri:  # models:/ resolves in the process's registry: the project's store
            mlflow.set_tracking_uri(model.tracking_uri)
            mlflow.set_registry_uri(model.tracking_uri)
        loaded = mlflow.pyfunc.load_model(model.uri or str(model.path))
        metadata = loaded.metadata.metadata or {}
        inputs = metadata.get("kit.inputs") or (loaded.metadata.get_input_schema().input_names()
                                                if loaded.metadata.get_input_schema() else list(rows.columns))
        labels = metadata.get("kit.labels") or model.labels
        out = loaded.predict(rows[[c for c in inputs if c in rows.columns]])
        if not hasattr(out, "columns"):
            return _squeeze(out, labels)
        if "probability" in out.columns:  # the kit's spec model, binary: P(labels[1])
            return Predictions(out["probability"].to_numpy(dtype=np.float64), labels)
        if labels and all(str(label) in out.columns for label in labels):
            return Predictions(out[[str(label) for label in labels]].to_numpy(dtype=np.float64), labels)
        return _squeeze(out.select_dtypes("number").to_numpy(), labels)


@register
class SavedModelScorer(Scorer):
    """A TensorFlow SavedModel folder (Keras `model.export`) on the feature spec's vectors."""

    kind = "savedmodel"

    def matches(self, path: Path) -> bool:
        return path.is_dir() and (path / "saved_model.pb").is_file()

    def predict(self, model: ModelFiles, rows) -> Predictions:
        from kit.native import stderr_to_file

        features = _features(model, rows, self.kind).astype(np.float32)
        with stderr_to_file():  # TensorFlow's C++ start-up messages
            import tensorflow as tf

            loaded = tf.saved_model.load(str(model.path))
            return _squeeze(loaded.serve(features).numpy(), model.labels)


@register
class KerasFileScorer(Scorer):
    kind = "keras"

    def matches(self, path: Path) -> bool:
        return path.is_file() and path.suffix == ".keras"

    def predict(self, model: ModelFiles, rows) -> Predictions:
        from kit.native import stderr_to_file

        features = _features(model, rows, self.kind).astype(np.float32)
        with stderr_to_file():  # TensorFlow's C++ start-up messages
            import keras

            return _squeeze(keras.models.load_model(model.path).predict(features, verbose=0), model.labels)


@register
class LightGBMScorer(Scorer):
    """A LightGBM text model (`booster.save_model`) on the feature spec's vectors."""

    kind = "lightgbm"

    def matches(self, path: Path) -> bool:
        if not path.is_file():
            return False
        with open(path, "rb") as handle:
            return handle.read(5) == b"tree\n"

    def predict(self, model: ModelFiles, rows) -> Predictions:
        import lightgbm

        features = _features(model, rows, self.kind)
        return _squeeze(lightgbm.Booster(model_file=str(model.path)).predict(features), model.labels)
