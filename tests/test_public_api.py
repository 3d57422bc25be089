"""The public API is exactly `kit.__all__`, and importing it stays light for every kernel."""

from __future__ import annotations

import json
import subprocess
import sys
import types

import kit


def test_public_api_is_exactly_all():
    public = {name for name, value in vars(kit).items()
              if not name.startswith("_") and not isinstance(value, types.ModuleType)}
    assert public == set(kit.__all__)


def test_import_kit_does_not_import_heavy_libraries():
    code = "import sys, json, kit; print(json.dumps(sorted(sys.modules)))"
    loaded = set(json.loads(subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                                           check=True).stdout))
    heavy = {"mlflow", "papermill", "nbformat", "tensorflow", "pandas", "great_expectations", "pydantic", "yaml"}
    assert not heavy & loaded
