"""Load a pipeline file into a checked, ordered plan — every check before any kernel starts."""

from __future__ import annotations

import graphlib
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from pydantic import ValidationError

from kit.errors import SpecError
from kit.pipeline import parameters as params
from kit.pipeline.extends import Merged, merge, read_chain
from kit.pipeline.overrides import Overrides, where_of
from kit.pipeline.paths import outside_root
from kit.pipeline.schema import PipelineSpec, StepSpec


@dataclass(frozen=True)
class Step:
    spec: StepSpec
    notebook: Path  # absolute
    parameters: dict[str, Any]  # final values: file < --params < -p, coerced to the defaults' types
    inputs: dict[str, tuple[str, str]]  # notebook parameter -> (upstream step, its output parameter)
    outputs: dict[str, str]  # notebook parameter -> name inside the step's folder
    needs: tuple[str, ...]  # explicit needs plus the steps its inputs come from
    timeout: float
    defined_at: str = ""  # "file:line" of the step in the pipeline file that defines it (maybe a parent)
    retries: int = 1  # on a cluster: runs again on another worker after a lost worker (step's, else pipeline's)

    @property
    def name(self) -> str:
        return self.spec.name


@dataclass(frozen=True)
class Pipeline:
    spec: PipelineSpec
    path: Path  # the file given, absolute
    root: Path
    steps: dict[str, Step]  # in dependency order
    text: str = field(repr=False)  # of the file given
    where: Callable[..., str] = field(repr=False, default=lambda *location: "")  # "file:line" of a key path
    files: tuple[Path, ...] = ()  # every file merged through `extends`, the first ancestor first, `path` last

    @property
    def name(self) -> str:
        return self.spec.name

    def dependents(self, name: str) -> set[str]:
        """Every step that needs `name`, directly or through others."""
        found: set[str] = set()
        frontier = {name}
        while frontier:
            frontier = {s.name for s in self.steps.values() if set(s.needs) & frontier} - found
            found |= frontier
        return found


def load(
    path: str | Path,
    root: Path | None = None,
    overrides: list[Overrides] | None = None,
    check_kernel: bool = True,
) -> Pipeline:
    """Read, validate and order a pipeline. Raises SpecError listing every problem found."""
    from kit.project import find_root

    path = Path(os.path.abspath(path))  # links not resolved: `extends` and the root are judged as written
    root = root or find_root(path.parent)
    sources = read_chain(path, root)
    merged = merge(sources)
    try:
        spec = PipelineSpec.model_validate(merged.data)
    except ValidationError as exc:
        raise SpecError(_schema_message(exc, merged)) from None

    problems: list[str] = []

    def problem(location: tuple, message: str) -> None:
        problems.append(f"{merged.where(*location)}: {message}")

    names = [s.name for s in spec.steps]
    for index, step in enumerate(spec.steps):
        if names.index(step.name) != index:
            problem(("steps", index, "name"), f"duplicate step name {step.name!r}")
    by_name = {s.name: s for s in spec.steps}

    graph: dict[str, set[str]] = {}
    for index, step in enumerate(spec.steps):
        needs = set(step.needs)
        for n in step.needs:
            if n not in by_name:
                problem(("steps", index, "needs"), f"step {step.name!r} needs unknown step {n!r}")
        for param, reference in step.inputs.items():
            upstream, _, output = reference.partition(".")
            if upstream not in by_name:
                problem(("steps", index, "inputs", param), f"step {step.name!r}: input {param!r} comes from unknown step {upstream!r}")
            elif output not in by_name[upstream].outputs:
                declared = ", ".join(by_name[upstream].outputs) or "(none)"
                problem(("steps", index, "inputs", param),
                        f"step {step.name!r}: input {param!r} refers to {reference!r}, but step {upstream!r} declares no output {output!r} (it declares: {declared})")
            else:
                needs.add(upstream)
        for param, contract in step.contracts.items():
            if param not in step.inputs and param not in step.outputs:
                problem(("steps", index, "contracts", param),
                        f"step {step.name!r}: contract for {param!r}, which is neither an input nor an output of the step")
            elif why := outside_root(root, root, contract):
                problem(("steps", index, "contracts", param), f"step {step.name!r}: contract file {contract} {why}")
            elif not _is_file(root / contract):
                problem(("steps", index, "contracts", param), f"step {step.name!r}: contract file {contract} not found")
        both = set(step.inputs) & set(step.outputs)
        if both:
            problem(("steps", index), f"step {step.name!r}: {', '.join(sorted(both))} is both an input and an output")
        graph[step.name] = needs & set(by_name)

    try:
        order = list(graphlib.TopologicalSorter(graph).static_order())
    except graphlib.CycleError as exc:
        cycle = " -> ".join(exc.args[1])
        problem(("steps",), f"steps depend on each other in a cycle: {cycle}")
        order = names

    aliases = [p.alias for p in spec.promotions]
    for index, promotion in enumerate(spec.promotions):
        at = ("promote", index) if isinstance(spec.promote, list) else ("promote",)
        source = promotion.source
        if aliases.index(promotion.alias) != index:
            problem(at, f"promote: alias {promotion.alias!r} is listed twice")
        if source.step not in by_name:
            problem((*at, "source", "step"), f"promote: unknown step {source.step!r}")
        elif source.output not in by_name[source.step].outputs:
            problem((*at, "source", "output"), f"promote: step {source.step!r} declares no output {source.output!r}")

    overrides = overrides or []
    for layer in overrides:
        for step_name in layer:
            if step_name not in by_name:
                problems.append(f"{where_of(layer, step_name)}: parameter override for unknown step "
                                f"{params.short(step_name)} (steps: {', '.join(names)})")

    steps: dict[str, Step] = {}
    for name in order:
        index = names.index(name)
        spec_step = by_name[name]
        where = ("steps", index, "notebook")
        why = outside_root(root, root, spec_step.notebook)
        if why:
            problem(where, f"step {name!r}: notebook {spec_step.notebook} {why}")
            continue
        notebook = (root / spec_step.notebook).resolve()
        if not _is_file(notebook):
            problem(where, f"step {name!r}: notebook {spec_step.notebook} not found (paths are relative to {root})")
            continue
        try:
            if not params.has_parameters_cell(notebook):
                problem(where, f"step {name!r}: notebook {spec_step.notebook} has no cell tagged 'parameters' "
                               "(in JupyterLab: select the cell, open the property inspector, add the tag 'parameters')")
                continue
            declared = params.declared_parameters(notebook)
        except (ValueError, OSError, RecursionError) as exc:
            problem(where, f"step {name!r}: cannot read notebook {spec_step.notebook}: {exc}")
            continue
        values = _check_values(spec_step, index, declared, overrides, problem,
                               lambda where, message: problems.append(f"{where}: {message}"))
        steps[name] = Step(
            spec=spec_step,
            notebook=notebook,
            parameters=values,
            inputs={p: tuple(r.split(".", 1)) for p, r in spec_step.inputs.items()},
            outputs=dict(spec_step.outputs),
            needs=tuple(sorted(graph[name])),
            timeout=spec_step.timeout or spec.timeout,
            defined_at=merged.where("steps", index),
            retries=spec_step.retries if spec_step.retries is not None else spec.retries,
        )

    if check_kernel:
        _check_kernel(spec.kernel, problem)
    if problems:
        raise SpecError("\n".join(problems))
    return Pipeline(spec=spec, path=path, root=root, steps=steps, text=sources[-1].text,
                    where=merged.where, files=tuple(source.path for source in sources))


