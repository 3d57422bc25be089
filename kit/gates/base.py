"""The gate protocol: a gate is a pydantic model (its pipeline-file config) with `evaluate`."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, ClassVar

from pydantic import BaseModel, ConfigDict

from kit.files import sha256_tree


@dataclass
class GateResult:
    name: str
    type: str
    passed: bool
    figure: float | None  # the measured value the gate judged
    threshold: str  # what it had to be, in words: ">= 0.9", "<= 5000000 bytes"
    detail: str = ""  # one sentence: why it passed or failed, by how much
    evidence: dict[str, Any] = field(default_factory=dict)  # gate-specific fields of gates/gates.json
    seconds: float | None = None  # how long the gate took (set by evaluate_all)

    def to_dict(self) -> dict[str, Any]:
        found = {k: v for k, v in self.__dict__.items() if k != "evidence"}
        return {**found, **self.evidence}


@dataclass
class Champion:
    """The model version that holds the target alias now (the regression baseline)."""

    version: str
    metrics: dict[str, float]  # "step.metric" -> value, from the version's evidence tags
    files: Callable[[], Any] | None = None  # downloads the version -> kit.gates.scorers.ModelFiles
    identity: Any = None  # what its re-scores depend on: its files' content hashes (or version and source)


@dataclass
class Evaluation:
    """An evaluation step's declaration (`evaluation:` in the pipeline file), with paths resolved."""

    rows: Path  # raw columns plus the label
    label: str
    metric: str  # a name in kit.gates.metrics
    feature_spec: Path | None = None
    labels: list[Any] | None = None


@dataclass
class GateContext:
    """What gates may look at; built by the runner after every step finished."""

    model_name: str
    alias: str | None
    outputs: dict[str, dict[str, Path]]  # step -> output parameter -> path
    metrics: Callable[[str], dict[str, float]]  # step -> its run's metrics
    champion: Champion | None  # the holder of `alias` (the first target's alias)
    candidate: Path | None  # the file or folder that would be registered and deployed (first target)
    champions: dict[str, Champion | None] = field(default_factory=dict)  # every target alias -> its holder
    extras: dict[str, Any] = field(default_factory=dict)  # for target gates (e.g. the bundle folder)
    evaluations: dict[str, Evaluation] = field(default_factory=dict)  # step -> its declared evaluation
    candidates: dict[str, Any] = field(default_factory=dict)  # alias -> the candidate's ModelFiles
    content_hash: Callable[[Path], str] = sha256_tree  # the runner's memo of the hashes it already took
    memo: Any = None  # kit.gates.reuse.Memo: earlier passed results by key (None: measure every gate)


class StepOutput(BaseModel):
    """In a gate's config: `{step: NAME, output: PARAM}`, a file or folder a step wrote."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    step: str
    output: str

    def path(self, context: GateContext) -> Path | None:
        return context.outputs.get(self.step, {}).get(self.output)


class Gate(BaseModel):
    """Base of every gate. Subclasses set `type` and declare their config as fields."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    type: ClassVar[str]
    # Whether a passed result may be reused by a later run with the same inputs (kit.gates.reuse):
    # None: judged afresh every run; "pure": a function of the config and `reuse_parts`;
    # "measured": also of the machine (latency).
    reuse: ClassVar[str | None] = None

    name: str | None = None

    @property
    def label(self) -> str:
        return self.name or self.default_name()

    def default_name(self) -> str:
        return self.type

    def evaluate(self, context: GateContext) -> GateResult:  # pragma: no cover - abstract
        raise NotImplementedError

    def judges_holder(self, alias: str, default_alias: str | None) -> bool:
        """True when the result depends on who holds `alias` (then it is judged again if the holder
        changed before the alias could move)."""
        return False

    def reuse_parts(self, context: GateContext) -> dict[str, Any] | None:
        """What the result depends on besides the config: by default the content of every step
        output the config names (None: something is missing, do not reuse)."""
        parts = {}
        for name in type(self).model_fields:
            value = getattr(self, name)
            if isinstance(value, StepOutput):
                path = value.path(context)
                if path is None or not Path(path).exists():
                    return None
                parts[name] = context.content_hash(Path(path))
        return parts

    def result(self, passed: bool, figure: float | None, threshold: str, detail: str = "") -> GateResult:
        return GateResult(self.label, self.type, passed, figure, threshold, detail)


KIT_METRICS = ("duration_s", "peak_memory_mb")  # what the runner logs on every step run


def no_metric_detail(context: GateContext, step: str, metric: str) -> str:
    """Why a gate has no figure: name the metrics the step did log, so a typo shows."""
    logged = sorted(m for m in context.metrics(step) if m not in KIT_METRICS)
    return f"step {step!r} logged no metric {metric!r}; it logged: {', '.join(logged) if logged else 'none'}"
