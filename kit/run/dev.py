"""`kit dev PIPELINE STEP`: develop one step in JupyterLab against real upstream outputs.

A working copy of the step's notebook is written under workspaces/dev/PIPELINE/STEP/ (never
the source), with one cell after the parameters cell that points the step's inputs at the
outputs of the latest run in which its upstream steps finished, downloaded from the
tracking store (so a remote MLflow server works the same), and its outputs at scratch
paths. `--save` writes the working copy back to the source, without that cell.
"""

from __future__ import annotations

import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kit import store
from kit.errors import SpecError
from kit.files import sha256_file
from kit.pipeline import Pipeline, Step, notebooks
from kit.project import workspaces_dir

INJECTED_TAG = "kit-dev-injected"  # the cell `kit dev` adds; `--save` removes exactly the cells with it
SOURCE_HASH = "kit_dev_source_sha256"  # working copy metadata: the source it was made from (or last saved to)


@dataclass
class WorkingCopy:
    path: Path
    run_id: str | None  # the pipeline run whose upstream outputs were injected (None: the step reads none)
    values: dict[str, Any]
    kept_edits: bool  # an earlier working copy was there: its cells were kept, the injected cell refreshed


def dev_folder(pipeline: Pipeline, step: Step) -> Path:
    return workspaces_dir(pipeline.root) / "dev" / pipeline.name / step.name


def working_copy_path(pipeline: Pipeline, step: Step) -> Path:
    return dev_folder(pipeline, step) / notebooks.executed_name(step.notebook)


def find_step(pipeline: Pipeline, name: str) -> Step:
    if name not in pipeline.steps:
        raise SpecError(f"{pipeline.path.name}: no step {name!r} (steps: {', '.join(pipeline.steps)})")
    return pipeline.steps[name]


def prepare(pipeline: Pipeline, step: Step, command: str) -> WorkingCopy:
    """Write (or refresh) the step's working copy; `command` is how the user named it, for the cell's comment."""
    folder = dev_folder(pipeline, step)
    run_id, inputs = _upstream_outputs(pipeline, step, folder / "inputs") if step.inputs else (None, {})
    scratch = folder / "scratch"
    scratch.mkdir(parents=True, exist_ok=True)
    outputs = {param: scratch / name for param, name in step.outputs.items()}
    values = {**step.parameters, **{k: str(v) for k, v in {**inputs, **outputs}.items()}}

    path = working_copy_path(pipeline, step)
    kept = path.is_file()
    nb = notebooks.read(path) if kept else notebooks.read(step.notebook)
    nb.metadata.pop("jupytext", None)  # a pairing belongs to the source; the working copy is a plain .ipynb
    if not kept:
        nb.metadata[SOURCE_HASH] = sha256_file(step.notebook)
    nb.cells = [cell for cell in nb.cells if INJECTED_TAG not in cell.metadata.get("tags", [])]
    where = next((i for i, c in enumerate(nb.cells) if "parameters" in c.metadata.get("tags", [])), None)
    if where is None:
        raise SpecError(f"{path if kept else step.spec.notebook}: no cell tagged 'parameters' to inject after")
    nb.cells.insert(where + 1, _injected_cell(values, run_id, command))
    path.parent.mkdir(parents=True, exist_ok=True)
    import nbformat

    nbformat.write(nb, path)
    return WorkingCopy(path, run_id, values, kept)


def save(pipeline: Pipeline, step: Step, command: str, force: bool = False) -> list[Path]:
    """Write the working copy back to the step's source notebook (and its Jupytext pair), without
    the injected cell and without outputs (sources are kept clean). Returns the files written.

    Refuses when the source changed since the working copy was made (a `git pull`, an edit
    elsewhere): saving would silently undo that change. `force` overwrites it anyway."""
    import nbformat

    path = working_copy_path(pipeline, step)
    if not path.is_file():
        raise SpecError(f"no working copy of step {step.name!r} at {path}: run `{command}` first to make one")
    edited = nbformat.read(path, as_version=4)
    made_from = edited.metadata.get(SOURCE_HASH)
    if made_from and made_from != sha256_file(step.notebook) and not force:
        raise SpecError(f"{step.spec.notebook} changed since the working copy {path} was made from it; saving would "
                        f"undo that change. Bring it into the working copy by hand, or run `{command} --save --force` "
                        "to overwrite it")
    source = notebooks.read(step.notebook)
    edited.cells = [cell for cell in edited.cells if INJECTED_TAG not in cell.metadata.get("tags", [])]
    for cell in edited.cells:
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
    copy_metadata = dict(edited.metadata)
    edited.metadata = source.metadata  # the source's kernel and Jupytext pairing, not the working copy's
    written = notebooks.write(edited, step.notebook)
    working = nbformat.read(path, as_version=4)  # the copy now matches the saved source
    working.metadata = {**copy_metadata, SOURCE_HASH: sha256_file(step.notebook)}
    nbformat.write(working, path)
    return written


