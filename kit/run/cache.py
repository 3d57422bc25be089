"""The step cache: what a successful step execution produced, found again by its cache key.

The entries live in the tracking store, so they work against a remote MLflow server and from
another machine: the producing step run keeps its outputs as artifacts (as every step run
does) and carries two tags, `kit.cache.outputs` (each output's name, kind and content hash)
and `kit.cache.key`. A small local index under mlruns/cache/ (one JSON file per key, written
atomically) answers without a store query. Restoring re-hashes every output: a missing or
changed artifact is a miss with a warning, never a wrong output. Two runs filling the same key
at once each write a complete entry of their own (tags on their own run, an atomic replace of
the index file), so the key ends up pointing at one of them, whole.
"""

from __future__ import annotations

import json
import shutil
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from urllib.parse import unquote, urlparse

from kit.files import sha256_tree, write_json_atomic
from kit.project import mlruns_dir

KEY_TAG = "kit.cache.key"
OUTPUTS_TAG = "kit.cache.outputs"
SOURCE_TAG = "kit.cache.source_run"
SOURCE_NOTEBOOK_TAG = "kit.cache.source_notebook"
CACHED_STATUS = "cached"  # kit.status of a step run whose outputs came from the cache
# Bookkeeping of the run itself, not results of the step: not copied to a cached run.
OWN_METRICS = ("duration_s", "peak_memory_mb")
COPIED_TAG_PREFIXES = ("kit.contract.", "kit.data.")


@dataclass(frozen=True)
class RecordedCheck:
    """A contract check the producing run passed, as its tags recorded it (for a version's evidence)."""

    success: bool
    data_sha256: str | None


class Miss(Exception):
    """A cache entry that cannot be used (the message says why)."""


@dataclass
class Entry:
    key: str
    pipeline: str
    step: str
    run_id: str  # the step run that produced the outputs
    artifact_uri: str
    tracking_uri: str
    outputs: dict[str, dict]  # parameter -> {"name", "kind": file|folder, "sha256"}
    created: float  # seconds since the epoch


def cache_dir(root: Path) -> Path:
    return mlruns_dir(root) / "cache"


class Index:
    """The local index: mlruns/cache/entries/KEY.json, one entry per key."""

    def __init__(self, root: Path, tracking_uri: str):
        self.folder = cache_dir(root) / "entries"
        self.tracking_uri = tracking_uri

    def path(self, key: str) -> Path:
        return self.folder / f"{key}.json"

    def read(self, key: str) -> Entry | None:
        """The entry for `key` (None if there is none, or it belongs to another store); Miss if unreadable."""
        path = self.path(key)
        try:
            entry = Entry(**json.loads(path.read_text(encoding="utf-8")))
        except FileNotFoundError:
            return None
        except (OSError, ValueError, TypeError) as exc:
            raise Miss(f"local cache index entry {path} is unreadable ({type(exc).__name__})") from None
        if entry.key != key:
            raise Miss(f"local cache index entry {path} holds another key")
        return entry if entry.tracking_uri == self.tracking_uri else None

    def write(self, entry: Entry) -> None:
        write_json_atomic(self.path(entry.key), asdict(entry))

    def remove(self, key: str) -> None:
        self.path(key).unlink(missing_ok=True)

    def entries(self) -> list[Entry]:
        found = []
        for path in sorted(self.folder.glob("*.json")):
            try:
                found.append(Entry(**json.loads(path.read_text(encoding="utf-8"))))
            except (OSError, ValueError, TypeError):
                continue
        return found


def find_in_store(client, experiment_id: str, key: str, tracking_uri: str) -> Entry | None:
    """The latest finished step run that produced `key`, from the tracking store."""
    runs = client.search_runs([experiment_id], filter_string=f"tags.`{KEY_TAG}` = '{key}' AND tags.`kit.status` = 'finished'",
                              order_by=["attributes.start_time DESC"], max_results=5)
    for run in runs:
        entry = entry_of(run, tracking_uri)
        if entry is not None:
            return entry
    return None


