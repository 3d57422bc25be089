"""The append-only history of alias moves. MLflow keeps no alias history, so every
promotion and rollback is one run in the `kit-audit` experiment of the same store: it
survives with the store, and shows in the MLflow UI."""

from __future__ import annotations

import getpass
import os
import socket
from dataclasses import dataclass
from typing import Any

from kit import store
from kit.checkpoint import checkpoint

EXPERIMENT = "kit-audit"


@dataclass
class Event:
    seq: int
    action: str  # promote | rollback | repair
    model: str
    alias: str
    from_version: str | None
    to_version: str
    user: str
    reason: str
    forced: bool
    time_ms: int
    run_id: str


def who() -> str:
    user = os.environ.get("KIT_USER") or getpass.getuser()
    return f"{user}@{socket.gethostname()}"


class AuditLog:
    def __init__(self, client, root):
        self.client, self.root = client, root
        self.experiment_id = store.ensure_experiment(client, root, EXPERIMENT)

    def events(self, model: str, alias: str | None = None) -> list[Event]:
        query = f"tags.`kit.audit.model` = '{_quote(model)}'"
        if alias:
            query += f" and tags.`kit.audit.alias` = '{_quote(alias)}'"
        runs = self.client.search_runs([self.experiment_id], filter_string=query, max_results=50000)
        events = [_event(r) for r in runs]
        return sorted(events, key=lambda e: (e.alias, e.seq))

    def record(self, action: str, model: str, alias: str, from_version: str | None, to_version: str,
               reason: str, forced: bool = False, evidence: dict[str, Any] | None = None) -> Event:
        """Append one event. Call it holding the registry lock, so `seq` is unique."""
        seq = len(self.events(model, alias)) + 1
        arrow = f"v{from_version} -> v{to_version}" if from_version else f"(none) -> v{to_version}"
        tags = {
            "mlflow.runName": f"{action} {model}@{alias} {arrow}",
            "kit.kind": "audit",
            "kit.audit.seq": f"{seq:08d}",
            "kit.audit.action": action,
            "kit.audit.model": model,
            "kit.audit.alias": alias,
            "kit.audit.from_version": from_version or "",
            "kit.audit.to_version": to_version,
            "kit.audit.user": who(),
            "kit.audit.reason": reason,
            "kit.audit.forced": str(forced).lower(),
        }
        run = self.client.create_run(self.experiment_id, tags=tags)
        try:
            checkpoint("audit", f"{action} {model}@{alias} {arrow}")
            if evidence:
                self.client.log_dict(run.info.run_id, evidence, "evidence.json")
        except BaseException:  # interrupted mid-write: the event stands (the alias moved), but says so
            self.client.set_terminated(run.info.run_id, "KILLED")
            raise
        self.client.set_terminated(run.info.run_id, "FINISHED")
        return _event(self.client.get_run(run.info.run_id))


def holders(events: list[Event]) -> list[str]:
    """The alias's stack of holders: a promotion pushes, a rollback pops back to the one before."""
    stack: list[str] = []
    for event in events:
        if event.action == "rollback":
            if stack:
                stack.pop()
        else:
            stack.append(event.to_version)
    return stack


def _event(run) -> Event:
    tags = run.data.tags
    return Event(
        seq=int(tags["kit.audit.seq"]),
        action=tags["kit.audit.action"],
        model=tags["kit.audit.model"],
        alias=tags["kit.audit.alias"],
        from_version=tags.get("kit.audit.from_version") or None,
        to_version=tags["kit.audit.to_version"],
        user=tags.get("kit.audit.user", ""),
        reason=tags.get("kit.audit.reason", ""),
        forced=tags.get("kit.audit.forced") == "true",
        time_ms=run.info.start_time,
        run_id=run.info.run_id,
    )


def _quote(text: str) -> str:
    return text.replace("'", "\\'")
