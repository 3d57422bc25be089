"""What a notebook calls so that its plain `mlflow.log_*` calls land in the right run."""

from __future__ import annotations

import os

INTERACTIVE_EXPERIMENT = "notebooks"


def track(experiment: str = INTERACTIVE_EXPERIMENT):
    """Make this notebook's plain `mlflow` calls land in the right run, and return that run.

    Under `kit run` the runner gives the kernel its step run (MLFLOW_RUN_ID) and the
    store (MLFLOW_TRACKING_URI), and this resumes that run. Run by hand in JupyterLab,
    it starts a run in `experiment` of the project's own store, so nothing lands in a
    stray ./mlruns beside the notebook.
    """
    import mlflow

    from kit import store
    from kit.project import find_root

    if os.environ.get("MLFLOW_RUN_ID"):
        active = mlflow.active_run()
        if active is not None and active.info.run_id == os.environ["MLFLOW_RUN_ID"]:
            return active
        return mlflow.start_run(run_id=os.environ["MLFLOW_RUN_ID"])

    active = mlflow.active_run()
    if active is not None:
        return active
    root = find_root()
    mlflow.set_tracking_uri(store.tracking_uri(root))
    experiment_id = store.ensure_experiment(store.client(root), root, experiment)
    return mlflow.start_run(experiment_id=experiment_id)


def in_pipeline() -> bool:
    """True when the notebook runs as a step of `kit run` (not by hand)."""
    return bool(os.environ.get("KIT_STEP"))
