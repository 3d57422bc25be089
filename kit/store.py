"""The MLflow store: embedded SQLite under mlruns/ by default, or $MLFLOW_TRACKING_URI."""

from __future__ import annotations

import fcntl
import os
from contextlib import contextmanager
from pathlib import Path

from kit.errors import PermissionDenied
from kit.project import mlruns_dir

# MLflow otherwise starts a thread that looks up a telemetry host (no network here, and no need).
os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")  # no bars in logs and CI
# Against a server, MLflow prints "View run ... at: URL" on stdout whenever a run ends: not the kit's output.
os.environ.setdefault("MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT", "true")


def tracking_uri(root: Path) -> str:
    """$MLFLOW_TRACKING_URI if set, else the embedded SQLite store under mlruns/."""
    return os.environ.get("MLFLOW_TRACKING_URI") or f"sqlite:///{mlruns_dir(root) / 'mlflow.db'}"


def is_server(uri: str) -> bool:
    """A tracking server decides artifact locations itself; a database URI needs us to."""
    return uri.split(":", 1)[0] in {"http", "https", "databricks"}


def refusal(error: BaseException) -> PermissionDenied | None:
    """A tracking server's refusal (MLflow's PERMISSION_DENIED / UNAUTHENTICATED, or HTTP 403 / 401 from
    its artifact proxy) as one line that says who was refused and what to do; None for any other error."""
    import re

    code = getattr(error, "error_code", None)
    status = getattr(getattr(error, "response", None), "status_code", None)
    if code not in ("PERMISSION_DENIED", "UNAUTHENTICATED") and status not in (401, 403):
        return None
    uri = os.environ.get("MLFLOW_TRACKING_URI", "the tracking server")
    user = os.environ.get("MLFLOW_TRACKING_USERNAME")
    endpoint = re.search(r"endpoint (\S+)", str(error)) or re.search(r"(/api/\S+|/ajax-api/\S+)", str(error))
    where = f" ({endpoint.group(1)})" if endpoint else ""
    if code == "UNAUTHENTICATED" or status == 401:
        if not user:
            return PermissionDenied(f"{uri} asks for credentials{where}: set MLFLOW_TRACKING_USERNAME and "
                                    "MLFLOW_TRACKING_PASSWORD")
        return PermissionDenied(f"{uri} did not accept the credentials of user {user!r}{where}: check "
                                "MLFLOW_TRACKING_USERNAME and MLFLOW_TRACKING_PASSWORD")
    return PermissionDenied(f"{uri} refused user {user!r}: permission denied{where}; changing a registered model "
                            "(register) needs EDIT or MANAGE on it, moving its alias (promote, rollback) also on "
                            "MODEL.kit-audit (the audit log) and the kit-audit experiment, and logging runs needs EDIT "
                            "on the experiment: ask its owner or an admin")


def artifact_location(root: Path, experiment_name: str) -> str | None:
    """Absolute artifact folder for a new experiment (None: the server decides).

    Never left to MLflow's default, which is ./mlruns relative to whatever the
    current folder is (a notebook's folder, a step's workspace).
    """
    if is_server(tracking_uri(root)):
        return None
    return (mlruns_dir(root) / "artifacts" / experiment_name).as_uri()


@contextmanager
def file_lock(root: Path, name: str = ".lock"):
    """An exclusive lock between processes on this machine, held for the `with` block.

    Used around store creation and experiment creation (two `kit run` started together on
    a fresh mlruns/ would race on MLflow's schema migration). A remote tracking server gets
    no lock: MLflow offers none across machines, so alias moves use none either (see
    kit/registry/ordering.py).
    """
    if not tracking_uri(root).startswith("sqlite:"):
        yield
        return
    folder = mlruns_dir(root)
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / name, "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)



def client(root: Path):
    """An MlflowClient on the project's store (created on first use)."""
    from mlflow import MlflowClient

    with file_lock(root):
        return MlflowClient(tracking_uri=tracking_uri(root))


def ensure_experiment(mlflow_client, root: Path, name: str) -> str:
    with file_lock(root):
        found = mlflow_client.get_experiment_by_name(name)
        if found is not None:
            if found.lifecycle_stage == "deleted":
                mlflow_client.restore_experiment(found.experiment_id)
            return found.experiment_id
        from mlflow.exceptions import MlflowException

        try:
            return mlflow_client.create_experiment(name, artifact_location=artifact_location(root, name))
        except MlflowException as error:
            # Against a server no local lock helps: another machine created it since we looked (the
            # name is unique in the server's database, so exactly one create wins). Use theirs.
            if error.error_code != "RESOURCE_ALREADY_EXISTS":
                raise
            return mlflow_client.get_experiment_by_name(name).experiment_id
