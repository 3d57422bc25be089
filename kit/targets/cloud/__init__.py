"""The cloud target: MLflow's scoring server on a model that takes raw rows (the feature spec
inside the pyfunc), behind the kit's front server (version headers, prediction log, reload
without dropped requests), and the `cloud_latency` gate.

Names are imported on first use: the gate registry loads `kit.targets.cloud.gates` in every
`kit validate`, which must not pay for importing mlflow or pandas.
"""

from __future__ import annotations

import importlib
from typing import Any

_WHERE = {
    "CloudModel": "pyfunc",
    "ScoringServer": "server",
    "ScoringServerError": "server",
    "free_port": "server",
    "start_scoring_server": "server",
    "PredictionLog": "predlog",
    "read_predictions": "predlog",
    "Front": "front",
    "serve": "front",
    "CloudLatency": "gates",
}

__all__ = sorted(_WHERE)


def __getattr__(name: str) -> Any:
    if name not in _WHERE:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{_WHERE[name]}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
