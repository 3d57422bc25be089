"""Contracts, gates and promotion inside `kit run`, with real GX, kernels and MLflow registry."""

from __future__ import annotations

import json

import pytest

pytestmark = pytest.mark.e2e

MAKE = """
import numpy as np, pandas as pd
rng = np.random.default_rng(0)
frame = pd.DataFrame({"x": rng.random(rows), "c": rng.choice(["a", "b"], rows)})
if corrupt:
    frame.loc[: rows // 5, "x"] = 9.0
frame.to_csv(out_path, index=False)
"""
SCORE = """
import mlflow
mlflow.log_metric("auc", auc)
open(model_path, "wb").write((f"auc={auc};".encode() + b"m" * model_bytes)[:model_bytes])  # another auc: another model
"""
CONTRACT = {"expectations": [
    {"type": "expect_column_values_to_be_between", "kwargs": {"column": "x", "min_value": 0, "max_value": 1}},
    {"type": "expect_column_values_to_be_in_set", "kwargs": {"column": "c", "value_set": ["a", "b"]}},
]}


@pytest.fixture
def scored(project):
    project.notebook("make.ipynb", 'rows = 100\ncorrupt = False\nout_path = "t.csv"', MAKE)
    project.notebook("score.ipynb", 'in_path = "t.csv"\nauc = 0.9\nmodel_bytes = 100\nmodel_path = "m.bin"',
                     "import kit; kit.track()", SCORE)
    (project.root / "data_contracts").mkdir()
    (project.root / "data_contracts" / "t.json").write_text(json.dumps(CONTRACT))
    path = project.pipeline("""
        name: scored
        model: scorer
        steps:
          - name: make
            notebook: notebooks/make.ipynb
            outputs: {out_path: t.csv}
            contracts: {out_path: data_contracts/t.json}
          - name: score
            notebook: notebooks/score.ipynb
            inputs: {in_path: make.out_path}
            outputs: {model_path: m.bin}
            contracts: {in_path: data_contracts/t.json}
        gates:
          - {type: metric_threshold, step: score, metric: auc, min: 0.7}
          - {type: no_regression, step: score, metric: auc, direction: higher_is_better, allowed_change: 0.05}
          - {type: artifact_size, max_bytes: 1000}
        promote:
          alias: champion
          source: {step: score, output: model_path}
    """)
    return project, path


def registry_state(project, model="scorer"):
    from kit.registry import Registry
    from kit.registry import versions

    registry = Registry(project.root, project.client())
    return (versions.all_versions(registry.client, model), versions.aliases(registry.client, model),
            registry.audit.events(model))


def test_passing_run_registers_with_evidence_and_moves_the_alias(scored):
    project, path = scored
    done = project.kit("run", str(path))
    assert done.returncode == 0, done.stderr
    assert "registered scorer v1; champion moved (none) -> v1" in done.stdout
    assert "no model holds 'champion' yet: the first model has no baseline" in done.stdout
    found, aliases, events = registry_state(project)
    assert aliases == {"champion": "1"}
    tags = found[0].tags
    assert tags["kit.gates"] == "passed" and tags["kit.gate.score.auc"].startswith("passed 0.9")
    assert tags["kit.contract.make.out_path"] == "passed" and len(tags["kit.data.score.in_path.sha256"]) == 64
    assert tags["kit.metric.score.auc"] == "0.9" and tags["kit.pipeline_run_id"]
    assert [(e.action, e.from_version, e.to_version) for e in events] == [("promote", None, "1")]
    make_run = next(r for r in project.runs("scored") if r.info.run_name == "make")
    artifacts = {a.path for a in project.client().list_artifacts(make_run.info.run_id, "contracts")}
    assert artifacts == {"contracts/output-out_path.html", "contracts/output-out_path.json"}


def test_corrupted_data_stops_the_pipeline_with_exit_3_and_registers_nothing(scored):
    project, path = scored
    done = project.kit("run", str(path), "-p", "make.corrupt=true")
    assert done.returncode == 3, done.stderr
    assert "step 'make': output data failed its contract after it ran" in done.stderr
    assert "expect_column_values_to_be_between" in done.stderr and "9.0" in done.stderr
    assert "[score] skipped" in done.stderr
    runs = {r.info.run_name: r for r in project.runs("scored")}
    assert "score" not in runs and runs["make"].data.tags["kit.status"] == "contract-failed"
    assert registry_state(project) == ([], {}, [])


