"""After the steps: evaluate the gates, log the evidence, register the model version and,
if every gate passed, move the target alias (with an audit event)."""

from __future__ import annotations

import json
import re
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from kit.checkpoint import checkpoint
from kit.errors import GateFailure
from kit.files import sha256_tree
from kit.gates import Champion, GateContext, GateResult, evaluate_all
from kit.report import Image, Section, Table, table_text, write_page


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

    def table(self) -> Table:
        return Table(("gate", "result", "figure", "threshold", "detail"),
                     [(r.name, "pass" if r.passed else "FAIL", "" if r.figure is None else f"{r.figure:.6g}",
                       r.threshold, r.detail) for r in self.results],
                     title="gates", row_classes=["pass" if r.passed else "fail" for r in self.results])

    def report(self) -> str:
        failed = [r for r in self.results if not r.passed]
        lines = [table_text(self.table()).rstrip()]
        if failed:
            lines.append(f"{len(failed)} gate(s) failed: {', '.join(r.name for r in failed)}")
        lines.extend(self.notes)
        return "\n".join(lines)


def gatekeep(plan, result, tracker, memo=None, content_hash=sha256_tree) -> Outcome:
    """`memo`: earlier passed gate results to reuse (kit.gates.reuse.Memo); `content_hash`: the
    runner's memo of the content hashes it already took."""
    from kit.registry import Registry
    from kit.registry import versions
    from kit.registry.errors import HolderChanged

    pipeline = plan.pipeline
    promotions = pipeline.spec.promotions
    model = pipeline.spec.model
    metrics_cache: dict[str, dict[str, float]] = {}

    def metrics(step: str) -> dict[str, float]:
        if step not in metrics_cache:
            run_id = result.steps[step].run_id if step in result.steps else None
            metrics_cache[step] = dict(tracker.client.get_run(run_id).data.metrics) if run_id else {}
        return metrics_cache[step]

    with tempfile.TemporaryDirectory(prefix="kit-champions-") as downloads:
        champions = {p.alias: _champion(tracker, model, versions.holder(tracker.client, model, p.alias), Path(downloads))
                     for p in promotions}
        evaluations = _evaluations(pipeline, result)
        first = promotions[0] if promotions else None
        context = GateContext(
            model_name=model, alias=first.alias if first else None,
            outputs={n: s.outputs for n, s in result.steps.items()}, metrics=metrics,
            champion=champions.get(first.alias) if first else None,
            candidate=_source_path(result, first) if first else None,
            champions=champions,
            evaluations={step: e for step, (e, _) in evaluations.items()},
            candidates={p.alias: _candidate(result, p) for p in promotions},
            memo=memo, content_hash=content_hash)
        outcome = Outcome(model, evaluate_all(plan.gates, context),
                          previous={a: c.version if c else None for a, c in champions.items()})
        _log_gates(tracker, result.run_id, outcome)

        registry = Registry(pipeline.root, tracker.client) if promotions else None
        for promotion in promotions:
            alias = promotion.alias
            registry.repair(model, alias)  # finish or abandon a promotion an interrupt cut short
            checkpoint("register", f"{model} for {alias!r}")
            content = {**_evaluation_tags(evaluations, context.content_hash),
                       SOURCE_SHA_TAG: context.content_hash(_source_path(result, promotion))}
            holder = champions.get(alias)
            if outcome.passed and holder is not None and holder.identity == _content_identity(content):
                # The same files passed again (only evaluation changed, or a deterministic re-run): a
                # new version would be a duplicate, a move a needless redeploy, a rollback a no-op.
                # (Failing, they are still registered as rejected: the evidence that the holder failed.)
                outcome.notes.append(f"{alias} already holds these files ({model} v{holder.version}): nothing "
                                     "registered, the alias stays")
                outcome.versions[alias] = holder.version
                tracker.client.set_tag(result.run_id, f"kit.model_version.{alias}", holder.version)
                continue
            tags = {**_evidence_tags(outcome, result, tracker, metrics), **content, "kit.target_alias": alias,
                    versions.PROMOTION_TAG: "candidate" if outcome.passed else "rejected"}
            step_run = result.steps[promotion.source.step].run_id
            version = versions.register(tracker.client, model, f"runs:/{step_run}/outputs/{promotion.source.output}",
                                        step_run, tags, description=f"pipeline {pipeline.name}, run {result.run_id}, "
                                                                    f"for {alias}")
            outcome.versions[alias] = version.version
            tracker.client.set_tag(result.run_id, f"kit.model_version.{alias}", version.version)
            checkpoint("promote", f"{model} v{version.version} for {alias!r}")
            # Compare-and-set: the alias moves only if it still points at the version the gates judged
            # against; if another promotion got there first, the gates that depend on the holder are
            # judged again against the new one, and the candidate is moved or refused on that.
            for _ in range(MAX_REJUDGE + 1):
                baseline = outcome.previous.get(alias)
                if not outcome.passed:
                    outcome.notes.append(f"registered {model} v{version.version} as rejected; {alias} stays at "
                                         f"{_shown(baseline)}")
                    break
                try:
                    event = registry.promote(model, version.version, alias,
                                             reason=f"pipeline {pipeline.name} run {result.run_id}: all gates passed",
                                             evidence={"gates": [r.to_dict() for r in outcome.results],
                                                       "pipeline_run_id": result.run_id},
                                             expected_holder=baseline, repaired=True)
                except HolderChanged as changed:
                    outcome.notes.append(f"{alias} moved {_shown(baseline)} -> {_shown(changed.holder)} while this run "
                                         f"was judged: judged again against {_shown(changed.holder)}")
                    champions[alias] = _champion(tracker, model, changed.holder, Path(downloads))
                    context.champion = champions.get(first.alias)
                    outcome.previous[alias] = changed.holder
                    _rejudge(plan.gates, context, outcome, alias)
                    _log_gates(tracker, result.run_id, outcome)
                    versions.set_tags(tracker.client, model, version.version, {
                        **{k: v for k, v in _evidence_tags(outcome, result, tracker, metrics).items()
                           if k.startswith("kit.gate")},
                        versions.PROMOTION_TAG: "candidate" if outcome.passed else "rejected"})
                    continue
                outcome.previous[alias] = event.from_version
                outcome.notes.append(f"registered {model} v{version.version}; {alias} moved "
                                     f"{_shown(event.from_version)} -> v{version.version}")
                break
            else:
                raise GateFailure(f"{alias} kept moving while {model} v{version.version} was judged "
                                  f"({MAX_REJUDGE} times): run the pipeline again")
    return outcome


