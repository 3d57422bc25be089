"""What `kit run` tells a user: a gate's missing metric names the ones logged, the summary
counts steps in plain words, progress numbers cells as the user's notebook does."""

from __future__ import annotations

import re

import pytest

from kit.gates import GateContext
from kit.gates.generic import MetricThreshold
from kit.gates.regression import NoRegression

LOGGED = {"accuracy": 0.9, "log_loss": 0.3, "roc_auc": 0.95, "duration_s": 1.0, "peak_memory_mb": 100.0}


def context(metrics: dict) -> GateContext:
    return GateContext(model_name="m", alias=None, outputs={}, metrics=lambda step: metrics, champion=None,
                       candidate=None)


@pytest.mark.parametrize("gate", [
    MetricThreshold(step="evaluate", metric="auc", min=0.8),
    NoRegression(step="evaluate", metric="auc", direction="higher_is_better"),
])
def test_a_gate_naming_a_metric_the_step_did_not_log_lists_the_ones_it_did(gate):
    result = gate.evaluate(context(LOGGED))
    assert not result.passed
    assert result.detail == "step 'evaluate' logged no metric 'auc'; it logged: accuracy, log_loss, roc_auc"
    assert gate.evaluate(context({})).detail.endswith("it logged: none")


@pytest.mark.e2e
def test_run_messages_metric_listing_summary_and_cell_numbers(project):
    project.notebook("evaluate.ipynb", "scale = 1.0", "import mlflow",
                     "mlflow.log_metric('accuracy', 0.9 * scale)",
                     "mlflow.log_metric('log_loss', 0.3)\nmlflow.log_metric('roc_auc', 0.95)")
    text = """
        name: msgs
        model: msgs-model
        steps:
          - {name: evaluate, notebook: notebooks/evaluate.ipynb, parameters: {scale: 1.0}}
        gates:
          - {type: metric_threshold, step: evaluate, metric: METRIC, min: 0.5}
    """
    wrong = project.kit("run", str(project.pipeline(text.replace("METRIC", "auc"), name="wrong.yaml")))
    assert wrong.returncode == 3, wrong.stderr
    assert "step 'evaluate' logged no metric 'auc'; it logged: accuracy, log_loss, roc_auc" in wrong.stderr
    # four cells in the user's notebook, numbered 1-4; papermill's injected cell is not one of them
    assert re.findall(r"\[evaluate\] cell (\d+)/(\d+)", wrong.stderr) == [("1", "4"), ("2", "4"), ("3", "4"), ("4", "4")]

    right = project.kit("run", str(project.pipeline(text.replace("METRIC", "roc_auc"), name="right.yaml")))
    assert right.returncode == 0, right.stderr
    assert "pipeline msgs: 1 step done" in right.stdout
