"""`no_regression` with the champion re-scored on the candidate's rows: real LightGBM models on
synthetic ad logs (kit.examples.ad_logs, ~40k rows), the real registry and `kit run`."""

from __future__ import annotations

import json

import pytest

pytestmark = pytest.mark.e2e

PARAMETERS = """
rows = 40000
rounds = 60
shift = 0.0
mislabel_device = ""
mislabel_ctr = 0.06
booster_path = "model.txt"
valid_path = "valid.parquet"
spec_path = "feature_spec.json"
"""
TRAIN = """
import lightgbm as lgb, mlflow, numpy as np
from sklearn.metrics import log_loss
import kit
from kit.examples import ad_logs
from kit.features import FeatureSpec, categorical, numeric
kit.track()

NUMERIC = ["hour", "bid_floor", "user_ctr_7d", "session_depth", "time_on_site_s"]
CATEGORICAL = ["device", "placement", "country", "age_bucket", "ad_size"]
logs = ad_logs.generate(rows, seed=1, days=14)
later = ad_logs.generate(rows, seed=1, days=14, ctr_shift=shift)  # the same impressions, in a harder/easier period
cut = int(rows * 0.7)
train, valid = logs.iloc[:cut].reset_index(drop=True), later.iloc[cut:].reset_index(drop=True)
if mislabel_device:  # a model that learned nonsense for one device
    on = (train["device"] == mislabel_device).to_numpy()
    train.loc[on, "click"] = (np.random.default_rng(1).random(on.sum()) < mislabel_ctr).astype("int8")
spec = FeatureSpec.of(*[numeric(n, train[n], transform="identity", missing="nan") for n in NUMERIC],
                      *[categorical(n, train[n], output="index") for n in CATEGORICAL])
booster = lgb.train({"objective": "binary", "learning_rate": 0.1, "num_leaves": 15, "verbose": -1, "seed": 0,
                     "num_threads": 1},
                    lgb.Dataset(spec.transform(train[spec.input_names]), train["click"].to_numpy(),
                                categorical_feature=list(range(len(NUMERIC), len(NUMERIC) + len(CATEGORICAL)))),
                    num_boost_round=rounds)
booster.save_model(booster_path)
valid.to_parquet(valid_path, index=False)
spec.save(spec_path)
mlflow.log_metric("log_loss", log_loss(valid["click"], booster.predict(spec.transform(valid[spec.input_names])),
                                       labels=[0, 1]))
"""
PIPELINE = """
name: clicks
model: clicks
steps:
  - name: train
    notebook: notebooks/train.ipynb
    outputs: {booster_path: model.txt, valid_path: valid.parquet, spec_path: feature_spec.json}
    evaluation: {rows: valid_path, label: click, metric: log_loss, feature_spec: spec_path}
gates:
  - {type: no_regression, step: train, metric: log_loss, direction: lower_is_better, GATE}
promote:
  alias: champion
  source: {step: train, output: booster_path}
"""


@pytest.fixture
def clicks(project):
    project.notebook("train.ipynb", PARAMETERS, TRAIN)

    def pipeline(gate: str = "", evaluation: bool = True, allowed_change: float = 0.002):
        text = PIPELINE.replace("GATE", f"allowed_change: {allowed_change}{gate}")
        if not evaluation:
            text = "\n".join(line for line in text.splitlines() if "evaluation:" not in line)
        return str(project.pipeline(text))

    return project, pipeline


def run(project, path, *params):
    args = [a for p in params for a in ("-p", f"train.{p}")]
    return project.kit("run", path, *args)


def evidence(project, gate="no_regression.train.log_loss") -> dict:
    """The gate's entry in gates/gates.json of the latest pipeline run."""
    client = project.client()
    parent = [r for r in project.runs("clicks") if r.data.tags.get("kit.kind") == "pipeline"][-1]
    found = json.loads(open(client.download_artifacts(parent.info.run_id, "gates/gates.json")).read())
    return next(g for g in found if g["name"] == gate)


def holder(project) -> str:
    return str(project.client().get_model_version_by_alias("clicks", "champion").version)


