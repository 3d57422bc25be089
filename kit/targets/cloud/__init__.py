"""The cloud target: a registered MLflow model (e.g. one that takes raw rows, the feature spec
inside the pyfunc) served by the kit's front (uvicorn; version headers, prediction log,
micro-batching over worker processes that load the model through MLflow's pyfunc API, /metrics,
reload without dropped requests), MLflow's bare scoring server for comparison, and the
`cloud_latency` gate.

Names are imported on first use: the gate registry loads `kit.targets.cloud.gates` in every
`kit validate`, which must not pay for importing mlflow, pandas or uvicorn.
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
    "WorkerPool": "pool",
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
