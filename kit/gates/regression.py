"""`no_regression`: the candidate may not be worse than the champion (the alias holder).

When the evaluation step declares its rows and metric function (`evaluation:` in the pipeline
file), the champion is loaded from the registry and re-scored on the candidate's rows, through
its own preprocessing, and both are measured by the same function: the difference comes with a
paired bootstrap interval (`confidence`) and per-slice comparisons (`slices`). Without that
declaration the gate compares with the figure the champion recorded when it was registered,
and says so.
"""

from __future__ import annotations

import math
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Literal

import numpy as np
from pydantic import Field

from kit.gates.base import Champion, Evaluation, Gate, GateContext, GateResult, no_metric_detail

NOT_RESCORED = "compared with the recorded figure, not re-scored"


class NoRegression(Gate):
    """The metric may not get worse than the champion's by more than `allowed_change`."""

    type = "no_regression"
    reuse = "pure"  # re-scoring the same champion on the same rows gives the same figures
    step: str
    metric: str
    direction: Literal["higher_is_better", "lower_is_better"]
    allowed_change: float = Field(default=0.0, ge=0)
    alias: str | None = Field(default=None, description="whose holder is the baseline (default: the first promoted alias)")
    confidence: float | None = Field(default=None, gt=0, lt=1, description="judge the lower bound of a paired "
                                                                           "bootstrap interval, not the point estimate")
    resamples: int = Field(default=1000, ge=10, description="bootstrap resamples (with `confidence`)")
    seed: int = 0
    slices: list[str] = Field(default_factory=list, description="columns of the evaluation rows to compare per value")
    min_slice_rows: int = Field(default=1000, ge=1, description="smaller slices are listed as skipped")

    def default_name(self) -> str:
        return f"no_regression.{self.step}.{self.metric}"

    def judges_holder(self, alias: str, default_alias: str | None) -> bool:
        return (self.alias or default_alias) == alias

    def reuse_parts(self, context: GateContext) -> dict[str, Any] | None:
        """The holder it compares with (registry state), both models' files and the evaluation
        rows; None when there is nothing to re-score (then the gate is cheap)."""
        alias = self.alias or context.alias
        champion = context.champions.get(alias) if self.alias else context.champion
        evaluation, candidate = context.evaluations.get(self.step), context.candidates.get(alias)
        if champion is None or evaluation is None or candidate is None:
            return None

        def content(path) -> str | None:
            return context.content_hash(path) if path is not None else None

        return {"champion": champion.identity or champion.version,
                "recorded": context.metrics(self.step).get(self.metric),
                "candidate": [content(candidate.path), content(candidate.feature_spec), candidate.labels],
                "evaluation": [content(evaluation.rows), evaluation.label, evaluation.metric,
                               content(evaluation.feature_spec), evaluation.labels]}

    @property
    def higher_is_better(self) -> bool:
        return self.direction == "higher_is_better"

    def evaluate(self, context: GateContext) -> GateResult:
        alias = self.alias or context.alias
        champion = context.champions.get(alias) if self.alias else context.champion
        recorded = context.metrics(self.step).get(self.metric)
        evidence = {"baseline_version": None, "baseline_recorded": None, "baseline_rescored": None,
                    "difference": None, "ci_low": None, "ci_high": None, "confidence": self.confidence,
                    "resamples": self.resamples if self.confidence is not None else None,
                    "allowed_change": self.allowed_change, "slices": []}
        if recorded is None:
            return self._result(False, None, "", no_metric_detail(context, self.step, self.metric), evidence)
        if champion is None:
            return self._result(True, recorded, "no baseline",
                                f"no model holds {alias!r} yet: the first model has no baseline", evidence)
        baseline = champion.metrics.get(f"{self.step}.{self.metric}")
        evidence.update(baseline_version=champion.version, baseline_recorded=baseline)
        evaluation = context.evaluations.get(self.step)
        candidate = context.candidates.get(alias)
        if evaluation is None:
            return self._recorded(recorded, champion, baseline, evidence,
                                  f"step {self.step!r} declares no `evaluation:` rows")
        if candidate is None:
            return self._recorded(recorded, champion, baseline, evidence, f"nothing is promoted to {alias!r}")
        return self._rescored(context, evaluation, candidate, champion, baseline, recorded, evidence)

    def _result(self, passed: bool, figure, threshold: str, detail: str, evidence: dict[str, Any]) -> GateResult:
        return GateResult(self.label, self.type, passed, figure, threshold, detail, evidence)

    def _recorded(self, value, champion: Champion, baseline, evidence, why: str) -> GateResult:
        """Today's comparison: the candidate's logged figure against the champion's recorded one."""
        key = f"{self.step}.{self.metric}"
        note = f"{NOT_RESCORED} ({why})"
        if baseline is None:
            return self._result(True, value, "no baseline",
                                f"champion v{champion.version} has no recorded {key}: nothing to compare; {note}", evidence)
        sign = 1.0 if self.higher_is_better else -1.0
        difference = sign * (value - baseline)
        evidence["difference"] = difference
        limit = baseline - self.allowed_change if self.higher_is_better else baseline + self.allowed_change
        threshold = f"{'>=' if self.higher_is_better else '<='} {limit:.6g} (champion v{champion.version}: {baseline:.6g})"
        if difference < -self.allowed_change:
            return self._result(False, value, threshold,
                                f"{value:.6g} is worse than champion v{champion.version}'s {baseline:.6g} by "
                                f"{-difference:.4g} (allowed {self.allowed_change:g}); {note}", evidence)
        return self._result(True, value, threshold, f"{value:.6g} vs champion v{champion.version}'s {baseline:.6g} "
                                                    f"({difference:+.4g}); {note}", evidence)

    def _rescored(self, context: GateContext, evaluation: Evaluation, candidate, champion: Champion, baseline,
                  recorded, evidence) -> GateResult:
        from kit.tables import read_table
        from kit.gates import metrics, scorers
        from kit.gates.compare import compare

        metric = metrics.get(evaluation.metric)
        rows = read_table(evaluation.rows)
        missing = [c for c in (evaluation.label, *self.slices) if c not in rows.columns]
        if missing:
            return self._result(False, None, "", f"the evaluation rows {evaluation.rows.name} have no column "
                                                  f"{missing[0]!r} (columns: {', '.join(map(str, rows.columns))})", evidence)
        candidate = scorers.ModelFiles(candidate.path, candidate.feature_spec or evaluation.feature_spec,
                                       candidate.labels or evaluation.labels, candidate.uri)
        # Scored side by side: an edge bundle is a Node process, a SavedModel releases the GIL.
        with ThreadPoolExecutor(2) as pool:
            champion_job = pool.submit(lambda: scorers.predict(champion.files(), rows))
            candidate_job = pool.submit(scorers.predict, candidate, rows)
            try:
                theirs = champion_job.result()
            except scorers.ScoringError as exc:
                candidate_job.result()
                return self._recorded(recorded, champion, baseline, evidence,
                                      f"champion v{champion.version} could not be re-scored: {exc}")
            ours = candidate_job.result()
        y, mine, other = _aligned(rows[evaluation.label], ours, theirs)

        def judge(comparison) -> bool:
            figure = comparison.difference if self.confidence is None else comparison.ci_low
            return bool(figure >= -self.allowed_change)

        # The overall comparison and each slice's are independent (each seeds its own draws), so
        # they run on two threads: numpy's draws and gathers release the GIL (1000 resamples of
        # ~200k rows plus three slices: 2.6 s -> 1.5 s on 2 cores).
        parts = [(column, value, index) for column in self.slices for value, index in _groups(rows[column])]
        judged = [index for _, _, index in parts if len(index) >= self.min_slice_rows]

        def compared(index):
            rows_at = slice(None) if index is None else index
            return compare(metric, y[rows_at], mine[rows_at], other[rows_at], self.higher_is_better, self.confidence,
                           self.resamples, self.seed)

        with ThreadPoolExecutor(2) as pool:
            overall, *per_slice = pool.map(compared, [None, *judged])
        slice_results = iter(per_slice)  # in the order of `parts`, the too-small ones left out
        evidence.update(baseline_rescored=overall.baseline, difference=overall.difference,
                        ci_low=overall.ci_low, ci_high=overall.ci_high, candidate_recorded=recorded, rows=overall.rows)
        passed = judge(overall)
        failed_slices = []
        for column, value, index in parts:
            entry = {"column": column, "value": value, "rows": len(index)}
            if len(index) < self.min_slice_rows:
                evidence["slices"].append({**entry, "skipped": f"fewer than {self.min_slice_rows} rows"})
                continue
            part = next(slice_results)
            if not all(math.isfinite(x) for x in (part.candidate, part.baseline)):
                evidence["slices"].append({**entry, "skipped": f"{metric.name} is undefined on this slice"})
                continue
            ok = judge(part)
            evidence["slices"].append({**entry, "candidate": part.candidate, "baseline": part.baseline,
                                       "difference": part.difference, "ci_low": part.ci_low,
                                       "ci_high": part.ci_high, "passed": ok})
            if not ok:
                failed_slices.append(f"{column}={value} ({part.difference:+.4g})")
        return self._result(passed and not failed_slices, overall.candidate, self._threshold(champion),
                            self._detail(metric.name, overall, champion, baseline, passed, failed_slices, evidence), evidence)

    def _threshold(self, champion: Champion) -> str:
        bound = "difference" if self.confidence is None else f"lower {self.confidence:.0%} bound of the difference"
        return f"{bound} >= {-self.allowed_change:g} vs champion v{champion.version}, re-scored"

    def _detail(self, name: str, overall, champion: Champion, baseline, passed: bool, failed_slices: list[str],
                evidence) -> str:
        recorded = f"{baseline:.6g}" if baseline is not None else "none"
        text = (f"{name} {overall.candidate:.6g} vs champion v{champion.version} re-scored on the same {overall.rows} rows "
                f"{overall.baseline:.6g} (recorded {recorded}): difference {overall.difference:+.4g}")
        if overall.ci_low is not None:
            text += f", {self.confidence:.0%} interval [{overall.ci_low:+.4g}, {overall.ci_high:+.4g}]"
        text += " (positive is better)"
        if not passed:
            text += f"; worse than allowed ({self.allowed_change:g})"
        if failed_slices:
            text += f"; regressed on slice {', '.join(failed_slices)} (allowed {self.allowed_change:g})"
        skipped = sum(1 for s in evidence["slices"] if "skipped" in s)
        if skipped:
            text += f"; {skipped} slice(s) skipped as too small to judge"
        return text