def entry_of(run, tracking_uri: str) -> Entry | None:
    tags = run.data.tags
    try:
        outputs = json.loads(tags[OUTPUTS_TAG])
    except (KeyError, ValueError):
        return None
    return Entry(key=tags[KEY_TAG], pipeline=tags.get("kit.pipeline", ""), step=tags.get("kit.step", ""),
                 run_id=run.info.run_id, artifact_uri=run.info.artifact_uri, tracking_uri=tracking_uri,
                 outputs=outputs, created=run.info.start_time / 1000)


def describe_outputs(outputs: dict[str, Path], hash_of) -> dict[str, dict]:
    return {param: {"name": path.name, "kind": "folder" if path.is_dir() else "file", "sha256": hash_of(path)}
            for param, path in outputs.items()}


def record(client, run_id: str, entry: Entry, index: Index) -> None:
    """Make a finished step run findable by its key: outputs tag first, the key last."""
    from mlflow.entities import RunTag

    client.log_batch(run_id, tags=[RunTag(OUTPUTS_TAG, json.dumps(entry.outputs, sort_keys=True)),
                                   RunTag("kit.pipeline", entry.pipeline)])
    client.set_tag(run_id, KEY_TAG, entry.key)
    index.write(entry)


def restore(entry: Entry, outputs: dict[str, Path]) -> dict[str, str]:
    """Copy the entry's outputs to `outputs` (parameter -> path) and check their hashes.
    Returns parameter -> hash; raises Miss (after removing what it copied) if anything is off."""
    hashes = {}
    try:
        for param, path in outputs.items():
            recorded = entry.outputs.get(param)
            if recorded is None:
                raise Miss(f"the entry has no output {param!r}")
            _fetch(entry, param, recorded, path)
            actual = sha256_tree(path)
            if actual != recorded["sha256"]:
                raise Miss(f"output {param!r} does not match its recorded hash (changed or damaged in the store)")
            hashes[param] = actual
    except Miss:
        for path in outputs.values():
            _remove(path)
        raise
    return hashes


def _fetch(entry: Entry, param: str, recorded: dict, target: Path) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    _remove(target)
    parsed = urlparse(entry.artifact_uri)
    if parsed.scheme in ("", "file"):  # the embedded store: copy straight from the artifact folder
        source = Path(unquote(parsed.path)) / "outputs" / param
    else:  # a server: download through MLflow into a temporary folder first
        from mlflow.artifacts import download_artifacts

        staging = Path(tempfile.mkdtemp(prefix="kit-cache-", dir=target.parent))
        try:
            source = Path(download_artifacts(run_id=entry.run_id, artifact_path=f"outputs/{param}", dst_path=str(staging),
                                             tracking_uri=entry.tracking_uri))
        except Exception as exc:  # an artifact the server does not have
            shutil.rmtree(staging, ignore_errors=True)
            raise Miss(f"output {param!r} could not be fetched from the store: {type(exc).__name__}: {exc}") from None
        try:
            _copy(recorded, source, target, param)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        return
    _copy(recorded, source, target, param)


def _copy(recorded: dict, source: Path, target: Path, param: str) -> None:
    if recorded["kind"] == "file":
        candidate = source / recorded["name"] if source.is_dir() else source
        if not candidate.is_file():
            raise Miss(f"output {param!r} is missing from the store ({candidate})")
        shutil.copyfile(candidate, target)
    elif source.is_dir():
        shutil.copytree(source, target)
    else:  # an empty folder logs no artifact at all
        target.mkdir(parents=True)


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    elif path.exists() or path.is_symlink():
        path.unlink()