def test_a_better_model_on_a_harder_period_passes_once_the_champion_is_rescored(clicks):
    project, pipeline = clicks
    first = run(project, pipeline(), "rounds=3")  # v1: weak, validated on a normal period
    assert first.returncode == 0, first.stderr
    assert "no model holds 'champion' yet: the first model has no baseline" in first.stdout
    found = evidence(project)
    assert found["passed"] and found["baseline_version"] is None and found["baseline_rescored"] is None
    # Today's comparison: the candidate's log loss on a period with twice the CTR against v1's recorded figure.
    today = run(project, pipeline(evaluation=False), "rounds=60", "shift=0.7")
    assert today.returncode == 3, today.stdout
    assert "compared with the recorded figure, not re-scored" in evidence(project)["detail"]
    assert "worse than champion v1's" in evidence(project)["detail"] and "FAIL" in today.stderr

    done = run(project, pipeline(), "rounds=60", "shift=0.7")
    assert done.returncode == 0, done.stderr
    found = evidence(project)
    assert found["baseline_version"] == "1" and found["passed"]
    assert found["baseline_rescored"] > found["figure"] > found["baseline_recorded"]  # the data moved, not the model
    assert found["difference"] == pytest.approx(found["baseline_rescored"] - found["figure"])
    assert "re-scored on the same 12000 rows" in found["detail"] and "(recorded 0.13" in found["detail"]
    assert holder(project) == "3"


def test_a_worse_model_on_an_easier_period_is_refused(clicks):
    project, pipeline = clicks
    assert run(project, pipeline(), "rounds=60").returncode == 0  # v1: strong
    done = run(project, pipeline(), "rounds=3", "shift=-0.7")  # weak, on a period where the CTR halves
    assert done.returncode == 3, done.stdout
    found = evidence(project)
    assert found["baseline_version"] == "1" and not found["passed"]
    assert found["figure"] < found["baseline_recorded"] and found["difference"] < -0.002
    assert "worse than allowed (0.002)" in found["detail"] and "champion stays at v1" in done.stderr
    assert holder(project) == "1"
    # Today's comparison lets the same model through: its log loss on easier rows beats v1's old figure.
    today = run(project, pipeline(evaluation=False), "rounds=3", "shift=-0.7")
    assert today.returncode == 0, today.stderr
    assert "compared with the recorded figure, not re-scored" in evidence(project)["detail"]


def test_a_model_better_overall_but_worse_on_one_device_is_refused_naming_the_slice(clicks):
    project, pipeline = clicks
    assert run(project, pipeline(), "rounds=3").returncode == 0
    done = run(project, pipeline(", slices: [device, country], min_slice_rows: 1000"),
               "rounds=60", "mislabel_device=tablet")
    assert done.returncode == 3, done.stdout
    found = evidence(project)
    assert found["difference"] > 0  # better overall
    slices = {(s["column"], s["value"]): s for s in found["slices"]}
    assert not slices[("device", "tablet")]["passed"] and slices[("device", "mobile")]["passed"]
    assert slices[("device", "tablet")]["rows"] >= 1000
    assert "regressed on slice device=tablet" in found["detail"] and "device=tablet" in done.stderr
    skipped = [s for s in found["slices"] if "skipped" in s]
    assert skipped and all(s["rows"] < 1000 and s["column"] == "country" for s in skipped)  # listed, not dropped
    assert all({"value", "rows", "candidate", "baseline", "difference", "passed"} <= set(s)
               for s in found["slices"] if "skipped" not in s)
    page = open(project.client().download_artifacts(
        [r for r in project.runs("clicks") if r.data.tags.get("kit.kind") == "pipeline"][-1].info.run_id,
        "gates/gates.html")).read()
    assert "<svg" in page and "device=tablet" in page


def test_with_confidence_a_slightly_better_candidate_is_judged_on_its_interval(clicks):
    project, pipeline = clicks
    assert run(project, pipeline(), "rows=8000", "rounds=15").returncode == 0
    done = run(project, pipeline(", confidence: 0.95, resamples: 2000", allowed_change=0.0), "rows=8000", "rounds=17")
    found = evidence(project)
    assert found["confidence"] == 0.95 and found["resamples"] == 2000
    assert found["difference"] > 0  # slightly better as a point estimate ...
    assert found["ci_low"] < 0 < found["difference"] < found["ci_high"]  # ... within a wide interval
    assert found["passed"] is (found["ci_low"] >= 0) is False  # the lower bound decides
    assert done.returncode == 3 and "95% interval [" in found["detail"]
    version = project.client().get_model_version("clicks", "2")
    assert json.loads(version.tags["kit.gate.no_regression.train.log_loss.ci_low"]) == pytest.approx(found["ci_low"])


def test_bad_evaluation_declarations_are_refused_before_anything_runs(clicks):
    project, pipeline = clicks
    path = pipeline()
    text = open(path).read()
    for bad, message in [("label: click, metric: log_loss,", "unknown metric function 'logloss'"),
                         ("rows: valid_path,", "'valid' is not an input or output parameter of this step")]:
        wrong = bad.replace("log_loss", "logloss").replace("valid_path", "valid")
        open(path, "w").write(text.replace(bad, wrong))
        done = project.kit("validate", path)
        assert done.returncode == 2 and message in done.stderr and "p.yaml:" in done.stderr, done.stderr
    assert not (project.root / "workspaces").exists()