def _groups(column) -> list[tuple[Any, np.ndarray]]:
    import pandas as pd

    series = pd.Series(column).reset_index(drop=True)
    groups = series.groupby(series, observed=True, sort=True, dropna=False).indices
    return [(_plain(value), index) for value, index in groups.items()]


def _plain(value: Any) -> Any:
    value = value.item() if hasattr(value, "item") else value
    return value if isinstance(value, (int, float, str, bool)) or value is None else str(value)


def _aligned(labels, ours, theirs) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The label as output indexes, and both models' outputs in the candidate's class order."""
    from kit.gates.scorers import ScoringError

    names = ours.labels or theirs.labels
    values = labels.to_numpy()
    other = theirs.values
    if ours.values.shape[1:] != other.shape[1:]:
        raise ScoringError(f"the candidate gives {ours.values.shape[1:] or 'one'} outputs per row, the champion "
                           f"{other.shape[1:] or 'one'}: they do not predict the same thing")
    if ours.labels and theirs.labels and list(ours.labels) != list(theirs.labels) and other.ndim == 2:
        if sorted(map(str, ours.labels)) != sorted(map(str, theirs.labels)):
            raise ScoringError(f"the candidate predicts classes {ours.labels}, the champion {theirs.labels}")
        other = other[:, [list(map(str, theirs.labels)).index(str(label)) for label in ours.labels]]
    if names and set(map(str, set(values))) <= set(map(str, names)):
        import pandas as pd

        position = {str(label): i for i, label in enumerate(names)}
        y = pd.Series(values).astype(str).map(position).to_numpy(dtype=np.int64)
    elif np.issubdtype(values.dtype, np.number):
        y = values.astype(np.int64) if ours.values.ndim == 2 or names else values.astype(np.float64)
    else:
        raise ScoringError("the label column holds names the models do not report; declare the class names "
                           "in output order as `labels:` in the step's `evaluation:`")
    return y, ours.values, other
