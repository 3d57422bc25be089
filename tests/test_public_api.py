"""The public API is exactly the `__all__` of four modules (`kit`, `kit.features`, `kit.edge`,
`kit.cloud`), and importing them stays light for every kernel."""

from __future__ import annotations

import importlib
import json
import subprocess
import sys
import types

import pytest

import kit

PUBLIC_MODULES = {
    "kit": ["GateFailure", "Interrupted", "KitError", "SpecError", "StepFailure", "in_pipeline", "track"],
    "kit.features": ["CategoricalInput", "FeatureSpec", "FeatureSpecError", "NumericInput", "RowError",
                     "bucketized", "categorical", "load_spec", "numeric"],
    "kit.edge": ["BundleError", "BundleIntegrityError", "ConversionError", "Manifest", "NodeError", "TfjsModelInfo",
                 "bundle_size", "convert_saved_model", "export_booster", "read_bundle", "run_bundle",
                 "write_bundle"],
    "kit.cloud": ["FLAVOR_NAME", "CloudModel", "load_model", "log_model", "read_predictions", "save_model"],
}


def public_names(module: types.ModuleType) -> set[str]:
    """Names a user would take for the module's API: not private, not a submodule, and not a
    helper imported from outside kit (pathlib.Path, typing.Any in signatures)."""
    return {name for name, value in vars(module).items()
            if not name.startswith("_") and not isinstance(value, types.ModuleType)
            and getattr(value, "__module__", "kit").split(".")[0] == "kit"}


def test_public_api_is_exactly_all():
    public = {name for name, value in vars(kit).items()
              if not name.startswith("_") and not isinstance(value, types.ModuleType)}
    assert public == set(kit.__all__)


@pytest.mark.parametrize("name", sorted(PUBLIC_MODULES))
def test_each_public_module_exports_exactly_its_list(name):
    module = importlib.import_module(name)
    assert sorted(module.__all__) == sorted(PUBLIC_MODULES[name])
    assert public_names(module) == set(module.__all__)
    for exported in module.__all__:
        assert getattr(module, exported).__doc__ or isinstance(getattr(module, exported), str), exported


def test_import_kit_does_not_import_heavy_libraries():
    code = "import sys, json, kit; print(json.dumps(sorted(sys.modules)))"
    loaded = set(json.loads(subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                                           check=True).stdout))
    heavy = {"mlflow", "papermill", "nbformat", "tensorflow", "pandas", "great_expectations", "pydantic", "yaml"}
    assert not heavy & loaded


@pytest.mark.parametrize("name", ["kit.features", "kit.edge", "kit.cloud"])
def test_public_modules_do_not_import_frameworks(name):
    code = f"import sys, json, {name}; print(json.dumps(sorted(sys.modules)))"
    loaded = set(json.loads(subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                                           check=True).stdout))
    heavy = {"mlflow", "papermill", "tensorflow", "tensorflowjs", "lightgbm", "pandas", "great_expectations"}
    assert not heavy & loaded
