"""After the steps: evaluate the gates, log the evidence, register the model version and,
if every gate passed, move the target alias (with an audit event)."""

from __future__ import annotations

import html
import json
import re
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from kit.checkpoint import checkpoint
from kit.gates import Champion, GateContext, GateResult, evaluate_all


@dataclass
class Outcome:
    model: str
    results: list[GateResult]
    versions: dict[str, str] = field(default_factory=dict)  # alias -> the version registered for it
    previous: dict[str, str | None] = field(default_factory=dict)  # alias -> who held it before
    notes: list[str] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return all(r.passed for r in self.results)

    def table(self) -> str:
        import io

        from rich.console import Console
        from rich.table import Table

        table = Table(title="gates", title_justify="left")
        for column in ("gate", "result", "figure", "threshold", "detail"):
            table.add_column(column, overflow="fold")
        for r in self.results:
            figure = "" if r.figure is None else f"{r.figure:.6g}"
            table.add_row(r.name, "pass" if r.passed else "FAIL", figure, r.threshold, r.detail)
        console = Console(width=160, record=True, file=io.StringIO())
        console.print(table)
        return "\n".join(line.rstrip() for line in console.export_text().splitlines()) + "\n"

    def report(self) -> str:
        failed = [r for r in self.results if not r.passed]
        lines = [self.table().rstrip()]
        if failed:
            lines.append(f"{len(failed)} gate(s) failed: {', '.join(r.name for r in failed)}")
        lines.extend(self.notes)
        return "\n".join(lines)


def gatekeep(plan, result, tracker) -> Outcome:
    from kit.registry import Registry
    from kit.registry import versions

    pipeline = plan.pipeline
    promotions = pipeline.spec.promotions
    model = pipeline.spec.model
    metrics_cache: dict[str, dict[str, float]] = {}

    def metrics(step: str) -> dict[str, float]:
        if step not in metrics_cache:
            run_id = result.steps[step].run_id if step in result.steps else None
            metrics_cache[step] = dict(tracker.client.get_run(run_id).data.metrics) if run_id else {}
        return metrics_cache[step]

    champions: dict[str, Champion | None] = {}
    for promotion in promotions:
        holder = versions.holder(tracker.client, model, promotion.alias)
        champions[promotion.alias] = (Champion(holder, versions.get(tracker.client, model, holder).metrics)
                                      if holder else None)
    first = promotions[0] if promotions else None
    context = GateContext(
        model_name=model, alias=first.alias if first else None,
        outputs={n: s.outputs for n, s in result.steps.items()}, metrics=metrics,
        champion=champions.get(first.alias) if first else None,
        candidate=result.steps[first.source.step].outputs[first.source.output] if first else None,
        champions=champions)
    outcome = Outcome(model, evaluate_all(plan.gates, context),
                      previous={a: c.version if c else None for a, c in champions.items()})
    _log_gates(tracker, result.run_id, outcome)

    registry = Registry(pipeline.root, tracker.client) if promotions else None
    for promotion in promotions:
        registry.repair(model, promotion.alias)  # finish or abandon a promotion an interrupt cut short
        checkpoint("register", f"{model} for {promotion.alias!r}")
        tags = _evidence_tags(outcome, result, tracker, metrics)
        tags["kit.target_alias"] = promotion.alias
        tags[versions.PROMOTION_TAG] = "candidate" if outcome.passed else "rejected"
        step_run = result.steps[promotion.source.step].run_id
        version = versions.register(tracker.client, model, f"runs:/{step_run}/outputs/{promotion.source.output}",
                                    step_run, tags, description=f"pipeline {pipeline.name}, run {result.run_id}, "
                                                                f"for {promotion.alias}")
        outcome.versions[promotion.alias] = version.version
        tracker.client.set_tag(result.run_id, f"kit.model_version.{promotion.alias}", version.version)
        checkpoint("promote", f"{model} v{version.version} for {promotion.alias!r}")
        before = outcome.previous.get(promotion.alias)
        shown = f"v{before}" if before else "(none)"
        if outcome.passed:
            registry.promote(model, version.version, promotion.alias,
                             reason=f"pipeline {pipeline.name} run {result.run_id}: all gates passed",
                             evidence={"gates": [r.to_dict() for r in outcome.results], "pipeline_run_id": result.run_id})
            outcome.notes.append(f"registered {model} v{version.version}; {promotion.alias} moved {shown} -> v{version.version}")
        else:
            outcome.notes.append(f"registered {model} v{version.version} as rejected; {promotion.alias} stays at {shown}")
    return outcome


def _evidence_tags(outcome: Outcome, result, tracker, metrics) -> dict[str, str]:
    tags = {"kit.gates": "passed" if outcome.passed else "failed", "kit.pipeline_run_id": result.run_id}
    parent = tracker.client.get_run(result.run_id).data.tags
    for key in ("kit.pipeline", "kit.git.commit", "kit.git.dirty", "kit.lock_sha256", "kit.snapshot"):
        if key in parent:
            tags[key] = parent[key]
    for r in outcome.results:
        figure = "" if r.figure is None else f" {r.figure:.6g}"
        tags[f"kit.gate.{_key(r.name)}"] = f"{'passed' if r.passed else 'failed'}{figure} ({r.threshold})"[:4900]
    for name, step in result.steps.items():
        for metric, value in metrics(name).items():
            tags[f"kit.metric.{name}.{_key(metric)}"] = repr(value)
        for direction, param, check in step.checks:
            tags[f"kit.contract.{name}.{param}"] = "passed" if check.success else "failed"
            if check.data_sha256:
                tags[f"kit.data.{name}.{param}.sha256"] = check.data_sha256
    return tags


def _log_gates(tracker, run_id: str, outcome: Outcome) -> None:
    client = tracker.client
    client.set_tag(run_id, "kit.gates", "passed" if outcome.passed else "failed")
    for r in outcome.results:
        client.set_tag(run_id, f"kit.gate.{_key(r.name)}", "passed" if r.passed else "failed")
        if r.figure is not None:
            client.log_metric(run_id, f"gate.{_key(r.name)}", r.figure)
    with tempfile.TemporaryDirectory() as folder:
        report = Path(folder) / "gates.json"
        report.write_text(json.dumps([r.to_dict() for r in outcome.results], indent=2))
        page = Path(folder) / "gates.html"
        rows = "".join(
            f"<tr class={'pass' if r.passed else 'fail'}><td>{html.escape(r.name)}</td><td>{'pass' if r.passed else 'FAIL'}</td>"
            f"<td>{'' if r.figure is None else f'{r.figure:.6g}'}</td><td>{html.escape(r.threshold)}</td>"
            f"<td>{html.escape(r.detail)}</td></tr>" for r in outcome.results)
        page.write_text("<!doctype html><meta charset=utf-8><title>Gates</title><style>body{font-family:sans-serif}"
                        "td,th{border:1px solid #ccc;padding:4px 8px}.fail{background:#fde8e8}.pass{background:#e8f7ea}"
                        f"</style><h1>Gates: {'passed' if outcome.passed else 'FAILED'}</h1><table><tr><th>gate</th>"
                        f"<th>result</th><th>figure</th><th>threshold</th><th>detail</th></tr>{rows}</table>")
        client.log_artifact(run_id, str(report), "gates")
        client.log_artifact(run_id, str(page), "gates")


def _key(name: str) -> str:
    """MLflow keys allow letters, digits, _ - . / and space."""
    return re.sub(r"[^A-Za-z0-9_./ -]", "_", name)
