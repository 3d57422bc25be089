"""Promotion, forced promotion, rollback, repair and concurrency on a real MLflow SQLite registry."""

from __future__ import annotations

import pytest

from kit.errors import GateFailure
from kit.registry import Registry, RegistryError, versions


@pytest.fixture
def registry(project):
    return Registry(project.root, project.client())


def add(registry, gates="passed", auc=0.9):
    tags = {"kit.gates": gates, "kit.metric.evaluate.auc": str(auc)}
    return versions.register(registry.client, "m", "file:///nowhere", None, tags).version


def test_promote_then_rollback_restores_the_previous_version_and_logs_both(registry):
    v1, v2 = add(registry), add(registry)
    registry.promote("m", v1, "champion")
    registry.promote("m", v2, "champion", reason="better")
    event = registry.rollback("m", "champion", reason="bad answers in production")
    assert (event.from_version, event.to_version) == ("2", "1")
    assert versions.holder(registry.client, "m", "champion") == "1"
    log = [(e.action, e.from_version, e.to_version, e.reason) for e in registry.audit.events("m", "champion")]
    assert log == [("promote", None, "1", "all gates passed"), ("promote", "1", "2", "better"),
                   ("rollback", "2", "1", "bad answers in production")]
    assert all("@" in e.user for e in registry.audit.events("m"))


def test_repeated_rollbacks_walk_back_and_then_refuse(registry):
    for version in (add(registry), add(registry), add(registry)):
        registry.promote("m", version, "champion")
    assert registry.rollback("m", "champion").to_version == "2"
    assert registry.rollback("m", "champion").to_version == "1"
    with pytest.raises(RegistryError, match="nothing to roll back to; v1 is the first version"):
        registry.rollback("m", "champion")
    with pytest.raises(RegistryError, match="points at no version"):
        registry.rollback("m", "other-alias")


def test_failed_gates_block_promotion_unless_forced_with_a_reason(registry):
    rejected = add(registry, gates="failed")
    with pytest.raises(GateFailure, match="its gates failed"):
        registry.promote("m", rejected, "champion")
    with pytest.raises(RegistryError, match="--force needs --reason"):
        registry.promote("m", rejected, "champion", force=True)
    event = registry.promote("m", rejected, "champion", force=True, reason="hotfix approved by on-call")
    assert event.forced and event.reason == "hotfix approved by on-call"
    assert versions.get(registry.client, "m", rejected).tags["kit.forced"] == "true"


def test_version_without_evidence_or_unknown(registry):
    bare = versions.register(registry.client, "m", "file:///x", None, {}).version
    with pytest.raises(GateFailure, match="no gate evidence"):
        registry.promote("m", bare, "champion")
    with pytest.raises(RegistryError, match="has no version 99"):
        registry.promote("m", "99", "champion")


def test_interrupted_promotions_show_truthfully_and_are_repaired(registry, project):
    v1, v2, v3 = add(registry), add(registry), add(registry)
    registry.promote("m", v1, "champion")
    # crash after tagging, before the alias moved:
    versions.set_tags(registry.client, "m", v2, {"kit.promotion": "pending", "kit.target_alias": "champion",
                                                "kit.promotion.from": "1"})
    done = project.kit("models", "m")
    assert done.returncode == 0 and "INTERRUPTED" in done.stdout
    # crash after the alias moved, before the audit event:
    versions.set_tags(registry.client, "m", v3, {"kit.promotion": "pending", "kit.target_alias": "champion",
                                                "kit.promotion.from": "1"})
    registry.client.set_registered_model_alias("m", "champion", v3)
    repaired = registry.repair("m", "champion")
    assert sorted(repaired) == ["v2: interrupted promotion abandoned (alias never moved)", "v3: promotion completed"]
    assert [(e.from_version, e.to_version) for e in registry.audit.events("m")][-1] == ("1", "3")
    assert registry.rollback("m", "champion").to_version == "1"  # the repaired history is usable


def test_alias_moved_outside_kit_is_reported_not_guessed(registry):
    v1, v2 = add(registry), add(registry)
    registry.promote("m", v1, "champion")
    registry.client.set_registered_model_alias("m", "champion", v2)
    with pytest.raises(RegistryError, match="moved outside kit"):
        registry.rollback("m", "champion")


def test_concurrent_promotions_lose_no_event(project, registry):
    base = add(registry)
    registry.promote("m", base, "champion")
    candidates = [add(registry) for _ in range(4)]
    processes = [project.popen("promote", "m", v, "--alias", "champion") for v in candidates]
    for process in processes:
        out, err = process.communicate(timeout=120)
        assert process.returncode == 0, err
    events = registry.audit.events("m", "champion")
    assert len(events) == 5 and [e.seq for e in events] == [1, 2, 3, 4, 5]
    holder = versions.holder(registry.client, "m", "champion")
    assert holder in candidates and events[-1].to_version == holder
    # every move starts where the previous one ended: the log is a consistent chain
    assert all(b.from_version == a.to_version for a, b in zip(events, events[1:]))


def test_cli_promote_rollback_and_models(project, registry):
    v1, v2 = add(registry), add(registry, gates="failed")
    assert project.kit("promote", "m", v1, "--alias", "champion").returncode == 0
    refused = project.kit("promote", "m", v2, "--alias", "champion")
    assert refused.returncode == 3 and "--force --reason" in refused.stderr
    forced = project.kit("promote", "m", v2, "--alias", "champion", "--force", "--reason", "incident 42")
    assert forced.returncode == 0 and "(FORCED)" in forced.stdout
    listing = project.kit("models", "m").stdout
    assert "(forced)" in listing and "FORCED" in listing and "incident 42" in listing
    back = project.kit("rollback", "m", "--alias", "champion", "--reason", "revert")
    assert back.returncode == 0 and "rolled back v2 -> v1" in back.stdout
    again = project.kit("rollback", "m", "--alias", "champion")
    assert again.returncode == 2 and "nothing to roll back to" in again.stderr
    assert project.kit("models", "nope").returncode == 2
