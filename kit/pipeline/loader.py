"""Load a pipeline file into a checked, ordered plan — every check before any kernel starts."""

from __future__ import annotations

import graphlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import yaml
from pydantic import ValidationError

from kit.errors import SpecError
from kit.pipeline import parameters as params
from kit.pipeline.schema import PipelineSpec, StepSpec
from kit.pipeline.yaml_lines import line_of, load_with_nodes


@dataclass(frozen=True)
class Step:
    spec: StepSpec
    notebook: Path  # absolute
    parameters: dict[str, Any]  # final values: file < --params < -p, coerced to the defaults' types
    inputs: dict[str, tuple[str, str]]  # notebook parameter -> (upstream step, its output parameter)
    outputs: dict[str, str]  # notebook parameter -> name inside the step's folder
    needs: tuple[str, ...]  # explicit needs plus the steps its inputs come from
    timeout: float

    @property
    def name(self) -> str:
        return self.spec.name


@dataclass(frozen=True)
class Pipeline:
    spec: PipelineSpec
    path: Path
    root: Path
    steps: dict[str, Step]  # in dependency order
    text: str = field(repr=False)
    where: Callable[..., str] = field(repr=False, default=lambda *location: "")  # "file:line" of a key path

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


Overrides = dict[str, dict[str, Any]]  # step -> parameter -> value


def parse_overrides(pairs: list[str]) -> Overrides:
    """`-p STEP.PARAM=VALUE` options into {step: {param: value}}."""
    overrides: Overrides = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        step, dot, param = key.strip().partition(".")
        if not sep or not dot or not step or not param:
            raise SpecError(f"-p {pair!r}: expected STEP.PARAM=VALUE, for example -p train.epochs=5")
        overrides.setdefault(step, {})[param] = params.parse_cli_value(value)
    return overrides


def load_params_file(path: Path) -> Overrides:
    """`--params FILE.yaml`: a mapping of step name to a mapping of parameter values."""
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise SpecError(f"--params {path}: cannot read: {exc.strerror}") from None
    except yaml.YAMLError as exc:
        raise SpecError(f"--params {path}: not valid YAML: {exc}") from None
    data = data or {}
    if not isinstance(data, dict) or not all(isinstance(v, dict) for v in data.values()):
        raise SpecError(f"--params {path}: expected a mapping of step name to parameters, e.g. 'train: {{epochs: 5}}'")
    return data


def load(
    path: str | Path,
    root: Path | None = None,
    overrides: list[Overrides] | None = None,
    check_kernel: bool = True,
) -> Pipeline:
    """Read, validate and order a pipeline. Raises SpecError listing every problem found."""
    from kit.project import find_root

    path = Path(path).resolve()
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise SpecError(f"{path}: cannot read pipeline file: {exc.strerror}") from None
    root = root or find_root(path.parent)
    shown = _shown(path, root)
    data, node = load_with_nodes(text, shown)
    if not isinstance(data, dict):
        raise SpecError(f"{shown}: a pipeline file is a mapping with name, model and steps")
    try:
        spec = PipelineSpec.model_validate(data)
    except ValidationError as exc:
        raise SpecError(_schema_message(exc, node, shown)) from None

    problems: list[str] = []

    def problem(location: tuple, message: str) -> None:
        line = line_of(node, location)
        problems.append(f"{shown}:{line}: {message}" if line else f"{shown}: {message}")

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
            elif not (root / contract).is_file():
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
                problems.append(f"parameter override for unknown step {step_name!r} (steps: {', '.join(names)})")

    steps: dict[str, Step] = {}
    for name in order:
        index = names.index(name)
        spec_step = by_name[name]
        notebook = (root / spec_step.notebook).resolve()
        where = ("steps", index, "notebook")
        if not notebook.is_file():
            problem(where, f"step {name!r}: notebook {spec_step.notebook} not found (paths are relative to {root})")
            continue
        try:
            if not params.has_parameters_cell(notebook):
                problem(where, f"step {name!r}: notebook {spec_step.notebook} has no cell tagged 'parameters' "
                               "(in JupyterLab: select the cell, open the property inspector, add the tag 'parameters')")
                continue
            declared = params.declared_parameters(notebook)
        except (ValueError, OSError) as exc:
            problem(where, f"step {name!r}: cannot read notebook {spec_step.notebook}: {exc}")
            continue
        values = _check_values(spec_step, index, declared, overrides, problem)
        steps[name] = Step(
            spec=spec_step,
            notebook=notebook,
            parameters=values,
            inputs={p: tuple(r.split(".", 1)) for p, r in spec_step.inputs.items()},
            outputs=dict(spec_step.outputs),
            needs=tuple(sorted(graph[name])),
            timeout=spec_step.timeout or spec.timeout,
        )

    if check_kernel:
        _check_kernel(spec.kernel, problem)
    if problems:
        raise SpecError("\n".join(problems))
    return Pipeline(spec=spec, path=path, root=root, steps=steps, text=text,
                    where=lambda *location: f"{shown}:{line_of(node, location)}")


def _check_values(step: StepSpec, index: int, declared: dict, overrides: list[Overrides], problem) -> dict[str, Any]:
    known = list(declared)
    for param in [*step.inputs, *step.outputs]:
        if param not in declared:
            kind = "input" if param in step.inputs else "output"
            problem(("steps", index, f"{kind}s", param),
                    f"step {step.name!r}: {kind} {param!r} is not a parameter of {step.notebook} ({params.suggest(param, known)})")
    managed = set(step.inputs) | set(step.outputs)

    values: dict[str, Any] = {}
    layers = [("the pipeline file", step.parameters), *[(f"override", layer.get(step.name, {})) for layer in overrides]]
    for origin, given in layers:
        for param, value in given.items():
            location = ("steps", index, "parameters", param)
            label = f"step {step.name!r}, parameter {param!r}" + ("" if origin == "the pipeline file" else f" (set by {origin})")
            if param not in declared:
                problem(location, f"{label}: {step.notebook} has no such parameter ({params.suggest(param, known)})")
            elif param in managed:
                problem(location, f"{label}: this path is set by the runner from the step's inputs/outputs; do not set it")
            else:
                try:
                    values[param] = params.coerce(value, declared[param])
                except TypeError as exc:
                    problem(location, f"{label}: {exc}")
    return values


def _check_kernel(kernel: str, problem) -> None:
    from jupyter_client.kernelspec import KernelSpecManager, NoSuchKernel

    try:
        KernelSpecManager().get_kernel_spec(kernel)
    except NoSuchKernel:
        problem(("kernel",), f"Jupyter kernel {kernel!r} is not installed; run `make setup` to register it")


def _schema_message(exc: ValidationError, node, shown: str) -> str:
    lines = []
    for error in exc.errors():
        location = tuple(error["loc"])
        line = line_of(node, location)
        dotted = ".".join(str(p) for p in location) or "(top level)"
        if error["type"] == "extra_forbidden":
            message = f"unknown key {location[-1]!r}"
            dotted = ".".join(str(p) for p in location[:-1]) or "(top level)"
        elif error["type"] == "missing":
            message = "required key is missing"
        else:
            message = error["msg"]
        lines.append(f"{shown}:{line}: {dotted}: {message}" if line else f"{shown}: {dotted}: {message}")
    return "\n".join(lines)


def _shown(path: Path, root: Path) -> str:
    try:
        return str(path.relative_to(root))
    except ValueError:
        return str(path)
