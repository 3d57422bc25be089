"""The cache's decisions for one `kit run`: which steps are forced (`--force`), which are
selected (`--only`), each step's key, whether an entry serves it, and, before anything
starts, whether the whole pipeline is already up to date.

Keys are computed as the run goes, from the real content of each step's inputs (executed or
restored), so a step downstream of a re-executed one is still served from the cache when the
re-execution produced the same bytes.
"""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from kit.errors import SpecError
from kit.files import sha256_tree, write_json_atomic
from kit.run import cache
from kit.run.cache_key import step_key

ALL = "*"  # `--force` without a step name


@dataclass(frozen=True)
class CacheOptions:
    """What the user asked for on the command line."""

    force: tuple[str, ...] = ()  # step names, or ALL
    only: tuple[str, ...] = ()

    @property
    def partial(self) -> bool:
        return bool(self.only)


def check_options(pipeline, options: CacheOptions) -> None:
    """Unknown step names in --force or --only: exit 2 before anything starts."""
    for flag, names in (("--force", options.force), ("--only", options.only)):
        unknown = [n for n in names if n != ALL and n not in pipeline.steps]
        if unknown:
            raise SpecError(f"{flag} {', '.join(unknown)}: no such step in {pipeline.path.name} "
                            f"(steps: {', '.join(pipeline.steps)})")


def ancestors(pipeline, names) -> set[str]:
    """Every step the named steps need, directly or through others (not the named ones)."""
    found: set[str] = set()
    frontier = set(names)
    while frontier:
        frontier = {n for name in frontier for n in pipeline.steps[name].needs} - found
        found |= frontier
    return found - set(names)


def kit_version() -> str:
    import kit

    return kit.__version__


@dataclass
class Hit:
    entry: cache.Entry
    key: str


@dataclass
class Session:
    """Created by the runner once the pipeline run exists; `client` is its MLflow client."""

    plan: object
    client: object
    experiment_id: str
    tracking_uri: str
    options: CacheOptions = field(default_factory=CacheOptions)
    warn: object = None  # callable(message); stderr by default

    def __post_init__(self) -> None:
        from kit.run.provenance import lock_hash

        self.pipeline = self.plan.pipeline
        root = self.pipeline.root
        self.index = cache.Index(root, self.tracking_uri)
        self.lock = lock_hash(root)
        self.version = kit_version()
        self.keys: dict[str, str] = {}
        self.hashes: dict[Path, str] = {}  # content hash of every input or output seen, by path
        check_options(self.pipeline, self.options)
        forced = set(self.options.force)
        if ALL in forced:
            forced = set(self.pipeline.steps)
        for name in list(forced):
            forced |= self.pipeline.dependents(name)
        self.forced = forced | set(self.options.only)  # --only: run these, whatever the cache holds
        self.selected = (set(self.options.only) | ancestors(self.pipeline, self.options.only)
                         if self.options.only else set(self.pipeline.steps))
        self.warn = self.warn or (lambda message: print(f"kit run: warning: {message}", file=sys.stderr, flush=True))

    # -- keys ------------------------------------------------------------------------------

    def hash_of(self, path: Path) -> str:
        if path not in self.hashes:
            self.hashes[path] = sha256_tree(path)
        return self.hashes[path]

    def key(self, step, input_hashes: dict[str, str]) -> str:
        contracts = {param: self.plan.contracts[(step.name, param)] for param in step.spec.contracts}
        return step_key(step, kernel=self.pipeline.spec.kernel, inputs=input_hashes, contracts=contracts,
                        lock=self.lock, kit_version=self.version)

    def lookup(self, step, key: str) -> cache.Entry | None:
        """The entry for `key`: the local index first, then the tracking store."""
        try:
            entry = self.index.read(key)
        except cache.Miss as miss:
            self.warn(f"step {step.name!r}: {miss}; running the step")
            self.index.remove(key)
            entry = None
        if entry is None:
            entry = cache.find_in_store(self.client, self.experiment_id, key, self.tracking_uri)
            if entry is not None:
                self.index.write(entry)
        return entry

    def gate_memo(self, run_id: str):
        """Earlier passed gate results for the gates to reuse (None under `--force`: every gate
        is measured again)."""
        from kit.gates import reuse

        if ALL in self.options.force:
            return None
        return reuse.Memo(reuse.folder(cache.cache_dir(self.pipeline.root)), run_id,
                          {"lock": self.lock, "kit": self.version})

    # -- during the run --------------------------------------------------------------------

    def try_restore(self, step, inputs: dict[str, Path], outputs: dict[str, Path]) -> Hit | None:
        """Restore the step's outputs from the cache if an entry serves it; None: run it."""
        if not step.spec.cache:
            return None
        key = self.keys[step.name] = self.key(step, {p: self.hash_of(path) for p, path in inputs.items()})
        if step.name in self.forced:
            return None
        entry = self.lookup(step, key)
        if entry is None:
            return None
        try:
            hashes = cache.restore(entry, outputs)
        except cache.Miss as miss:
            self.warn(f"step {step.name!r}: cache entry from run {entry.run_id} not used: {miss}; running the step")
            self.index.remove(key)
            return None
        for param, path in outputs.items():
            self.hashes[path] = hashes[param]
        return Hit(entry, key)

    def log_cached(self, run_id: str, hit: Hit) -> list:
        return cache.log_cached(self.client, run_id, hit.entry)

    def record(self, step, run_id: str, outputs: dict[str, Path]) -> None:
        """A step executed successfully: make its outputs an entry under its key."""
        if not step.spec.cache or step.name not in self.keys:
            return
        try:
            run = self.client.get_run(run_id)
            entry = cache.Entry(key=self.keys[step.name], pipeline=self.pipeline.name, step=step.name, run_id=run_id,
                                artifact_uri=run.info.artifact_uri, tracking_uri=self.tracking_uri,
                                outputs=cache.describe_outputs(outputs, self.hash_of), created=time.time())
            cache.record(self.client, run_id, entry, self.index)
        except Exception as exc:  # the step's results are tracked; only reusing them later is lost
            self.warn(f"step {step.name!r}: its outputs could not be added to the cache: {type(exc).__name__}: {exc}")

    def check_only(self) -> None:
        """--only: every step the selected ones need must be served by the cache (exit 2 otherwise)."""
        if not self.options.only:
            return
        upstream = ancestors(self.pipeline, self.options.only)
        predicted = predict(self.pipeline, lambda step, inputs: self.key(step, inputs),
                            lambda step, key: self.lookup(step, key))
        missing = [name for name in self.pipeline.steps if name in upstream and predicted.get(name) is None]
        if missing:
            first = missing[0]
            why = ("it has `cache: false`" if not self.pipeline.steps[first].spec.cache else
                   "no cached result matches its code, parameters, inputs, contracts and environment")
            raise SpecError(f"--only {' '.join(self.options.only)}: upstream step {first!r} is not in the cache "
                            f"({why}); add it to --only or run the pipeline without --only")

    def record_pipeline(self, run_id: str, workspace: Path) -> None:
        """Every step done or cached, under a key: a re-run with the same keys is up to date."""
        if self.options.partial or set(self.keys) != set(self.pipeline.steps):
            return
        if not all(step.spec.cache for step in self.pipeline.steps.values()):
            return
        write_json_atomic(_pipeline_record(self.pipeline), {
            "tracking_uri": self.tracking_uri, "run_id": run_id, "workspace": str(workspace),
            "keys": self.keys, "finished": time.time()})


