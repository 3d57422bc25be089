"""The edge target, Python side: Keras SavedModel -> TF.js graph model, and the bundle folder.

The bundle and feature-spec formats are defined in FORMAT.md next to this file; the JavaScript
runtime that loads bundles lives in runtime/. Importing this package does not import
tensorflow or tensorflowjs: `convert_saved_model` and `python_predict` import them when called.
"""

from kit.targets.edge.bundle import (
    BundleError,
    BundleIntegrityError,
    Manifest,
    bundle_size,
    read_bundle,
    set_bundle_version,
    write_bundle,
)
from kit.targets.edge.convert import (
    ConversionError,
    TfjsModelInfo,
    convert_saved_model,
    python_predict,
    read_tfjs_model,
)

__all__ = [
    "BundleError",
    "BundleIntegrityError",
    "ConversionError",
    "Manifest",
    "TfjsModelInfo",
    "bundle_size",
    "convert_saved_model",
    "python_predict",
    "read_bundle",
    "read_tfjs_model",
    "set_bundle_version",
    "write_bundle",
]
