"""The pipeline file's schema (pydantic), so every key and type is checked by one library."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, field_validator, model_validator

from kit.project import KERNEL_NAME

NAME_PATTERN = r"^[A-Za-z][A-Za-z0-9_-]*$"
REFERENCE_PATTERN = r"^[A-Za-z][A-Za-z0-9_-]*\.[A-Za-z_][A-Za-z0-9_]*$"


class EvaluationSpec(BaseModel):
    """What an evaluation step gives the `no_regression` gate to re-score the champion on its rows."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    rows: str = Field(description="input or output parameter of the step: a table of raw columns plus the label")
    label: str = Field(min_length=1, description="the label column in `rows`")
    metric: str = Field(min_length=1, description="metric function (accuracy, log_loss, roc_auc, rmse, mae or registered)")
    feature_spec: str | None = Field(default=None, description="input or output parameter: the candidate's feature "
                                                               "spec, for models that do not carry one")
    labels: list[str | int] | None = Field(default=None, description="class names in the model's output order, "
                                                                     "for models that do not carry them")


class StepSpec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(pattern=NAME_PATTERN, description="unique step name")
    notebook: str = Field(min_length=1, description="path of the notebook (.ipynb, or a Jupytext percent-format .py), "
                                                         "relative to the project root")
    parameters: dict[str, Any] = Field(default_factory=dict, description="values injected into the parameters cell")
    needs: list[str] = Field(default_factory=list, description="steps that must finish first")
    inputs: dict[str, str] = Field(
        default_factory=dict,
        description="notebook parameter -> STEP.OUTPUT of an upstream step; the runner injects that file's path",
    )
    outputs: dict[str, str] = Field(
        default_factory=dict,
        description="notebook parameter -> file or folder name the step writes in its working folder",
    )
    timeout: float | None = Field(default=None, gt=0, description="seconds before the step is stopped")
    contracts: dict[str, str] = Field(
        default_factory=dict,
        description="input or output parameter -> contract file; inputs are checked before the step, outputs after",
    )
    evaluation: EvaluationSpec | None = Field(default=None, description="evaluation rows and metric function, "
                                                                        "for re-scoring the champion")
    cache: bool = Field(
        default=True,
        description="reuse the outputs of an earlier successful execution with the same cache key (the "
                    "notebook's code cells, the parameters, the content of the inputs, the contract files, the "
                    "lock hash and the kit version) instead of executing the step; false for a step that reads "
                    "a live source (a database, an API, today's date)",
    )

    resources: dict[str, float | str] = Field(
        default_factory=dict,
        description="on a Dask cluster (kit run --cluster): what a worker must offer to run the step, e.g. "
                    "{cpus: 2, memory: 8GiB, gpu: 1}; ignored on this machine")
    retries: int | None = Field(default=None, ge=0, description="on a cluster: times the step runs again on "
                                                                "another worker when its worker is lost (default: "
                                                                "the pipeline's `retries`)")

    @field_validator("resources")
    @classmethod
    def _resource_amounts(cls, value: dict[str, float | str]) -> dict[str, float]:
        import re

        amounts = {}
        for name, amount in value.items():
            if not re.match(NAME_PATTERN, name):
                raise ValueError(f"resource {name!r}: a name such as cpus, memory or gpu")
            if isinstance(amount, str):
                if name != "memory":
                    raise ValueError(f"resource {name!r}: {amount!r} is not a number")
                amount = _bytes(amount)
            if amount <= 0:
                raise ValueError(f"resource {name!r}: {amount!r} must be more than 0")
            amounts[name] = float(amount)
        return amounts

    @model_validator(mode="after")
    def _evaluation_files(self):
        if self.evaluation is not None:
            for key in ("rows", "feature_spec"):
                param = getattr(self.evaluation, key)
                if param is not None and param not in self.inputs and param not in self.outputs:
                    raise ValueError(f"evaluation.{key}: {param!r} is not an input or output parameter of this step")
        return self

    @field_validator("inputs")
    @classmethod
    def _references(cls, value: dict[str, str]) -> dict[str, str]:
        import re

        for param, reference in value.items():
            if not re.match(REFERENCE_PATTERN, reference):
                raise ValueError(f"input {param!r}: {reference!r} is not of the form STEP.OUTPUT")
        return value

    @field_validator("outputs")
    @classmethod
    def _relative_names(cls, value: dict[str, str]) -> dict[str, str]:
        from pathlib import PurePosixPath

        for param, name in value.items():
            path = PurePosixPath(name)
            if not name or path.is_absolute() or ".." in path.parts:
                raise ValueError(f"output {param!r}: {name!r} must be a relative name inside the step's folder")
        return value