MAX_REJUDGE = 5  # holder changes tolerated while one candidate is being promoted


def _shown(version: str | None) -> str:
    return f"v{version}" if version else "(none)"


def _rejudge(gates, context: GateContext, outcome: Outcome, alias: str) -> None:
    """Evaluate again the gates whose result depends on who holds `alias`."""
    for index, gate in enumerate(gates):
        if gate.judges_holder(alias, context.alias):
            outcome.results[index] = evaluate_all([gate], context)[0]


def _champion(tracker, model: str, holder: str | None, downloads: Path) -> Champion | None:
    """The alias holder, with its registered files fetched only if a gate re-scores it."""
    from kit.registry import versions

    if holder is None:
        return None
    found = versions.get(tracker.client, model, holder)
    return Champion(holder, found.metrics, files=lambda: _download(tracker, model, found, downloads / f"v{holder}"),
                    identity=_identity(found))


def _identity(version) -> list:
    """What re-scoring the version depends on: the content hashes recorded when it was registered
    (so the same files registered twice are the same baseline), or, for versions registered
    without them, the version itself."""
    return _content_identity(version.tags) or [version.version, version.source]


def _content_identity(tags: dict[str, str]) -> list | None:
    """A model by its content, from a version's tags: its files, its feature spec, its labels."""
    if SOURCE_SHA_TAG not in tags or (FEATURE_SPEC_TAG in tags and FEATURE_SPEC_SHA_TAG not in tags):
        return None
    return [tags[SOURCE_SHA_TAG], tags.get(FEATURE_SPEC_SHA_TAG), tags.get(LABELS_TAG)]


