"""The append-only history of alias moves. MLflow keeps no alias history, so the kit keeps one
in the same store, in two parts:

- the order: every requested move is a version of a hidden registered model per model,
  `<model>.kit-audit` (tagged `kit.kind=audit-log`). The server numbers versions in one
  database transaction, so the log's order is the server's, the same for every machine
  (kit/registry/ordering.py says why that is enough, and what a request means);
- the record a person reads: one run per move in the `kit-audit` experiment (who, why, the
  gate evidence as `evidence.json`), linked from the request's version. It shows in the UI.

Logs written before the order existed (runs with a `kit.audit.seq` tag) are read as the
history before the first request, so an older store keeps its history and its rollbacks.
"""

from __future__ import annotations

import getpass
import os
import socket
import time
import uuid
from dataclasses import dataclass
from typing import Any

from kit import store
from kit.registry.ordering import ANY, Decision, Request, State, replay

EXPERIMENT = "kit-audit"
LOG_SUFFIX = ".kit-audit"  # the hidden registered model that orders a model's moves
LOG_KIND = "audit-log"
APPEND_TRIES = 8  # MLflow's SQL store gives up after 3 colliding version numbers; we try again


@dataclass
class Event:
    seq: int
    action: str  # promote | rollback
    model: str
    alias: str
    from_version: str | None
    to_version: str
    user: str
    reason: str
    forced: bool
    time_ms: int
    run_id: str
    refused: str = ""  # a request refused at its place in the order, and why (not a move)
    attempt: str = ""


@dataclass
class Log:
    """One alias's log as read at one moment: the legacy history, then the decided requests."""
    legacy: list[Event]
    state: State
    details: dict[int, Any]  # request number -> its model version (tags, creation time, run id)

    @property
    def holder(self) -> str | None:
        return self.state.holder

    def events(self, with_refused: bool = False) -> list[Event]:
        found = list(self.legacy)
        for decision in self.state.decisions:
            if decision.applied or with_refused:
                found.append(self._event(decision))
        return found

    def event(self, attempt: str) -> Event | None:
        decision = self.state.decision(attempt)
        return self._event(decision) if decision else None

    def _event(self, decision: Decision) -> Event:
        found = self.details[decision.request.number]
        tags = found.tags
        return Event(
            seq=len(self.legacy) + decision.seq if decision.applied else 0,
            action=decision.request.action, model=tags["kit.audit.model"], alias=tags["kit.audit.alias"],
            from_version=decision.from_version, to_version=decision.to_version or "",
            user=tags.get("kit.audit.user", ""), reason=tags.get("kit.audit.reason", ""),
            forced=tags.get("kit.audit.forced") == "true", time_ms=found.creation_timestamp,
            run_id=found.run_id or "", refused=decision.refused, attempt=decision.request.attempt)


def who(uri: str | None = None) -> str:
    """The authenticated MLflow user against a server with authentication (the server checked
    the password on every write, so that is who did it); else the local user at this host."""
    username = os.environ.get("MLFLOW_TRACKING_USERNAME")
    if username and store.is_server(uri or os.environ.get("MLFLOW_TRACKING_URI", "")):
        return username
    user = os.environ.get("KIT_USER") or getpass.getuser()
    return f"{user}@{socket.gethostname()}"


def new_attempt() -> str:
    """An id for one move, written on its version before the request, so a repair can find it."""
    return uuid.uuid4().hex


def log_name(model: str) -> str:
    return f"{model}{LOG_SUFFIX}"


def is_log(registered_model) -> bool:
    return (registered_model.tags or {}).get("kit.kind") == LOG_KIND