def _is_file(path: Path) -> bool:
    try:
        return path.is_file()
    except (OSError, ValueError):  # a name too long for the file system
        return False


def _check_values(step: StepSpec, index: int, declared: dict, overrides: list[Overrides], problem,
                  problem_at) -> dict[str, Any]:
    known = list(declared)
    for param in [*step.inputs, *step.outputs]:
        if param not in declared:
            kind = "input" if param in step.inputs else "output"
            problem(("steps", index, f"{kind}s", param),
                    f"step {step.name!r}: {kind} {param!r} is not a parameter of {step.notebook} ({params.suggest(param, known)})")
    managed = set(step.inputs) | set(step.outputs)

    values: dict[str, Any] = {}
    layers = [(None, step.parameters), *[(layer, layer.get(step.name, {})) for layer in overrides]]
    for layer, given in layers:
        for param, value in given.items():
            label = f"step {step.name!r}, parameter {params.short(param)}"
            if layer is None:
                def report(message: str, param=param) -> None:
                    problem(("steps", index, "parameters", param), message)
            else:
                def report(message: str, layer=layer, param=param) -> None:
                    problem_at(where_of(layer, step.name, param), message)
            if param not in declared:
                report(f"{label}: {step.notebook} has no such parameter ({params.suggest(param, known)})")
            elif param in managed:
                report(f"{label}: this path is set by the runner from the step's inputs/outputs; do not set it")
            else:
                try:
                    values[param] = params.coerce(value, declared[param])
                except TypeError as exc:
                    report(f"{label}: {exc}")
    return values


def _check_kernel(kernel: str, problem) -> None:
    from jupyter_core.paths import jupyter_path

    # A kernel.json where Jupyter looks answers without importing jupyter_client (a third of a second).
    if any(Path(folder, kernel, "kernel.json").is_file() for folder in jupyter_path("kernels")):
        return
    from jupyter_client.kernelspec import KernelSpecManager, NoSuchKernel

    try:
        KernelSpecManager().get_kernel_spec(kernel)
    except NoSuchKernel:
        problem(("kernel",), f"Jupyter kernel {kernel!r} is not installed; run `make setup` to register it")


def _schema_message(exc: ValidationError, merged: Merged) -> str:
    lines = []
    for error in exc.errors():
        location = tuple(error["loc"])
        dotted = ".".join(str(p) for p in location) or "(top level)"
        if error["type"] == "extra_forbidden":
            message = f"unknown key {params.short(location[-1])}"
            dotted = ".".join(str(p) for p in location[:-1]) or "(top level)"
        elif error["type"] == "missing":
            message = "required key is missing"
            if location == ("name",) and len(merged.sources) > 1:
                message += " (a file that extends another names its own pipeline)"
        else:
            message = error["msg"]
        lines.append(f"{merged.where(*location)}: {params.cut(dotted)}: {message}")
    return "\n".join(lines)
