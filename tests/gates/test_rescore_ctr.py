"""The CTR example's champions re-scored where they run: the edge bundle's JSON trees in Node and
the cloud MLflow model by its models:/ URI. pipelines/ctr.yaml without its latency gates (they
measure the machine, not the comparison), at 20k rows, run twice."""

from __future__ import annotations

import json

import pytest
import yaml

from conftest import REPO, Project

pytestmark = pytest.mark.e2e


def test_both_ctr_champions_are_rescored_on_the_next_runs_rows(tmp_path):
    project = Project.linked(tmp_path)
    spec = yaml.safe_load((REPO / "pipelines" / "ctr.yaml").read_text())
    spec["gates"] = [g for g in spec["gates"] if g["type"] not in ("edge_latency", "cloud_latency")]
    path = tmp_path / "scratch" / "ctr.yaml"
    path.parent.mkdir()
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    for attempt in range(2):
        done = project.kit("run", str(path), "-p", "logs.rows=20000", timeout=900)
        assert done.returncode == 0, done.stderr
    assert "edge-champion moved v1 -> v3" in done.stdout and "cloud-champion moved v2 -> v4" in done.stdout
    parent = [r for r in project.runs("ctr") if r.data.tags.get("kit.kind") == "pipeline"][-1]
    gates = json.loads(open(project.client().download_artifacts(parent.info.run_id, "gates/gates.json")).read())
    for name, version in (("no_regression.evaluate.log_loss", "1"), ("no_regression.cloud", "2")):
        found = next(g for g in gates if g["name"] == name)
        assert found["passed"] and found["baseline_version"] == version, found
        # the same seed: the same validation rows and the same model, so re-scored = recorded
        assert found["baseline_rescored"] == pytest.approx(found["baseline_recorded"], rel=1e-6), found["detail"]
        assert found["difference"] == pytest.approx(0, abs=1e-9)
    edge = next(g for g in gates if g["name"] == "no_regression.evaluate.log_loss")
    assert edge["confidence"] == 0.95 and edge["resamples"] == 1000 and edge["ci_low"] <= 0 <= edge["ci_high"]
    assert {s["value"] for s in edge["slices"]} == {"mobile", "desktop", "tablet"}
