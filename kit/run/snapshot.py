"""A snapshot of exactly what a pipeline run executed, logged as the run's `snapshot/`
artifact: the pipeline file(s), every step's source notebook as read (before parameters
were injected) and every contract file, laid out as in the project; the feature specs the
steps produced under feature_specs/STEP/; and manifest.json with each file's kind and
sha256, the lock hash and the git state (commit, changed files). A model version's
evidence points at it, so "what built v7?" has an answer even when the tree was dirty."""

from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path

from kit.files import sha256_file
from kit.run import provenance

ARTIFACT = "snapshot"
TAG = "kit.snapshot"  # on the pipeline run and on every version it registers: runs:/RUN/snapshot


def pipeline_files(pipeline) -> list[Path]:
    """The pipeline file and the files it was merged from (parents first), when it has any."""
    return [Path(p) for p in (pipeline.files or [pipeline.path])]


def source_files(plan) -> dict[str, dict[str, Path]]:
    """What the run is about to execute, by kind: {kind: {path as the project names it: file}}."""
    pipeline = plan.pipeline
    root = pipeline.root
    return {"pipeline": {_relative(p, root): Path(p) for p in pipeline_files(pipeline)},
            "notebooks": {str(step.spec.notebook): Path(step.notebook) for step in pipeline.steps.values()},
            "contracts": {_relative(p, root): Path(p) for p in sorted(set(plan.contracts.values()))}}


def produced_specs(result) -> dict[str, list[Path]]:
    """Feature specs (feature_spec*.json) the steps wrote, in their outputs or inside output folders."""
    found: dict[str, list[Path]] = {}
    for name, step in result.steps.items():
        for path in step.outputs.values():
            candidates = [path] if path.is_file() else sorted(path.rglob("feature_spec*.json")) if path.is_dir() else []
            specs = [p for p in candidates if p.name.startswith("feature_spec") and p.suffix == ".json"]
            if specs:
                found[name] = specs
    return found


def log_sources(client, run_id: str, plan, root: Path) -> dict:
    """Copy the sources into the run's snapshot (called before any kernel starts)."""
    manifest = {"lock_sha256": provenance.lock_hash(root), "git_commit": provenance.git_commit(root),
                "git_changed_files": provenance.changed_files(root), "files": {}}
    with tempfile.TemporaryDirectory() as folder:
        for kind, paths in source_files(plan).items():
            for name, path in paths.items():  # laid out as in the project
                _copy(path, Path(folder) / name, manifest, name, kind)
        (Path(folder) / "manifest.json").write_text(json.dumps(manifest, indent=2), encoding="utf-8")
        client.log_artifacts(run_id, folder, ARTIFACT)
    client.set_tag(run_id, TAG, f"runs:/{run_id}/{ARTIFACT}")
    return manifest


def log_produced(client, run_id: str, result, root: Path) -> None:
    """Add the feature specs the steps wrote (called after the steps)."""
    specs = produced_specs(result)
    if not specs:
        return
    with tempfile.TemporaryDirectory() as folder:
        manifest: dict = {"files": {}}
        for step, paths in specs.items():
            for path in paths:
                name = f"feature_specs/{step}/{path.name}"
                _copy(path, Path(folder) / name, manifest, name, "feature_spec")
        (Path(folder) / "feature_specs" / "manifest.json").write_text(json.dumps(manifest, indent=2), encoding="utf-8")
        client.log_artifacts(run_id, folder, ARTIFACT)


def _copy(path: Path, target: Path, manifest: dict, name: str, kind: str) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(path, target)  # bytes as read, before papermill injects anything
    manifest["files"][name] = {"kind": kind, "source": str(path), "sha256": sha256_file(target)}


def _relative(path: Path, root: Path) -> str:
    for base in (Path(root), Path(root).resolve()):
        try:
            return str(Path(path).relative_to(base))
        except ValueError:
            continue
    return Path(path).name
