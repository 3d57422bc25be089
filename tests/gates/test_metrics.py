"""The metric registry and the paired bootstrap, against scikit-learn and explicit resampling."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn import metrics as sk

from kit.errors import SpecError
from kit.gates import metrics
from kit.gates.compare import compare

rng = np.random.default_rng(0)
N = 2000
Y = (rng.random(N) < 0.3).astype(np.int64)
P = np.clip(0.3 + 0.25 * (Y - 0.3) + 0.2 * rng.standard_normal(N), 0.01, 0.99)
Q = np.clip(P + 0.1 * rng.standard_normal(N), 0.01, 0.99)
P[:50] = 0.5  # ties


@pytest.mark.parametrize("name, reference", [
    ("accuracy", lambda y, p: sk.accuracy_score(y, p >= 0.5)),
    ("log_loss", lambda y, p: sk.log_loss(y, p)),
    ("roc_auc", sk.roc_auc_score),
    ("rmse", lambda y, p: np.sqrt(sk.mean_squared_error(y, p))),
    ("mae", sk.mean_absolute_error),
])
def test_builtin_metrics_agree_with_scikit_learn(name, reference):
    assert metrics.get(name)(Y, P) == pytest.approx(reference(Y, P), rel=1e-9)


def test_multiclass_accuracy_and_log_loss():
    y = rng.integers(0, 3, 300)
    p = rng.dirichlet([1, 1, 1], 300)
    assert metrics.get("accuracy")(y, p) == pytest.approx(sk.accuracy_score(y, p.argmax(axis=1)))
    assert metrics.get("log_loss")(y, p) == pytest.approx(sk.log_loss(y, p, labels=[0, 1, 2]))


@pytest.mark.parametrize("name", ["roc_auc", "log_loss", "rmse"])
def test_a_resample_weight_is_the_same_as_repeating_the_rows(name):
    metric = metrics.get(name)
    drawn = rng.integers(0, N, N)
    counts = np.bincount(drawn, minlength=N)[None, :].astype(float)
    assert metric.resampled(Y, P, counts)[0] == pytest.approx(metric(Y[drawn], P[drawn]), rel=1e-9)


def test_your_own_metric_registers_by_name_and_unknown_names_are_refused():
    metrics.register(metrics.Metric("brier", per_row=lambda y, p: (p - y) ** 2))
    assert metrics.get("brier")(Y, P) == pytest.approx(sk.brier_score_loss(Y, P))
    with pytest.raises(SpecError, match=r"unknown metric function 'aucc' \(known: accuracy, brier"):
        metrics.get("aucc")
    with pytest.raises(ValueError, match="exactly one of"):
        metrics.Metric("bad")


@pytest.mark.parametrize("name, higher", [("log_loss", False), ("roc_auc", True), ("rmse", False)])
def test_paired_bootstrap_interval_holds_the_difference_oriented_so_positive_is_better(name, higher):
    found = compare(metrics.get(name), Y, P, Q, higher, confidence=0.9, resamples=400)
    sign = 1 if higher else -1
    assert found.difference == pytest.approx(sign * (found.candidate - found.baseline))
    assert found.difference > 0  # Q is P with noise: P is better by every metric
    assert found.ci_low < found.difference < found.ci_high
    again = compare(metrics.get(name), Y, P, Q, higher, confidence=0.9, resamples=400)
    assert (again.ci_low, again.ci_high) == (found.ci_low, found.ci_high)  # seeded
    same = compare(metrics.get(name), Y, P, P, higher, confidence=0.9, resamples=400)
    assert same.difference == same.ci_low == same.ci_high == 0  # paired: the same model never differs


def test_no_confidence_keeps_the_point_comparison():
    found = compare(metrics.get("log_loss"), Y, P, Q, False)
    assert found.ci_low is None and found.ci_high is None
