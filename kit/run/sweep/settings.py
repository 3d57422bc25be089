"""What a sweep varies and how it judges: `--grid` options and the pipeline file's `sweep:` block,
checked against the pipeline before anything runs.

Values are read like `-p` values (YAML 1.2 core schema) and checked like them: each one is
handed to the pipeline loader as an override layer, so a wrong step, parameter or type is
refused with the loader's own message, naming the `--grid` option or the file and line.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from kit.errors import SpecError
from kit.pipeline import Overrides, Pipeline
from kit.pipeline import load as load_pipeline
from kit.pipeline import parameters as params
from kit.pipeline.yaml_lines import YamlProblem, parse, parse_value

DEFAULT_JOBS = 2
_RANGE = re.compile(r"^\s*([^\s,\[\]{}]+?)\s*\.\.\s*([^\s,\[\]{}]+)\s*$")


@dataclass(frozen=True)
class Range:
    """LOW..HIGH, for Optuna: ints uniformly, floats on a log scale when LOW > 0."""

    low: int | float
    high: int | float

    @property
    def is_int(self) -> bool:
        return isinstance(self.low, int) and isinstance(self.high, int)

    @property
    def log(self) -> bool:
        return not self.is_int and self.low > 0

    def __str__(self) -> str:
        return f"{self.low}..{self.high}"


@dataclass(frozen=True)
class Axis:
    """One swept parameter: its values (or a range) and where they were written."""

    step: str
    param: str
    values: tuple = ()
    range: Range | None = None
    where: str = ""  # "--grid train.lr=0.1,0.01" or "pipelines/p.yaml:14"

    @property
    def name(self) -> str:
        return f"{self.step}.{self.param}"

    def shown(self) -> str:
        return str(self.range) if self.range else ",".join(params.short(v) for v in self.values)


@dataclass(frozen=True)
class Settings:
    axes: tuple[Axis, ...]
    metric_step: str
    metric: str
    direction: str  # max | min
    search: str  # grid | random | optuna
    count: int | None = None  # random: variants sampled; optuna: trials
    seed: int = 0
    jobs: int = DEFAULT_JOBS
    promote: bool = True
    base: list = field(default_factory=list)  # -p / --params layers, under every variant's values

    @property
    def metric_name(self) -> str:
        return f"{self.metric_step}.{self.metric}"

    def better(self, a: float, b: float) -> bool:
        return a > b if self.direction == "max" else a < b


def parse_grid_option(text: str) -> Axis:
    """`--grid STEP.PARAM=V1,V2,...` (YAML 1.2 values; `[16, 8],[32, 16]` are two lists) or
    `STEP.PARAM=LOW..HIGH`."""
    key, sep, values = text.partition("=")
    step, dot, param = key.strip().partition(".")
    where = f"--grid {params.cut(text)}"
    if not sep or not dot or not step or not param or not values.strip():
        raise SpecError(f"{where}: expected STEP.PARAM=V1,V2,... (or LOW..HIGH with --search optuna), "
                        "for example --grid train.lr=0.01,0.1")
    found = _range(values)
    if found is not None:
        return Axis(step, param, range=found, where=where)
    return Axis(step, param, values=tuple(_values(values)), where=where)


def _values(text: str) -> list:
    """Comma-separated values, read as one YAML flow sequence so `[16, 8],[32, 16]` stays two lists;
    if that is not YAML, each comma-separated piece on its own (as `-p` reads a value)."""
    try:
        value, _ = parse(f"[{text}]")
        if isinstance(value, list) and value:
            return value
    except YamlProblem:
        pass
    return [parse_value(piece.strip()) for piece in text.split(",")]


def _range(text: Any) -> Range | None:
    if not isinstance(text, str):
        return None
    match = _RANGE.match(text)
    if not match:
        return None
    low, high = parse_value(match.group(1)), parse_value(match.group(2))
    if not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in (low, high)):
        return None
    if isinstance(low, int) != isinstance(high, int):
        low, high = float(low), float(high)
    return Range(low, high)


def block_axes(pipeline: Pipeline) -> list[Axis]:
    block = pipeline.spec.sweep
    axes = []
    for key, value in (block.grid if block else {}).items():
        step, _, param = key.partition(".")
        where = pipeline.where("sweep", "grid", key)
        found = _range(value)
        if found is not None:
            axes.append(Axis(step, param, range=found, where=where))
        else:
            axes.append(Axis(step, param, values=tuple(value if isinstance(value, list) else [value]), where=where))
    return axes


def settings(pipeline: Pipeline, base: list, *, grid: list[str], random: int | None = None, search: str | None = None,
             trials: int | None = None, seed: int | None = None, metric: str | None = None,
             direction: str | None = None, jobs: int | None = None, promote: bool = True) -> Settings:
    """The sweep's settings: command-line flags over the pipeline file's `sweep:` block (a `--grid`
    replaces the block's whole grid). SpecError (exit 2) for anything wrong, before anything runs."""
    block = pipeline.spec.sweep
    file = pipeline.path.name

    def pick(flag, key):
        return flag if flag is not None else getattr(block, key, None) if block is not None else None

    axes = [parse_grid_option(text) for text in grid] if grid else block_axes(pipeline)
    if not axes:
        raise SpecError(f"nothing to sweep: give --grid STEP.PARAM=V1,V2,... or a `sweep: grid:` block in {file}")
    names = [axis.name for axis in axes]
    for index, name in enumerate(names):
        if names.index(name) != index:
            raise SpecError(f"{axes[index].where}: {name} is swept twice; give all its values in one --grid")

    metric = pick(metric, "metric")
    direction = pick(direction, "direction")
    if metric is None:
        raise SpecError(f"--metric STEP.METRIC is required (or `metric:` in the `sweep:` block of {file}), "
                        "e.g. --metric evaluate.auc")
    step, dot, metric_name = metric.partition(".")
    if not dot or not step or not metric_name:
        raise SpecError(f"--metric {metric!r}: expected STEP.METRIC, e.g. --metric evaluate.auc")
    if step not in pipeline.steps:
        raise SpecError(f"--metric {metric}: no step {step!r} in {file} (steps: {', '.join(pipeline.steps)})")
    if direction not in ("max", "min"):
        raise SpecError(f"--direction max|min is required (or `direction:` in the `sweep:` block of {file}): "
                        f"is a higher {metric} better (max) or a lower one (min)?")

    search, random, trials = pick(search, "search"), pick(random, "random"), pick(trials, "trials")
    if search == "optuna":
        if random is not None:
            raise SpecError("--random and --search optuna are two ways to choose variants: give one")
        if not trials:
            raise SpecError("--search optuna needs --trials N (or `trials:` in the `sweep:` block)")
        kind, count = "optuna", trials
    else:
        if trials is not None:
            raise SpecError("--trials goes with --search optuna")
        ranged = next((a for a in axes if a.range), None)
        if ranged is not None:
            raise SpecError(f"{ranged.where}: a range ({ranged.range}) needs --search optuna; a grid or --random "
                            "needs a list of values")
        kind, count = ("random", random) if random else ("grid", None)
    for name, value in (("--random", random), ("--trials", trials), ("--jobs", jobs)):
        if value is not None and value < 1:
            raise SpecError(f"{name} {value}: must be 1 or more")

    check_values(pipeline, base, axes)
    axes = [_typed(pipeline, axis) for axis in axes]
    return Settings(tuple(axes), step, metric_name, direction, kind, count, seed=pick(seed, "seed") or 0,
                    jobs=pick(jobs, "jobs") or DEFAULT_JOBS, promote=promote, base=list(base))


def _typed(pipeline: Pipeline, axis: Axis) -> Axis:
    """A range over a float parameter is a float range, even if typed as `1..10`."""
    if axis.range is None or not axis.range.is_int:
        return axis
    declared = params.declared_parameters(pipeline.steps[axis.step].notebook)[axis.param]
    if declared.type_name != "float":
        return axis
    return Axis(axis.step, axis.param, range=Range(float(axis.range.low), float(axis.range.high)), where=axis.where)


def layer(axes: list[Axis] | tuple[Axis, ...], values: dict[str, Any]) -> Overrides:
    """One variant's values as an override layer ({step: {param: value}}) that knows where each was written."""
    nested: dict[str, dict[str, Any]] = {}
    written = {}
    for axis in axes:
        if axis.name in values:
            nested.setdefault(axis.step, {})[axis.param] = values[axis.name]
            written[(axis.step, axis.param)] = axis.where

    def where(step=None, param=None, *rest) -> str:
        if param is None:  # the step itself (an unknown step): its first axis
            return next((w for (s, _), w in written.items() if s == step), "--grid")
        return written.get((step, param), "--grid")

    return Overrides(nested, where)


def check_values(pipeline: Pipeline, base: list, axes: list[Axis]) -> None:
    """Every value of every axis (and both ends of a range) through the loader's checks, in one load:
    layer i holds the i-th value of each axis, so each problem names its option or line."""
    columns = [list(axis.values) if axis.range is None else [axis.range.low, axis.range.high] for axis in axes]
    layers = []
    for i in range(max(len(c) for c in columns)):
        layers.append(layer(axes, {axis.name: column[i] for axis, column in zip(axes, columns) if i < len(column)}))
    problems = []
    try:
        load_pipeline(pipeline.path, root=pipeline.root, overrides=[*base, *layers], check_kernel=False)
    except SpecError as exc:
        problems = list(dict.fromkeys(str(exc).splitlines()))  # one line per problem, repeats once
    for axis in axes:
        if axis.range is None:
            continue
        if axis.range.low >= axis.range.high:
            problems.append(f"{axis.where}: the range {axis.range} is empty: LOW must be below HIGH")
        declared = params.declared_parameters(pipeline.steps[axis.step].notebook).get(axis.param) \
            if axis.step in pipeline.steps else None
        if declared is not None and declared.type_name not in ("int", "float", "any"):
            problems.append(f"{axis.where}: step {axis.step!r}, parameter {axis.param!r}: a range needs a number "
                            f"parameter; its default is {params.cut(declared.default_source)}")
    if problems:
        raise SpecError("\n".join(problems))