def _download(tracker, model: str, version, folder: Path):
    import os

    import mlflow.artifacts

    from kit.gates.scorers import ModelFiles

    os.environ["MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR"] = "false"  # no progress bars in the gate report
    if folder.exists():
        shutil.rmtree(folder)
    (folder / "model").mkdir(parents=True)
    path = Path(mlflow.artifacts.download_artifacts(artifact_uri=version.source, dst_path=str(folder / "model"),
                                                    tracking_uri=tracker.tracking_uri))
    spec_uri = version.tags.get(FEATURE_SPEC_TAG)
    spec = None
    if spec_uri:
        (folder / "spec").mkdir()
        spec = Path(mlflow.artifacts.download_artifacts(artifact_uri=spec_uri, dst_path=str(folder / "spec"),
                                                        tracking_uri=tracker.tracking_uri))
    labels = json.loads(version.tags[LABELS_TAG]) if version.tags.get(LABELS_TAG) else None
    return ModelFiles(path, spec, labels, uri=f"models:/{model}/{version.version}", tracking_uri=tracker.tracking_uri)


FEATURE_SPEC_TAG = "kit.evaluation.feature_spec"  # runs:/ URI of the feature spec the version was evaluated with
FEATURE_SPEC_SHA_TAG = "kit.evaluation.feature_spec_sha256"  # its content hash (kit.files.sha256_tree)
SOURCE_SHA_TAG = "kit.source_sha256"  # content hash of the registered files (kit.files.sha256_tree)
LABELS_TAG = "kit.evaluation.labels"  # JSON list: class names in the model's output order


def _parameter(pipeline, result, step: str, param: str) -> tuple[Path, str]:
    """A step's input or output parameter: its file and its artifact URI on the run that wrote it."""
    spec = pipeline.steps[step]
    owner, output = spec.inputs[param] if param in spec.inputs else (step, param)
    path = result.steps[owner].outputs[output]
    inside = f"outputs/{output}" + (f"/{path.name}" if path.is_file() else "")
    return path, f"runs:/{result.steps[owner].run_id}/{inside}"


def _evaluations(pipeline, result) -> dict:
    """step -> (Evaluation, feature spec URI) for every step that declares `evaluation:`."""
    from kit.gates import Evaluation

    found = {}
    for name, step in pipeline.steps.items():
        declared = step.spec.evaluation
        if declared is None or name not in result.steps:
            continue
        rows, _ = _parameter(pipeline, result, name, declared.rows)
        spec, spec_uri = _parameter(pipeline, result, name, declared.feature_spec) if declared.feature_spec else (None, None)
        found[name] = (Evaluation(rows, declared.label, declared.metric, spec,
                                  list(declared.labels) if declared.labels else None), spec_uri)
    return found


def _evaluation_tags(evaluations: dict, content_hash) -> dict[str, str]:
    """Recorded with the version, so it can be re-scored later with its own preprocessing."""
    for evaluation, spec_uri in evaluations.values():
        tags = {}
        if spec_uri:
            tags[FEATURE_SPEC_TAG] = spec_uri
            tags[FEATURE_SPEC_SHA_TAG] = content_hash(evaluation.feature_spec)
        if evaluation.labels:
            tags[LABELS_TAG] = json.dumps(evaluation.labels)
        return tags
    return {}


def _source_path(result, promotion) -> Path:
    return result.steps[promotion.source.step].outputs[promotion.source.output]


def _candidate(result, promotion):
    from kit.gates.scorers import ModelFiles

    return ModelFiles(_source_path(result, promotion))


