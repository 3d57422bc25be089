"""kit: run parameterized notebooks as a tracked, gated pipeline.

The public API is what notebooks and scripts may import; everything else is internal.
Heavy libraries (mlflow, papermill, tensorflow) are imported only where they are used,
so `import kit` stays fast in every kernel.
"""

from kit.errors import GateFailure, Interrupted, KitError, SpecError, StepFailure
from kit.notebook_api import in_pipeline, track

__all__ = [
    "GateFailure",
    "Interrupted",
    "KitError",
    "SpecError",
    "StepFailure",
    "in_pipeline",
    "track",
]
__version__ = "0.1.0"