class AuditLog:
    def __init__(self, client, root):
        self.client, self.root = client, root
        self._experiment_id: str | None = None
        self._legacy: dict[str, list[Event]] = {}  # model -> its legacy events (they never change)

    @property
    def experiment_id(self) -> str:
        if self._experiment_id is None:
            self._experiment_id = store.ensure_experiment(self.client, self.root, EXPERIMENT)
        return self._experiment_id

    def read(self, model: str, alias: str) -> Log:
        return self._read(model, alias)[alias]

    def events(self, model: str, alias: str | None = None) -> list[Event]:
        """The moves that took effect, per alias in order."""
        logs = self._read(model, alias)
        return [e for name in sorted(logs) for e in logs[name].events()]

    def history(self, model: str) -> list[Event]:
        """Every move and every refused request, per alias in order."""
        logs = self._read(model, None)
        return [e for name in sorted(logs) for e in logs[name].events(with_refused=True)]

    def aliases(self, model: str) -> dict[str, Log]:
        return self._read(model, None)

    def append(self, model: str, alias: str, action: str, to_version: str | None, expected: str = ANY,
               reason: str = "", forced: bool = False, evidence: dict[str, Any] | None = None,
               attempt: str | None = None) -> str:
        """Append one request at the end of the log; returns its attempt id.

        The run (who, why, evidence) is written first, so a request never points at a
        missing record; a run without a request (the process died in between) is no event."""
        from mlflow.exceptions import MlflowException

        attempt = attempt or new_attempt()
        user = who(self.client.tracking_uri)
        tags = {
            "kit.audit.attempt": attempt,
            "kit.audit.action": action,
            "kit.audit.model": model,
            "kit.audit.alias": alias,
            "kit.audit.to_version": to_version or "",
            "kit.audit.expected": expected,
            "kit.audit.user": user,
            "kit.audit.reason": reason[:5000],
            "kit.audit.forced": str(forced).lower(),
        }
        asked = f"v{to_version}" if to_version else "previous"
        run = self.client.create_run(self.experiment_id, tags={
            **tags, "mlflow.runName": f"{action} {model}@{alias} -> {asked}", "kit.kind": "audit", "mlflow.user": user})
        if evidence:
            self.client.log_dict(run.info.run_id, evidence, "evidence.json")
        self._ensure_log(model)
        for tried in range(APPEND_TRIES):
            try:
                self.client.create_model_version(log_name(model), f"runs:/{run.info.run_id}/event",
                                                 run_id=run.info.run_id, tags=tags, await_creation_for=0,
                                                 description=f"{action} {model}@{alias} -> {asked}")
                return attempt
            except MlflowException as exc:
                # A refusal (permission, bad input) is final; a collision or a lost answer is
                # tried again, unless the request landed after all (the attempt id says so).
                if 400 <= exc.get_http_status_code() < 500 or tried == APPEND_TRIES - 1:
                    raise
                if any(self._attempts(model, alias, attempt)):
                    return attempt
                time.sleep(0.05 * 2 ** tried)
        raise AssertionError("unreachable")

    def finish(self, event: Event, outcome: str) -> None:
        """Note on the run what the request turned out to be (readers derive it; this is for the UI)."""
        if not event.run_id:
            return
        self.client.set_tag(event.run_id, "kit.audit.from_version", event.from_version or "")
        self.client.set_tag(event.run_id, "kit.audit.outcome", outcome)
        self.client.set_terminated(event.run_id, "FINISHED")

    def abort(self, run_id: str) -> None:
        """The command was interrupted after its request: the move stands, its record says so."""
        if run_id:
            self.client.set_terminated(run_id, "KILLED")

    def _ensure_log(self, model: str) -> None:
        from mlflow.exceptions import MlflowException

        try:
            self.client.create_registered_model(
                log_name(model), tags={"kit.kind": LOG_KIND, "kit.audit.model": model},
                description=f"kit's audit log of {model}'s alias moves: each version is one requested move, "
                            "numbered by the server. Do not edit.")
        except MlflowException as exc:
            if exc.error_code != "RESOURCE_ALREADY_EXISTS":
                raise

    def _attempts(self, model: str, alias: str, attempt: str) -> list:
        return self._search(f"name = '{_quote(log_name(model))}' and tags.`kit.audit.attempt` = '{attempt}'")

    def _search(self, query: str) -> list:
        found, token = [], None
        while True:
            page = self.client.search_model_versions(query, max_results=10000, page_token=token)
            found.extend(page)
            token = page.token
            if not token:
                return found

    def _read(self, model: str, alias: str | None) -> dict[str, Log]:
        query = f"name = '{_quote(log_name(model))}'"
        if alias:
            query += f" and tags.`kit.audit.alias` = '{_quote(alias)}'"
        by_alias: dict[str, list] = {}
        for version in self._search(query):
            by_alias.setdefault(version.tags["kit.audit.alias"], []).append(version)
        legacy = self._legacy_events(model)
        names = {alias} if alias else set(by_alias) | {e.alias for e in legacy}
        logs = {}
        for name in names:
            before = [e for e in legacy if e.alias == name]
            found = by_alias.get(name, [])
            requests = [Request(int(v.version), v.tags["kit.audit.attempt"], v.tags["kit.audit.action"],
                                v.tags.get("kit.audit.to_version") or None, v.tags.get("kit.audit.expected", ANY))
                        for v in found]
            logs[name] = Log(before, replay(requests, holders(before)), {int(v.version): v for v in found})
        return logs

    def _legacy_events(self, model: str) -> list[Event]:
        if model not in self._legacy:
            experiment = self.client.get_experiment_by_name(EXPERIMENT)
            runs = [] if experiment is None else self.client.search_runs(
                [experiment.experiment_id], max_results=50000,
                filter_string=f"tags.`kit.audit.model` = '{_quote(model)}' and tags.`kit.audit.seq` LIKE '%'")
            self._legacy[model] = sorted((_legacy_event(r) for r in runs), key=lambda e: (e.alias, e.seq))
        return self._legacy[model]


def holders(events: list[Event]) -> list[str]:
    """The alias's stack of holders: a promotion pushes, a rollback pops back to the one before."""
    stack: list[str] = []
    for event in events:
        if event.refused:
            continue
        if event.action == "rollback":
            if stack:
                stack.pop()
        else:
            stack.append(event.to_version)
    return stack


def _legacy_event(run) -> Event:
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
