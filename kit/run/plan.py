"""Everything checked before a kernel starts: the pipeline file, parameters, gate configs,
contract files."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from kit import pipeline as pipeline_module
from kit.errors import SpecError
from kit.pipeline import Pipeline


@dataclass
class Plan:
    pipeline: Pipeline
    gates: list = field(default_factory=list)  # kit.gates.Gate objects, in file order
    contracts: dict[tuple[str, str], Path] = field(default_factory=dict)  # (step, parameter) -> contract file

    @property
    def name(self) -> str:
        return self.pipeline.name


def load_plan(path: str | Path, overrides: list | None = None, root: Path | None = None) -> Plan:
    pipeline = pipeline_module.load(path, root=root, overrides=overrides)
    problems, parsed = [], []
    for index, config in enumerate(pipeline.spec.gates):
        from kit import gates  # here: it imports numpy, and most pipelines without gates need none of it

        try:
            parsed.append(gates.parse(config, pipeline.where("gates", index)))
        except SpecError as exc:
            problems.append(str(exc))
    for index, gate in enumerate(parsed):
        step = getattr(gate, "step", None)
        if step is not None and step not in pipeline.steps:
            problems.append(f"{pipeline.where('gates', index)}: gate {gate.label!r} refers to unknown step {step!r}")
    for step in pipeline.steps.values():
        if step.spec.evaluation is not None:
            from kit.gates import metrics

            if step.spec.evaluation.metric not in metrics.known():
                problems.append(f"{pipeline.where('steps', [s.name for s in pipeline.spec.steps].index(step.name), 'evaluation', 'metric')}: "
                                f"unknown metric function {step.spec.evaluation.metric!r} (known: "
                                f"{', '.join(sorted(metrics.known()))})")
    labels = [g.label for g in parsed]
    for index, label in enumerate(labels):
        if labels.index(label) != index:
            problems.append(f"{pipeline.where('gates', index)}: two gates named {label!r}; give one a `name`")

    contracts = {}
    for step in pipeline.steps.values():
        for param, contract in step.spec.contracts.items():
            contracts[(step.name, param)] = pipeline.root / contract
    for contract_path in sorted(set(contracts.values())):
        problem = _contract_problem(contract_path, pipeline.root)
        if problem:
            problems.append(problem)
    if problems:
        raise SpecError("\n".join(problems))
    return Plan(pipeline=pipeline, gates=parsed, contracts=contracts)


def _contract_problem(path: Path, root: Path) -> str | None:
    """Why the contract file cannot be used (None: it can). Checking it imports Great
    Expectations, ~3 s before a run's first kernel could start; a file that passed is
    remembered by its content, the environment's lock and the kit version (a marker file
    under mlruns/cache/contracts), so an unchanged contract is not checked again."""
    import hashlib

    from kit.contracts import load_contract
    from kit.files import sha256_file
    from kit.run.cache import cache_dir
    from kit.run.cache_session import kit_version
    from kit.run.provenance import lock_hash

    try:
        content = sha256_file(path)
    except OSError:
        content = None  # load_contract says what is wrong with the file
    marker = None
    if content is not None:
        digest = hashlib.sha256(f"{content} {lock_hash(root)} {kit_version()}".encode()).hexdigest()
        marker = cache_dir(root) / "contracts" / digest
        if marker.is_file():
            return None
    try:
        load_contract(path)
    except SpecError as exc:
        return str(exc)
    if marker is not None:
        try:
            marker.parent.mkdir(parents=True, exist_ok=True)
            marker.write_text(f"{path}\n")
        except OSError:  # a read-only project: checked again next time
            pass
    return None
