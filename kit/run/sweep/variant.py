"""One variant of a sweep: the pipeline run `kit run` makes (the same `kit.run.run`), with the
variant's parameter values, nested under the sweep run, without gates or promotion (only the
best variant goes through those, after the sweep).

`run_variant` needs nothing but its arguments and the tracking store, so a cluster executor can
call it on another machine.
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass
from typing import Any

from kit.errors import GateFailure, Interrupted, StepFailure
from kit.run.plan import Plan

VARIANT_TAG = "kit.sweep.variant"  # its number in the sweep
SWEEP_TAG = "kit.sweep.run_id"  # on a variant: its sweep run
PARAM_TAG = "kit.sweep.param."  # + STEP.PARAM: the variant's value
STATE_TAG = "kit.sweep.status"  # done | failed | killed
METRIC_TAG = "kit.sweep.metric"  # STEP.METRIC=value (also logged as the metric STEP.METRIC)


@dataclass
class VariantRun:
    """How one variant ended. `result` is the runner's RunResult as far as it got."""

    number: int
    values: dict[str, Any]  # "step.param" -> the value the step ran with (coerced)
    state: str = "pending"  # pending | running | done | failed | killed | not run
    run_id: str | None = None
    metric: float | None = None
    seconds: float = 0.0
    error: str | None = None
    result: Any = None
    plan: Plan | None = None  # the variant's whole plan, gates included (for promoting the best)
    proposal: Any = None

    @property
    def label(self) -> str:
        return f"v{self.number}"


def without_gates(plan: Plan) -> Plan:
    """The plan with no gates and no promotion: a variant's run only runs its steps."""
    pipeline = plan.pipeline
    spec = pipeline.spec.model_copy(update={"gates": [], "promote": None})
    return dataclasses.replace(plan, gates=[], pipeline=dataclasses.replace(pipeline, spec=spec))


def run_variant(plan: Plan, overrides: dict[str, dict[str, Any]], *, sweep_run_id: str, number: int,
                values: dict[str, Any], jobs: int = 1, progress=None, executor=None) -> VariantRun:
    """Run the variant's steps as `kit run` does, its pipeline run nested under `sweep_run_id` and
    tagged with its values. Never raises for a failed step or contract: the VariantRun says so.
    Interrupted (Ctrl-C / SIGTERM reaching this thread) propagates after the runner marked the
    runs KILLED and stopped the kernels. `executor`: a kit.run.remote.ClusterExecutor to run the
    steps on (None: this machine)."""
    from kit.run import run
    from kit.run.tracking import pipeline_run_tags

    variant = VariantRun(number, values, state="running", plan=plan)
    shown = " ".join(f"{name.split('.', 1)[1]}={value}" for name, value in values.items())
    tags = {"mlflow.parentRunId": sweep_run_id, "mlflow.runName": f"v{number} {shown}"[:250],
            SWEEP_TAG: sweep_run_id, VARIANT_TAG: str(number),
            **{f"{PARAM_TAG}{name}": str(value)[:5000] for name, value in values.items()}}
    ended: dict = {}
    started = time.monotonic()
    try:
        with pipeline_run_tags(tags):
            ended["result"] = run(without_gates(plan), jobs=jobs, progress=progress, overrides=overrides,
                                  on_end=lambda result: ended.update(result=result), executor=executor)
        variant.state = "done"
    except (StepFailure, GateFailure) as failure:  # a step crashed or data failed its contract
        variant.state, variant.error = "failed", str(failure)
    except Interrupted as stop:
        variant.state, variant.error = "killed", str(stop)
        raise
    finally:
        variant.seconds = time.monotonic() - started
        variant.result = ended.get("result")
        variant.run_id = getattr(variant.result, "run_id", None)
    return variant


def read_metric(client, variant: VariantRun, step: str, metric: str) -> float | None:
    """The metric the variant's `step` run holds (a cached step run holds its producer's); None
    with the variant marked failed if the step did not log it."""
    step_result = variant.result.steps.get(step) if variant.result else None
    if step_result is None or step_result.run_id is None:
        variant.state, variant.error = "failed", f"step {step!r} did not run"
        return None
    metrics = client.get_run(step_result.run_id).data.metrics
    if metric not in metrics:
        from kit.run.cache import OWN_METRICS  # the runner's bookkeeping, not the notebook's

        logged = ", ".join(sorted(m for m in metrics if m not in OWN_METRICS)) or "none"
        variant.state = "failed"
        variant.error = (f"step {step!r} logged no metric {metric!r} (it logged: {logged}); "
                         f"log it in the notebook with mlflow.log_metric({metric!r}, value)")
        return None
    return metrics[metric]


def record(client, variant: VariantRun, metric_name: str) -> None:
    """The variant's outcome on its run: status tag, the sweep's metric, its values as params."""
    from mlflow.entities import Metric, Param, RunTag

    if variant.run_id is None:
        return
    tags = [RunTag(STATE_TAG, variant.state)]
    if variant.error:
        tags.append(RunTag("kit.sweep.error", variant.error[:4500]))
    if variant.metric is not None:
        tags.append(RunTag(METRIC_TAG, f"{metric_name}={variant.metric!r}"))
    metrics = [Metric(metric_name, variant.metric, int(time.time() * 1000), 0)] if variant.metric is not None else []
    params = [Param(name, str(value)[:6000]) for name, value in variant.values.items()]
    client.log_batch(variant.run_id, metrics=metrics, params=params, tags=tags)