def test_a_failed_threshold_registers_a_rejected_version_and_moves_nothing(scored):
    project, path = scored
    assert project.kit("run", str(path)).returncode == 0
    done = project.kit("run", str(path), "-p", "score.auc=0.6")
    assert done.returncode == 3
    assert "0.6 is 0.1 below the minimum 0.7" in done.stderr
    assert "registered scorer v2 as rejected; champion stays at v1" in done.stderr
    found, aliases, events = registry_state(project)
    assert aliases == {"champion": "1"} and found[1].tags["kit.gates"] == "failed"
    assert found[1].tags["kit.promotion"] == "rejected" and len(events) == 1


def test_the_same_files_passing_again_register_nothing_and_move_nothing(scored):
    project, path = scored
    assert project.kit("run", str(path)).returncode == 0
    again = project.kit("run", str(path))  # every step cached: the very same model file
    assert again.returncode == 0, again.stderr
    assert "champion already holds these files (scorer v1): nothing registered, the alias stays" in again.stdout
    found, aliases, events = registry_state(project)
    assert len(found) == 1 and aliases == {"champion": "1"} and len(events) == 1
    parent = [r for r in project.runs("scored") if r.data.tags.get("kit.kind") == "pipeline"][-1]
    assert parent.data.tags["kit.model_version.champion"] == "1" and parent.data.tags["kit.gates"] == "passed"
    assert len(found[0].tags["kit.source_sha256"]) == 64  # what "the same files" is judged by
    other = project.kit("run", str(path), "-p", "score.auc=0.92")  # another model (its bytes differ): registered
    assert other.returncode == 0 and "registered scorer v2; champion moved v1 -> v2" in other.stdout


def test_regression_against_the_champion_is_refused(scored):
    project, path = scored
    assert project.kit("run", str(path), "-p", "score.auc=0.95").returncode == 0
    done = project.kit("run", str(path), "-p", "score.auc=0.85")  # above the threshold, but worse than v1
    assert done.returncode == 3
    assert "0.85 is worse than champion v1's 0.95 by 0.1 (allowed 0.05)" in done.stderr
    assert registry_state(project)[1] == {"champion": "1"}
    assert project.kit("run", str(path), "-p", "score.auc=0.93").returncode == 0  # within the allowed change
    assert registry_state(project)[1] == {"champion": "3"}


def test_size_budget(scored):
    project, path = scored
    done = project.kit("run", str(path), "-p", "score.model_bytes=5000")
    assert done.returncode == 3 and "5000 bytes, 4000 bytes over the budget" in done.stderr


def test_bad_gate_declarations_are_refused_before_running(scored):
    project, path = scored
    text = path.read_text()
    for bad, message in [("type: metric_threshold, step: score, metric: auc, min: 0.7",
                          "unknown gate type 'metric_treshold'"),
                         ("type: metric_threshold, step: score, metric: auc, min: 0.7", "set `min`, `max` or both"),
                         ("type: metric_threshold, step: score, metric: auc, min: 0.7", "refers to unknown step 'scor'")]:
        replacement = {"unknown gate": "type: metric_treshold, step: score, metric: auc, min: 0.7",
                       "set `min`": "type: metric_threshold, step: score, metric: auc",
                       "refers to": "type: metric_threshold, step: scor, metric: auc, min: 0.7"}
        key = next(k for k in replacement if k in message)
        path.write_text(text.replace(bad, replacement[key]))
        done = project.kit("validate", str(path))
        assert done.returncode == 2 and message in done.stderr and "p.yaml:" in done.stderr
    assert not (project.root / "workspaces").exists()


def test_one_run_can_promote_to_several_targets(scored):
    project, path = scored
    text = path.read_text()
    assert "promote:\n  alias: champion\n" in text
    text = text.replace("promote:\n  alias: champion\n  source: {step: score, output: model_path}",
                        "promote:\n  - alias: cloud-champion\n    source: {step: score, output: model_path}\n"
                        "  - alias: edge-champion\n    source: {step: make, output: out_path}")
    text = text.replace("direction: higher_is_better, allowed_change: 0.05}",
                        "direction: higher_is_better, allowed_change: 0.05, alias: edge-champion}")
    path.write_text(text)
    done = project.kit("run", str(path))
    assert done.returncode == 0, done.stderr
    found, aliases, events = registry_state(project)
    assert aliases == {"cloud-champion": "1", "edge-champion": "2"}
    assert [v.tags["kit.target_alias"] for v in found] == ["cloud-champion", "edge-champion"]
    assert found[0].source.endswith("/outputs/model_path") and found[1].source.endswith("/outputs/out_path")
    assert {(e.alias, e.to_version) for e in events} == {("cloud-champion", "1"), ("edge-champion", "2")}
    worse = project.kit("run", str(path), "-p", "score.auc=0.8")  # worse than edge-champion's 0.9 by 0.1
    assert worse.returncode == 3 and "champion v2's 0.9" in worse.stderr
    assert registry_state(project)[1] == {"cloud-champion": "1", "edge-champion": "2"}