def predict(pipeline, key_of, lookup) -> dict[str, cache.Entry | None]:
    """Before anything runs: the entry that would serve each step, as far as entries tell
    (a step whose upstream is not served cannot be predicted: None)."""
    predicted: dict[str, cache.Entry | None] = {}
    for name, step in pipeline.steps.items():
        predicted[name] = None
        if not step.spec.cache or any(predicted.get(n) is None for n in step.needs):
            continue
        try:
            inputs = {param: predicted[up].outputs[out]["sha256"] for param, (up, out) in step.inputs.items()}
        except KeyError:
            continue
        predicted[name] = lookup(step, key_of(step, inputs))
    return predicted


def _pipeline_record(pipeline) -> Path:
    return cache.cache_dir(pipeline.root) / "pipelines" / f"{pipeline.name}.json"


def up_to_date(plan) -> dict | None:
    """Before MLflow is even imported: the last recorded run of this pipeline if it had every
    step's current key (so re-running would restore everything and execute nothing) and the
    pipeline has no gates or promotion (which depend on the registry's current state)."""
    import json

    pipeline = plan.pipeline
    if plan.gates or pipeline.spec.promotions or not all(s.spec.cache for s in pipeline.steps.values()):
        return None
    try:
        record = json.loads(_pipeline_record(pipeline).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    predicted, keys, uri = _local_prediction(plan)
    if record.get("tracking_uri") != uri:
        return None
    if any(entry is None for entry in predicted.values()) or keys != record.get("keys"):
        return None
    return record


def expected_executions(plan, options: CacheOptions) -> int:
    """How many steps this run will probably execute, told by the local index alone (before MLflow
    loads): the runner starts that many kernels ahead of the steps, none for a fully cached run."""
    pipeline = plan.pipeline
    if options.only:
        return len(set(options.only))
    if ALL in options.force:
        return len(pipeline.steps)
    forced = set(options.force)
    for name in list(forced):
        forced |= pipeline.dependents(name)
    predicted, _, _ = _local_prediction(plan)
    return sum(1 for name, entry in predicted.items() if entry is None or name in forced)


def predicted_entries(plan) -> dict[str, cache.Entry | None]:
    """Each step's entry in the local index, as far as the index tells (see `predict`)."""
    return _local_prediction(plan)[0]


def _local_prediction(plan) -> tuple[dict[str, cache.Entry | None], dict[str, str], str]:
    """Each step's entry in the local index as far as the index tells, the keys computed, the store."""
    from kit.run.provenance import lock_hash
    from kit.store import tracking_uri

    pipeline = plan.pipeline
    uri = tracking_uri(pipeline.root)
    index, lock, version, keys = cache.Index(pipeline.root, uri), lock_hash(pipeline.root), kit_version(), {}

    def key_of(step, inputs):
        contracts = {param: plan.contracts[(step.name, param)] for param in step.spec.contracts}
        keys[step.name] = step_key(step, kernel=pipeline.spec.kernel, inputs=inputs, contracts=contracts, lock=lock,
                                   kit_version=version)
        return keys[step.name]

    def lookup(step, key):
        try:
            return index.read(key)
        except cache.Miss:
            return None

    return predict(pipeline, key_of, lookup), keys, uri
