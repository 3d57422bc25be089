"""kit.store with a tracking server: refusals as one line, experiment creation racing another machine."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from mlflow.exceptions import MlflowException
from mlflow.protos.databricks_pb2 import PERMISSION_DENIED, RESOURCE_ALREADY_EXISTS, UNAUTHENTICATED

from kit import store
from kit.cli import exit_code
from kit.errors import PermissionDenied


@pytest.fixture
def server_env(monkeypatch):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://team:5000")
    monkeypatch.setenv("MLFLOW_TRACKING_USERNAME", "viewer")


def test_a_403_becomes_one_line_with_exit_2(server_env):
    error = MlflowException("API request to endpoint /api/2.0/mlflow/registered-models/alias failed with error "
                            "code 403 != 200. Response body: 'Permission denied'", error_code=PERMISSION_DENIED)
    refused = store.refusal(error)
    assert isinstance(refused, PermissionDenied) and exit_code(refused) == 2
    assert str(refused).startswith("http://team:5000 refused user 'viewer': permission denied "
                                   "(/api/2.0/mlflow/registered-models/alias)")
    assert "\n" not in str(refused)


def test_wrong_credentials_and_artifact_proxy_refusals_are_refusals_too(server_env):
    unauthenticated = store.refusal(MlflowException("endpoint /api/2.0/mlflow/runs/get ...",
                                                    error_code=UNAUTHENTICATED))
    assert "did not accept the credentials of user 'viewer'" in str(unauthenticated)
    http_403 = type("HTTPError", (Exception,), {})("403 for url /api/2.0/mlflow-artifacts/artifacts/x")
    http_403.response = SimpleNamespace(status_code=403)
    assert "permission denied (/api/2.0/mlflow-artifacts/artifacts/x)" in str(store.refusal(http_403))


def test_other_errors_are_not_refusals():
    assert store.refusal(MlflowException("no such run", error_code=RESOURCE_ALREADY_EXISTS)) is None
    assert store.refusal(ValueError("x")) is None


class RacingClient:
    """Another machine creates the experiment between our look-up and our create."""

    def __init__(self):
        self.looked = 0

    def get_experiment_by_name(self, name):
        self.looked += 1
        return None if self.looked == 1 else SimpleNamespace(experiment_id="7", lifecycle_stage="active")

    def create_experiment(self, name, artifact_location=None):
        raise MlflowException(f"Experiment(name={name}) already exists.", error_code=RESOURCE_ALREADY_EXISTS)


def test_an_experiment_created_meanwhile_by_another_machine_is_used(server_env, tmp_path):
    assert store.ensure_experiment(RacingClient(), tmp_path, "iris") == "7"
