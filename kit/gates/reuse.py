"""Reusing a gate's result: a gate whose every input is the same as when it last passed is not
measured again, it is judged from that measurement.

Gates always run (they depend on the registry's current state): every gate is judged on every
run, and a gate that reads the registry has the holder it compares with in its key, so a new
champion means a new measurement. What may be reused is the expensive part of a gate that is a
function of its inputs: re-scoring the champion on the same rows, Node parity on the same bundle,
latency of the same model bytes. A gate opts in with `Gate.reuse` ("pure": a function of its
config and inputs; "measured": also of the machine, whose name, processor and core count go in
the key). The key holds the gate's type and config, the content hash of every file it reads
(`Gate.reuse_parts`), the environment's lock hash and the kit version.

Only passed results are kept: a failed latency round may have been the machine's noise, and a
failed pure gate is measured again after whatever the user changed. `kit run --force` measures
every gate again. The entries are small JSON files under mlruns/cache/gates/ (written atomically;
an unreadable one is a miss); a machine without them measures, which is always correct.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import time
from dataclasses import dataclass, fields
from pathlib import Path

from kit.files import write_json_atomic
from kit.gates.base import Gate, GateContext, GateResult

KEY_VERSION = 1  # bump when what goes into a key changes


@dataclass
class Memo:
    """The gate results of earlier runs of this project, by key."""

    folder: Path
    run_id: str  # the pipeline run judging now: recorded with what it measures
    environment: dict  # lock hash, kit version

    def key(self, gate: Gate, context: GateContext) -> str | None:
        if gate.reuse is None:
            return None
        parts = gate.reuse_parts(context)
        if parts is None:
            return None
        whole = {"key_version": KEY_VERSION, "type": gate.type, "config": gate.model_dump(mode="json"),
                 "inputs": parts, **self.environment}
        if gate.reuse == "measured":
            whole["machine"] = machine()
        text = json.dumps(whole, sort_keys=True, default=repr, ensure_ascii=False)
        return hashlib.sha256(text.encode()).hexdigest()

    def find(self, key: str, gate: Gate) -> GateResult | None:
        try:
            entry = json.loads((self.folder / f"{key}.json").read_text(encoding="utf-8"))
            if entry["key"] != key:
                return None
            result = GateResult(**entry["result"])
        except (OSError, ValueError, TypeError, KeyError):
            return None  # missing or unreadable: measure
        same = "inputs, settings and machine" if gate.reuse == "measured" else "inputs and settings"
        result.detail = f"reused from run {entry['run_id']} (same {same}): {result.detail}"
        result.evidence = {**result.evidence, "reused_from_run": entry["run_id"]}
        return result

    def keep(self, key: str, result: GateResult) -> None:
        if not result.passed:
            return
        stored = {f.name: getattr(result, f.name) for f in fields(GateResult) if f.name != "seconds"}
        try:
            write_json_atomic(self.folder / f"{key}.json", {"key": key, "run_id": self.run_id, "created": time.time(),
                                                            "result": stored})
        except (OSError, TypeError, ValueError):
            pass  # a result that cannot be kept is measured again next time


def folder(mlruns_cache: Path) -> Path:
    return mlruns_cache / "gates"


def prune(where: Path, older_than_s: float) -> int:
    """`kit cache prune`: forget results kept more than `older_than_s` seconds ago (and unreadable
    ones). Returns how many were removed."""
    cutoff, removed = time.time() - older_than_s, 0
    for path in sorted(where.glob("*.json")):
        try:
            created = float(json.loads(path.read_text(encoding="utf-8"))["created"])
        except (OSError, ValueError, TypeError, KeyError):
            created = 0.0
        if created < cutoff:
            path.unlink(missing_ok=True)
            removed += 1
    return removed


def count(where: Path) -> int:
    return sum(1 for _ in where.glob("*.json"))


def machine() -> dict:
    """What a latency measurement is a property of, besides the model."""
    return {"node": platform.node(), "machine": platform.machine(), "processor": _cpu_model(),
            "cores": os.cpu_count()}


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor()
