"""The edge target: write, check and run edge bundles (the folder the JavaScript runtime serves).

From a Keras model (exported as a SavedModel) or a LightGBM booster, in two steps: convert
the model, then write the bundle with the feature spec the model was trained on.

    import kit.edge
    model.export("build/saved_model")                                         # Keras 3
    info = kit.edge.convert_saved_model("build/saved_model", "build/tfjs")
    kit.edge.write_bundle("build/bundle", model_dir="build/tfjs", kind="tfjs-graph", task="multiclass",
                          labels=["setosa", "versicolor", "virginica"], feature_spec=spec,
                          model_name="iris-classifier", tfjs=info)

    kit.edge.export_booster(booster, "build/lgb")                             # LightGBM
    kit.edge.write_bundle("build/bundle", model_dir="build/lgb", kind="lightgbm-json", task="binary",
                          labels=["no", "yes"], feature_spec=spec, model_name="ctr")

    manifest = kit.edge.read_bundle("build/bundle")                           # verify every file
    kit.edge.run_bundle("build/bundle", [{"sepal_length": 5.1, ...}])         # answers from Node

The formats are described in the reference docs (feature spec, bundle manifest). Importing this
module loads neither tensorflow, tensorflowjs, lightgbm nor pandas: the functions that need
them import them when called.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from kit.targets.edge.bundle import BundleError, BundleIntegrityError, Manifest, bundle_size, read_bundle, write_bundle
from kit.targets.edge.convert import ConversionError, TfjsModelInfo, convert_saved_model
from kit.targets.edge.lightgbm import export_booster
from kit.targets.edge.node import NodeError

__all__ = [
    "BundleError",
    "BundleIntegrityError",
    "ConversionError",
    "Manifest",
    "NodeError",
    "TfjsModelInfo",
    "bundle_size",
    "convert_saved_model",
    "export_booster",
    "read_bundle",
    "run_bundle",
    "write_bundle",
]


def run_bundle(bundle_dir: str | Path, rows: Any) -> list[dict[str, Any]]:
    """Run rows through a bundle in a real Node process, as `kit serve edge` would answer them.

    A quick check from a notebook; the pipeline's `edge_parity` gate does the same at scale.

    Args:
        bundle_dir: the bundle folder (`write_bundle`'s `out_dir`).
        rows: a list of dicts of raw fields (as a client sends them), or a DataFrame holding the
            bundle's input columns (a missing value is left out of the row, as a client would).

    Returns:
        One answer per row: `{"prediction": label, "probabilities": {label: p, ...}}`, or
        `{"error": message, "field": name}` for a row the runtime refuses.

    Raises:
        NodeError: Node or the runtime's packages are missing, or the runtime refused the bundle.
    """
    from kit.features.rows import request_rows
    from kit.targets.edge.node import bridge

    if hasattr(rows, "to_dict"):  # a DataFrame: the bundle's inputs, as request rows
        rows = request_rows(rows, [field.name for field in read_bundle(bundle_dir).inputs if field.name in rows])
    return bridge(Path(bundle_dir), list(rows))["predictions"]