def log_cached(client, run_id: str, entry: Entry) -> list[tuple[str, str, RecordedCheck]]:
    """Make a cached step run look like the run that produced its outputs, to gates and the UI:
    the producer's metrics and contract tags, and where they came from. Returns the producer's
    contract checks as (direction, parameter, check), as a step's result holds them."""
    from mlflow.entities import Metric, RunTag

    now = int(time.time() * 1000)
    tags = [RunTag(SOURCE_TAG, entry.run_id), RunTag(KEY_TAG, entry.key),
            RunTag(SOURCE_NOTEBOOK_TAG, f"runs:/{entry.run_id}/notebook"), RunTag("kit.status", CACHED_STATUS)]
    metrics = []
    try:
        source = client.get_run(entry.run_id)
    except Exception:  # the producer was deleted: its outputs were verified, its metrics are gone
        source = None
    if source is not None:
        metrics = [Metric(k, v, now, 0) for k, v in source.data.metrics.items() if k not in OWN_METRICS]
        tags += [RunTag(k, v) for k, v in source.data.tags.items() if k.startswith(COPIED_TAG_PREFIXES)]
    client.log_batch(run_id, metrics=metrics, tags=tags)
    found = source.data.tags if source is not None else {}
    prefix = "kit.contract."
    return [("cached", key[len(prefix):], RecordedCheck(value == "passed", found.get(f"kit.data.{key[len(prefix):]}.sha256")))
            for key, value in found.items() if key.startswith(prefix)]


def producer_runs(client) -> list:
    """Every step run in the store that is a cache entry (finished, with a key), newest first."""
    from mlflow.entities import ViewType

    experiments = [e.experiment_id for e in client.search_experiments(view_type=ViewType.ACTIVE_ONLY)]
    if not experiments:
        return []
    return client.search_runs(experiments, filter_string=f"tags.`{KEY_TAG}` LIKE '%' AND tags.`kit.status` = 'finished'",
                              order_by=["attributes.start_time DESC"], max_results=50000)


def listing(root: Path) -> str:
    """`kit cache list`: one line per entry in the store."""
    from kit import store

    client = store.client(root)
    runs = producer_runs(client)
    if not runs:
        return "the cache is empty (no step run in the store carries a cache key)"
    index = Index(root, store.tracking_uri(root))
    now = time.time()
    lines = [f"{'pipeline':<16} {'step':<16} {'key':<12} {'run':<32} {'age':>8}  outputs  local"]
    for run in runs:
        tags = run.data.tags
        try:
            outputs = json.loads(tags.get(OUTPUTS_TAG, "{}"))
        except ValueError:
            outputs = {}
        local = index.path(tags[KEY_TAG]).is_file()
        lines.append(f"{tags.get('kit.pipeline', ''):<16} {tags.get('kit.step', ''):<16} {tags[KEY_TAG][:12]:<12} "
                     f"{run.info.run_id:<32} {_age(now - run.info.start_time / 1000):>8}  {', '.join(outputs) or '-':<7}  "
                     f"{'yes' if local else 'no'}")
    lines.append(f"{len(runs)} entries in {store.tracking_uri(root)}")
    return "\n".join(lines)


def prune(root: Path, older_than_days: float) -> tuple[int, int]:
    """Forget entries made more than `older_than_days` ago: their key tag is removed from the
    producing run (the run and its artifacts stay, as history) and the local index entry is
    deleted. Returns (entries pruned, entries kept)."""
    from kit import store

    client = store.client(root)
    index = Index(root, store.tracking_uri(root))
    cutoff = time.time() - older_than_days * 86400
    pruned = kept = 0
    for run in producer_runs(client):
        if run.info.start_time / 1000 < cutoff:
            key = run.data.tags[KEY_TAG]
            client.delete_tag(run.info.run_id, KEY_TAG)
            entry = _quiet_read(index, key)
            if entry is None or entry.run_id == run.info.run_id:
                index.remove(key)
            pruned += 1
        else:
            kept += 1
    for entry in index.entries():  # local entries whose run is gone or was pruned above
        if entry.created < cutoff:
            index.remove(entry.key)
    return pruned, kept


def _quiet_read(index: Index, key: str) -> Entry | None:
    try:
        return index.read(key)
    except Miss:
        return None


def _age(seconds: float) -> str:
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds / size:.0f}{unit}"
    return f"{seconds:.0f}s"