def _bytes(text: str) -> int:
    """'8GiB', '500MB', '2e9' -> bytes (Dask's own parser, as a worker reads --memory-limit)."""
    from dask.utils import parse_bytes

    try:
        return parse_bytes(text)
    except (ValueError, TypeError):
        raise ValueError(f"resource 'memory': {text!r} is not an amount of memory such as 8GiB or 500MB") from None


def _gate_type(config: dict[str, Any]) -> dict[str, Any]:
    if not isinstance(config.get("type"), str):
        raise ValueError("a gate needs a `type`, a name such as metric_threshold")
    return config


# A gate's own keys are checked by its type (kit.gates); here only that it names one.
GateConfig = Annotated[dict[str, Any], AfterValidator(_gate_type)]


class SourceSpec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    step: str
    output: str


class PromoteSpec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    alias: str = Field(pattern=NAME_PATTERN, description="the registry alias to move, e.g. edge-champion")
    source: SourceSpec = Field(description="the step output registered as the model version")


class SweepSpec(BaseModel):
    """`kit sweep` settings kept with the pipeline; the command line's flags override them."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    grid: dict[str, Any] = Field(
        default_factory=dict,
        description="STEP.PARAM -> a list of values (or one value); with `search: optuna` also a range "
                    "LOW..HIGH (log scale for floats)")
    metric: str | None = Field(default=None, pattern=REFERENCE_PATTERN,
                               description="STEP.METRIC: the metric a step logs, read from each variant's step run")
    direction: Literal["max", "min"] | None = Field(default=None, description="which way the metric is better")
    random: int | None = Field(default=None, gt=0, description="run N variants sampled from the grid")
    search: Literal["optuna"] | None = Field(default=None, description="optuna: a smarter search over the grid "
                                                                       "(ask-and-tell), `trials` variants")
    trials: int | None = Field(default=None, gt=0, description="with `search: optuna`: how many variants")
    seed: int | None = Field(default=None, description="seed of `random` sampling and of the Optuna sampler")
    jobs: int | None = Field(default=None, gt=0, description="variants run at the same time")

    @field_validator("grid")
    @classmethod
    def _grid_keys(cls, value: dict[str, Any]) -> dict[str, Any]:
        import re

        for key in value:
            if not re.match(REFERENCE_PATTERN, str(key)):
                raise ValueError(f"grid key {key!r} is not of the form STEP.PARAM")
        return value


class PipelineSpec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    extends: str | None = Field(
        default=None,
        description="pipeline file this one builds on, relative to this file: its steps are kept, a step of "
                    "the same name is replaced, new steps are added, other keys except `name` are inherited")
    name: str = Field(pattern=NAME_PATTERN, description="pipeline name; also the MLflow experiment name")
    model: str = Field(min_length=1, description="registered model name this pipeline produces")
    description: str = ""
    kernel: str = Field(default=KERNEL_NAME, description="Jupyter kernel every step runs in")
    timeout: float = Field(default=3600, gt=0, description="default per-step timeout in seconds")
    retries: int = Field(default=1, ge=0, description="on a cluster: times a step runs again on another worker "
                                                      "when its worker is lost (a step's own `retries` wins)")
    steps: list[StepSpec] = Field(min_length=1)
    gates: list[GateConfig] = Field(default_factory=list, description="model gates, checked after every step")
    promote: PromoteSpec | list[PromoteSpec] | None = Field(
        default=None, description="register the model and move an alias (one per target) when every gate passes")
    sweep: SweepSpec | None = Field(default=None, description="`kit sweep` settings: grid, metric, direction, search")

    @property
    def promotions(self) -> list[PromoteSpec]:
        """`promote` as a list: one entry per target alias."""
        if self.promote is None:
            return []
        return list(self.promote) if isinstance(self.promote, list) else [self.promote]
