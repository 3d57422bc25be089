"""The audit log: who is recorded, a log written before the server-ordered one, and a move a
killed process left between its request and its alias write."""

from __future__ import annotations

import pytest

from kit.registry import Registry, versions
from kit.registry.audit import EXPERIMENT, who
from kit.registry.ordering import ANY


@pytest.fixture
def registry(project):
    return Registry(project.root, project.client())


def add(registry):
    return versions.register(registry.client, "m", "file:///nowhere", None, {"kit.gates": "passed"}).version


def test_the_authenticated_mlflow_user_against_a_server_else_the_local_user(monkeypatch):
    monkeypatch.setenv("MLFLOW_TRACKING_USERNAME", "alice")
    monkeypatch.setenv("KIT_USER", "root")
    assert who("http://mlflow.example:5000") == "alice"
    assert who("sqlite:///tmp/mlflow.db").startswith("root@")  # a local store authenticates nobody
    monkeypatch.delenv("MLFLOW_TRACKING_USERNAME")
    assert who("https://mlflow.example").startswith("root@")  # a server without authentication


def test_an_alias_left_behind_by_a_killed_move_is_repaired_by_kit_models(registry, project):
    v1, v2 = add(registry), add(registry)
    registry.promote("m", v1, "champion")
    # killed after its request, before its alias write:
    registry.audit.append("m", "champion", "promote", v2, ANY, "killed midway")
    assert versions.holder(registry.client, "m", "champion") == "1"
    shown = project.kit("models", "m")
    assert shown.returncode == 0 and "moved outside kit" not in shown.stdout, shown.stdout + shown.stderr
    assert versions.holder(registry.client, "m", "champion") == "2"
    assert [(e.from_version, e.to_version, e.reason) for e in registry.audit.events("m")][-1] == \
        ("1", "2", "killed midway")
    assert registry.rollback("m", "champion").to_version == "1"


def test_a_log_written_before_the_ordered_one_keeps_its_history_and_rollbacks(registry):
    v1, v2, v3 = add(registry), add(registry), add(registry)
    experiment = registry.client.create_experiment(EXPERIMENT)
    for seq, (before, after) in enumerate([("", v1), (v1, v2)], start=1):  # what the older kit wrote
        registry.client.create_run(experiment, tags={
            "kit.audit.seq": f"{seq:08d}", "kit.audit.action": "promote", "kit.audit.model": "m",
            "kit.audit.alias": "champion", "kit.audit.from_version": before, "kit.audit.to_version": after,
            "kit.audit.user": "old@host", "kit.audit.reason": "before", "kit.audit.forced": "false"})
    registry.client.set_registered_model_alias("m", "champion", v2)
    assert registry.promote("m", v3, "champion").from_version == "2"
    assert registry.rollback("m", "champion").to_version == "2"
    assert registry.rollback("m", "champion").to_version == "1"
    events = registry.audit.events("m", "champion")
    assert [(e.seq, e.from_version, e.to_version) for e in events] == [
        (1, None, "1"), (2, "1", "2"), (3, "2", "3"), (4, "3", "2"), (5, "2", "1")]
