"""After the steps: evaluate the gates, log the evidence, register the model version and,
if every gate passed, move the target alias (with an audit event)."""

from __future__ import annotations

import html
import json
import re
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from kit.gates import Champion, GateContext, GateResult, evaluate_all


@dataclass
class Outcome:
    model: str
    alias: str | None
    results: list[GateResult]
    version: str | None = None  # the registered version, if the pipeline promotes
    previous: str | None = None  # who held the alias before
    moved: bool = False
    notes: list[str] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return all(r.passed for r in self.results)

    def table(self) -> str:
        from rich.console import Console
        from rich.table import Table
        import io

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
    promote = pipeline.spec.promote
    registry = Registry(pipeline.root, tracker.client)
    model, alias = pipeline.spec.model, promote.alias if promote else None

    metrics_cache: dict[str, dict[str, float]] = {}

    def metrics(step: str) -> dict[str, float]:
        if step not in metrics_cache:
            run_id = result.steps[step].run_id if step in result.steps else None
            metrics_cache[step] = dict(tracker.client.get_run(run_id).data.metrics) if run_id else {}
        return metrics_cache[step]

    champion = None
    if alias:
        holder = versions.holder(tracker.client, model, alias)
        if holder:
            champion = Champion(holder, versions.get(tracker.client, model, holder).metrics)
    candidate = result.steps[promote.source.step].outputs[promote.source.output] if promote else None
    context = GateContext(model_name=model, alias=alias, outputs={n: s.outputs for n, s in result.steps.items()},
                          metrics=metrics, champion=champion, candidate=candidate)
    outcome = Outcome(model, alias, evaluate_all(plan.gates, context), previous=champion.version if champion else None)
    _log_gates(tracker, result.run_id, outcome)

    if promote:
        tags = _evidence_tags(outcome, result, tracker, metrics)
        tags[versions.PROMOTION_TAG] = "candidate" if outcome.passed else "rejected"
        step_run = result.steps[promote.source.step].run_id
        version = versions.register(tracker.client, model, f"runs:/{step_run}/outputs/{promote.source.output}",
                                    step_run, tags, description=f"pipeline {pipeline.name}, run {result.run_id}")
        outcome.version = version.version
        tracker.client.set_tag(result.run_id, "kit.model_version", version.version)
        if outcome.passed:
            registry.promote(model, version.version, alias, reason=f"pipeline {pipeline.name} run {result.run_id}: all gates passed",
                             evidence={"gates": [r.to_dict() for r in outcome.results], "pipeline_run_id": result.run_id})
            outcome.moved = True
            outcome.notes.append(f"registered {model} v{version.version}; {alias} moved "
                                 f"{'v' + outcome.previous if outcome.previous else '(none)'} -> v{version.version}")
        else:
            outcome.notes.append(f"registered {model} v{version.version} as rejected; {alias} stays at "
                                 f"{'v' + outcome.previous if outcome.previous else '(none)'}")
    return outcome


def _evidence_tags(outcome: Outcome, result, tracker, metrics) -> dict[str, str]:
    tags = {"kit.gates": "passed" if outcome.passed else "failed", "kit.pipeline_run_id": result.run_id,
            "kit.target_alias": outcome.alias or ""}
    parent = tracker.client.get_run(result.run_id).data.tags
    for key in ("kit.pipeline", "kit.git.commit", "kit.git.dirty", "kit.lock_sha256"):
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