def _evidence_tags(outcome: Outcome, result, tracker, metrics) -> dict[str, str]:
    from kit.registry.versions import GATES_TAG, METRIC_PREFIX

    tags = {GATES_TAG: "passed" if outcome.passed else "failed", "kit.pipeline_run_id": result.run_id}
    parent = tracker.client.get_run(result.run_id).data.tags
    for key in ("kit.pipeline", "kit.git.commit", "kit.git.dirty", "kit.lock_sha256", "kit.snapshot"):
        if key in parent:
            tags[key] = parent[key]
    for r in outcome.results:
        figure = "" if r.figure is None else f" {r.figure:.6g}"
        tags[f"kit.gate.{_key(r.name)}"] = f"{'passed' if r.passed else 'failed'}{figure} ({r.threshold})"[:4900]
        for field_name, value in r.evidence.items():  # no_regression: baseline, interval, slices
            text = json.dumps(value)
            tags[f"kit.gate.{_key(r.name)}.{field_name}"] = text if len(text) <= 4900 else \
                json.dumps(f"too long for a tag: see gates/gates.json of pipeline run {result.run_id}")
    for name, step in result.steps.items():
        for metric, value in metrics(name).items():
            tags[f"{METRIC_PREFIX}{name}.{_key(metric)}"] = repr(value)
        for direction, param, check in step.checks:
            tags[f"kit.contract.{name}.{param}"] = "passed" if check.success else "failed"
            if check.data_sha256:
                tags[f"kit.data.{name}.{param}.sha256"] = check.data_sha256
    return tags


def _log_gates(tracker, run_id: str, outcome: Outcome) -> None:
    from kit.registry.versions import GATES_TAG

    client = tracker.client
    client.set_tag(run_id, GATES_TAG, "passed" if outcome.passed else "failed")
    for r in outcome.results:
        client.set_tag(run_id, f"kit.gate.{_key(r.name)}", "passed" if r.passed else "failed")
        if r.figure is not None:
            client.log_metric(run_id, f"gate.{_key(r.name)}", r.figure)
    with tempfile.TemporaryDirectory() as folder:
        report = Path(folder) / "gates.json"
        report.write_text(json.dumps([r.to_dict() for r in outcome.results], indent=2))
        page = write_page(Path(folder) / "gates.html", "Gates", [Section(table=outcome.table()),
                          *comparison_sections(outcome.results)],
                          heading=f"Gates: {'passed' if outcome.passed else 'FAILED'}")
        client.log_artifact(run_id, str(report), "gates")
        client.log_artifact(run_id, str(page), "gates")


def comparison_sections(results: list[GateResult]) -> list[Section]:
    """For each `no_regression` result: its comparison with the champion, its slices, and a plot
    of the differences with their intervals (when the champion was re-scored)."""
    from kit.gates.plot import comparison_svg

    def cell(value) -> str:
        return "" if value is None else f"{value:.6g}" if isinstance(value, float) else str(value)

    sections = []
    for r in results:
        e = r.evidence
        if "baseline_version" not in e:
            continue
        facts = [("champion", e["baseline_version"] and f"v{e['baseline_version']}"),
                 ("champion's recorded figure", e["baseline_recorded"]),
                 ("champion re-scored on these rows", e["baseline_rescored"] if e["baseline_rescored"] is not None
                  else "compared with the recorded figure, not re-scored"),
                 ("candidate", r.figure), ("difference (positive is better)", e["difference"]),
                 ("interval", e["ci_low"] is not None and f"[{e['ci_low']:+.4g}, {e['ci_high']:+.4g}] at "
                                                          f"{e['confidence']:.0%}, {e['resamples']} resamples")]
        sections.append(Section(heading=r.name, table=Table(
            ["", "value"], [[k, cell(v)] for k, v in facts if v not in (None, False)])))
        slices = e.get("slices") or []
        if slices:
            sections.append(Section(heading=f"{r.name}: slices", table=Table(
                ["slice", "rows", "candidate", "champion", "difference", "result"],
                [[f"{s['column']}={s['value']}", cell(s.get("rows")), cell(s.get("candidate")), cell(s.get("baseline")),
                  cell(s.get("difference")), "skipped" if "skipped" in s else "pass" if s["passed"] else "FAIL"]
                 for s in slices])))
        svg = comparison_svg(r)
        if svg:
            sections.append(Section(image=Image.svg(svg, alt=f"{r.name}: differences and intervals")))
    return sections


def _key(name: str) -> str:
    """MLflow keys allow letters, digits, _ - . / and space."""
    return re.sub(r"[^A-Za-z0-9_./ -]", "_", name)
