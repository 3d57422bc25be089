"""Gates every target shares: metric thresholds and the artifact size budget (no regression
against the champion lives in kit.gates.regression)."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, model_validator

from kit.files import folder_size
from kit.gates.base import Gate, GateContext, GateResult, no_metric_detail



def _metric(context: GateContext, step: str, metric: str) -> float | None:
    return context.metrics(step).get(metric)


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
            return self.result(False, None, threshold, no_metric_detail(context, self.step, self.metric))
        if self.min is not None and value < self.min:
            return self.result(False, value, threshold, f"{value:.6g} is {self.min - value:.4g} below the minimum {self.min:g}")
        if self.max is not None and value > self.max:
            return self.result(False, value, threshold, f"{value:.6g} is {value - self.max:.4g} above the maximum {self.max:g}")
        return self.result(True, value, threshold, f"{value:.6g} within bounds")


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
        size = folder_size(path)
        verdict = "within" if size <= self.max_bytes else f"{size - self.max_bytes} bytes over"
        return self.result(size <= self.max_bytes, float(size), threshold, f"{size} bytes, {verdict} the budget")
