"""Gates every target shares: metric thresholds, no regression against the champion,
artifact size budget."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, model_validator

from kit.gates.base import Gate, GateContext, GateResult
from kit.gates.registry import register


KIT_METRICS = ("duration_s", "peak_memory_mb")  # what the runner logs on every step run


def _metric(context: GateContext, step: str, metric: str) -> float | None:
    return context.metrics(step).get(metric)


def _no_metric(context: GateContext, step: str, metric: str) -> str:
    """Why a gate has no figure: name the metrics the step did log, so a typo shows."""
    logged = sorted(m for m in context.metrics(step) if m not in KIT_METRICS)
    return f"step {step!r} logged no metric {metric!r}; it logged: {', '.join(logged) if logged else 'none'}"


@register
class MetricThreshold(Gate):
    """`min` and/or `max` on a metric a step logged."""

    type = "metric_threshold"
    step: str
    metric: str
    min: float | None = None
    max: float | None = None

    @model_validator(mode="after")
    def _bounds(self):
        if self.min is None and self.max is None:
            raise ValueError("set `min`, `max` or both")
        return self

    def default_name(self) -> str:
        return f"{self.step}.{self.metric}"

    def evaluate(self, context: GateContext) -> GateResult:
        threshold = " and ".join(t for t in (self.min is not None and f">= {self.min:g}",
                                             self.max is not None and f"<= {self.max:g}") if t)
        value = _metric(context, self.step, self.metric)
        if value is None:
            return self.result(False, None, threshold, _no_metric(context, self.step, self.metric))
        if self.min is not None and value < self.min:
            return self.result(False, value, threshold, f"{value:.6g} is {self.min - value:.4g} below the minimum {self.min:g}")
        if self.max is not None and value > self.max:
            return self.result(False, value, threshold, f"{value:.6g} is {value - self.max:.4g} above the maximum {self.max:g}")
        return self.result(True, value, threshold, f"{value:.6g} within bounds")


@register
class NoRegression(Gate):
    """The metric may not get worse than the champion's by more than `allowed_change`."""

    type = "no_regression"
    step: str
    metric: str
    direction: Literal["higher_is_better", "lower_is_better"]
    allowed_change: float = Field(default=0.0, ge=0)
    alias: str | None = Field(default=None, description="whose holder is the baseline (default: the first promoted alias)")

    def default_name(self) -> str:
        return f"no_regression.{self.step}.{self.metric}"

    def evaluate(self, context: GateContext) -> GateResult:
        value = _metric(context, self.step, self.metric)
        key = f"{self.step}.{self.metric}"
        if value is None:
            return self.result(False, None, "", _no_metric(context, self.step, self.metric))
        alias = self.alias or context.alias
        champion = context.champions.get(alias) if self.alias else context.champion
        if champion is None:
            return self.result(True, value, "no baseline",
                               f"no model holds {alias!r} yet: the first model has no baseline")
        baseline = champion.metrics.get(key)
        if baseline is None:
            return self.result(True, value, "no baseline",
                               f"champion v{champion.version} has no recorded {key}: nothing to compare")
        higher = self.direction == "higher_is_better"
        limit = baseline - self.allowed_change if higher else baseline + self.allowed_change
        worse_by = (baseline - value) if higher else (value - baseline)
        threshold = f"{'>=' if higher else '<='} {limit:.6g} (champion v{champion.version}: {baseline:.6g})"
        if (value < limit) if higher else (value > limit):
            return self.result(False, value, threshold,
                               f"{value:.6g} is worse than champion v{champion.version}'s {baseline:.6g} by {worse_by:.4g} "
                               f"(allowed {self.allowed_change:g})")
        return self.result(True, value, threshold,
                           f"{value:.6g} vs champion v{champion.version}'s {baseline:.6g} ({-worse_by:+.4g})")


@register
class ArtifactSize(Gate):
    """Bytes of the artifact to be deployed (default: the promoted model) within a budget."""

    type = "artifact_size"
    max_bytes: int = Field(gt=0)
    step: str | None = None
    output: str | None = None

    @model_validator(mode="after")
    def _both_or_neither(self):
        if (self.step is None) != (self.output is None):
            raise ValueError("give both `step` and `output`, or neither to measure the promoted model")
        return self

    def default_name(self) -> str:
        return "artifact_size" if self.step is None else f"artifact_size.{self.step}.{self.output}"

    def evaluate(self, context: GateContext) -> GateResult:
        path = context.candidate if self.step is None else context.outputs.get(self.step, {}).get(self.output)
        threshold = f"<= {self.max_bytes} bytes"
        if path is None or not Path(path).exists():
            return self.result(False, None, threshold, f"nothing to measure: {path or 'no promoted model declared'}")
        size = size_of(Path(path))
        verdict = "within" if size <= self.max_bytes else f"{size - self.max_bytes} bytes over"
        return self.result(size <= self.max_bytes, float(size), threshold, f"{size} bytes, {verdict} the budget")


def size_of(path: Path) -> int:
    if path.is_file():
        return path.stat().st_size
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())
