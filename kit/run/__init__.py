"""Executing a pipeline: workspaces, papermill kernels, progress, MLflow run bookkeeping."""

__all__ = ["RunResult", "StepResult", "run"]


def __getattr__(name: str):
    # Lazy: `kit run` decides whether anything needs to run (kit.run.cache_session) before
    # it imports the runner, papermill and jupyter_client.
    if name in __all__:
        from kit.run import runner

        return getattr(runner, name)
    raise AttributeError(f"module 'kit.run' has no attribute {name!r}")
