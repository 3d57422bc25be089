"""Metric functions by name, for gates that score models themselves (`no_regression` re-scoring).

The same shape as the gate registry: built-ins here, more through the `kit.metrics` entry point
group or `register` at start-up. A metric is computed on resample weights as well as on the plain
rows, so the bootstrap needs no Python loop per resample:

- `per_row`: the metric is `finish(weighted mean of per_row(y, p))` (accuracy, log loss, MAE;
  RMSE with `finish=sqrt`). Most metrics you would add are of this kind:

      from kit.gates import metrics
      metrics.register(metrics.Metric("brier", per_row=lambda y, p: (p - y) ** 2))

- `weighted`: anything else (ROC AUC): `weighted(y, p, counts)` with `counts` of shape
  (resamples, rows) returns one value per resample.

`y` is the label encoded as the model's output index (0/1 for binary); `p` is what the scorer
returned: P(positive) of shape (n,) for binary, (n, classes) probabilities, or (n,) values.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

from kit.errors import SpecError
from kit.plugins import Plugins

EPSILON = 1e-15  # probabilities are clipped to [eps, 1 - eps] for log loss, as scikit-learn does


@dataclass(frozen=True)
class Metric:
    name: str
    per_row: Callable[[np.ndarray, np.ndarray], np.ndarray] | None = None
    finish: Callable[[np.ndarray], np.ndarray] | None = None
    weighted: Callable[[np.ndarray, np.ndarray, np.ndarray], np.ndarray] | None = None

    def __post_init__(self):
        if (self.per_row is None) == (self.weighted is None):
            raise ValueError(f"metric {self.name!r}: give exactly one of `per_row` or `weighted`")

    def __call__(self, y: np.ndarray, p: np.ndarray) -> float:
        return float(self.resampled(y, p, np.ones((1, len(y))))[0])

    def resampled(self, y: np.ndarray, p: np.ndarray, counts: np.ndarray) -> np.ndarray:
        """One value per row of `counts` (how often each row is drawn in that resample)."""
        if self.weighted is not None:
            return np.asarray(self.weighted(y, p, counts), dtype=np.float64)
        return self.from_rows(self.per_row(y, p), counts)

    def from_rows(self, values: np.ndarray, counts: np.ndarray) -> np.ndarray:
        means = counts @ np.asarray(values, dtype=np.float64) / counts.sum(axis=1)
        return self.finish(means) if self.finish else means


_METRICS: Plugins[Metric] = Plugins("kit.metrics", name_of=lambda metric: metric.name)
register = _METRICS.register  # add a Metric
known = _METRICS.known  # name -> Metric


def get(name: str) -> Metric:
    found = known().get(name)
    if found is None:
        raise SpecError(f"unknown metric function {name!r} (known: {', '.join(sorted(known()))}; "
                        "register your own with kit.gates.metrics.register or the `kit.metrics` entry point group)")
    return found


def _predicted_class(p: np.ndarray) -> np.ndarray:
    return p.argmax(axis=1) if p.ndim == 2 else (p >= 0.5).astype(np.int64)


def _log_loss_rows(y: np.ndarray, p: np.ndarray) -> np.ndarray:
    if p.ndim == 2:
        p = p / p.sum(axis=1, keepdims=True)  # float32 softmax rows may miss 1.0 by rounding
        return -np.log(np.clip(p[np.arange(len(y)), y], EPSILON, 1.0))
    p = np.clip(p, EPSILON, 1 - EPSILON)
    return -(y * np.log(p) + (1 - y) * np.log1p(-p))


def _roc_auc_weighted(y: np.ndarray, p: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """Weighted Mann-Whitney AUC (ties count half), for every resample at once."""
    if p.ndim == 2:
        p = p[:, -1]
    order = np.argsort(p, kind="stable")
    sorted_p, sorted_y = p[order], y[order].astype(np.float64)
    weights = counts[:, order]
    starts = np.flatnonzero(np.r_[True, sorted_p[1:] != sorted_p[:-1]])  # groups of tied scores
    positive = np.add.reduceat(weights * sorted_y, starts, axis=1)
    negative = np.add.reduceat(weights * (1 - sorted_y), starts, axis=1)
    below = np.cumsum(negative, axis=1) - negative
    pairs = positive.sum(axis=1) * negative.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return (positive * (below + 0.5 * negative)).sum(axis=1) / pairs


register(Metric("accuracy", per_row=lambda y, p: (_predicted_class(p) == y).astype(np.float64)))
register(Metric("log_loss", per_row=_log_loss_rows))
register(Metric("roc_auc", weighted=_roc_auc_weighted))
register(Metric("rmse", per_row=lambda y, p: (np.ravel(p) - y) ** 2, finish=np.sqrt))
register(Metric("mae", per_row=lambda y, p: np.abs(np.ravel(p) - y)))
