"""Executing a pipeline: workspaces, papermill kernels, progress, MLflow run bookkeeping."""

from kit.run.runner import RunResult, StepResult, run

__all__ = ["RunResult", "StepResult", "run"]