def lab_url(path: Path) -> str | None:
    """The URL that opens `path` in a running JupyterLab (`make lab`) whose root folder holds it, else None."""
    for server, relative in _servers_holding(path):
        token = f"?token={server['token']}" if server.get("token") else ""
        return f"{server['url'].rstrip('/')}/lab/tree/{relative}{token}"
    return None


def lab_servers() -> list[dict]:
    """Running Jupyter servers on this machine (as `jupyter server list` shows them)."""
    try:
        from jupyter_server.serverapp import list_running_servers

        return list(list_running_servers())
    except Exception:  # noqa: BLE001 - no server information is "no server", never a failure
        return []


def _servers_holding(path: Path):
    for server in lab_servers():
        root = Path(server.get("root_dir") or server.get("notebook_dir") or "/").resolve()
        try:
            yield server, path.resolve().relative_to(root).as_posix()
        except ValueError:
            continue


def _injected_cell(values: dict[str, Any], run_id: str | None, command: str):
    import nbformat

    origin = f"upstream outputs of pipeline run {run_id}" if run_id else "no upstream inputs"
    lines = [f"# Injected by `{command}` ({origin}); outputs go to scratch paths.",
             f"# `{command} --save` writes your changes back to the source notebook without this cell.",
             *[f"{name} = {value!r}" for name, value in values.items()]]
    cell = nbformat.v4.new_code_cell("\n".join(lines))
    cell.metadata["tags"] = [INJECTED_TAG]
    return cell


def _upstream_outputs(pipeline: Pipeline, step: Step, folder: Path) -> tuple[str, dict[str, Path]]:
    """The latest pipeline run in which every step this one reads from finished, and the local
    paths of the outputs it reads (downloaded once per run, laid out as STEP/NAME)."""
    client = store.client(pipeline.root)
    upstream = sorted({up for up, _ in step.inputs.values()})
    parent, step_runs = _latest_run_with(client, pipeline, upstream)
    if parent is None:
        raise SpecError(f"no run of pipeline {pipeline.name!r} has finished step(s) {', '.join(upstream)} that step "
                        f"{step.name!r} reads from: run `kit run {_relative(pipeline.path, pipeline.root)}` first")
    found = {}
    for param, (up, output) in step.inputs.items():
        name = pipeline.steps[up].outputs[output]
        target = folder / parent[:8] / up / name
        if not target.exists():
            _download(client, step_runs[up], output, name, target, f"{up}.{output}", parent)
        found[param] = target
    return parent, found


def _latest_run_with(client, pipeline: Pipeline, upstream: list[str]) -> tuple[str | None, dict[str, str]]:
    experiment = client.get_experiment_by_name(pipeline.name)
    if experiment is None:
        return None, {}
    parents = client.search_runs([experiment.experiment_id], "tags.`kit.kind` = 'pipeline'",
                                 order_by=["attributes.start_time DESC"], max_results=50)
    for parent in parents:
        children = client.search_runs(
            [experiment.experiment_id],
            f"tags.`mlflow.parentRunId` = '{parent.info.run_id}' and attributes.status = 'FINISHED'")
        finished = {run.data.tags.get("kit.step"): run.info.run_id for run in children}
        if all(up in finished for up in upstream):
            return parent.info.run_id, finished
    return None, {}


def _download(client, run_id: str, output: str, name: str, target: Path, label: str, parent: str) -> None:
    """outputs/OUTPUT of the step's run to `target`: a file the runner logged as outputs/OUTPUT/NAME,
    or a folder whose contents it logged under outputs/OUTPUT."""
    logged = client.list_artifacts(run_id, f"outputs/{output}")
    if not logged:
        raise SpecError(f"upstream output {label} ({name}) of pipeline run {parent} is not in the tracking store "
                        f"(step run {run_id} has no artifact outputs/{output}): run `kit run` again to produce it")
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target.parent) as scratch:
        got = Path(client.download_artifacts(run_id, f"outputs/{output}", scratch))
        is_file = len(logged) == 1 and not logged[0].is_dir and Path(logged[0].path).name == name
        shutil.move(str(got / name if is_file else got), str(target))  # whole, or not at all


def _relative(path: Path, root: Path) -> str:
    try:
        return str(path.relative_to(root))
    except ValueError:
        return str(path)
