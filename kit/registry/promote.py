"""Moving an alias: promotion (gated, or forced and recorded so), rollback, and repair of a
move that was interrupted.

No lock: a move is a request appended to the audit log, whose order the server assigns
(kit/registry/ordering.py argues why that keeps every machine consistent). The alias is
then written to the holder the whole log implies, and the log re-read until it did not
change under that write (`_follow`), so the last alias write agrees with the log's head.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from kit import store
from kit.checkpoint import checkpoint
from kit.errors import GateFailure
from kit.registry import versions
from kit.registry.audit import AuditLog, Event, Log, new_attempt
from kit.registry.errors import HolderChanged, RegistryError
from kit.registry.ordering import ANY

UNCHECKED = object()  # promote whoever holds the alias now (a person's `kit promote`)
ATTEMPT_TAG = "kit.promotion.attempt"  # on a version being promoted: its request's attempt id
STARTED_TAG = "kit.promotion.started_ms"
IN_FLIGHT_MS = 120_000  # a pending promotion younger than this, not yet in the log, may still be appended
FOLLOW_ROUNDS = 50  # alias writes before leaving the rest to the next move (only under a storm of moves)


class Registry:
    def __init__(self, root: Path, client=None):
        self.root = root
        self.client = client or store.client(root)
        self.audit = AuditLog(self.client, root)

    def promote(self, name: str, version: str, alias: str, reason: str = "", force: bool = False,
                evidence: dict[str, Any] | None = None, expected_holder: str | None | object = UNCHECKED,
                repaired: bool = False) -> Event:
        """Point `alias` at `version`. Refuses a version without passed gates unless forced.

        With `expected_holder` (a version, or None for "no holder"), a compare-and-set: the alias
        moves only if it still points there at this move's place in the log, else HolderChanged
        says who holds it (and the refused request stays in the log). `repaired`: the caller has
        just repaired the alias (no second round of registry reads)."""
        target = versions.get(self.client, name, version)
        if target.gates != "passed" and not force:
            why = "its gates failed" if target.gates == "failed" else "it has no gate evidence"
            raise GateFailure(f"{name} v{version} is not promoted to {alias!r}: {why} "
                              f"(see `kit models {name}`); to override, add --force --reason TEXT")
        if force and not reason.strip():
            raise RegistryError("--force needs --reason TEXT: a forced promotion is recorded with its reason")
        if not repaired:
            self.repair(name, alias)
        current = self.audit.read(name, alias).holder
        # Refusals visible before asking are not requests (nothing was attempted), as before.
        if expected_holder is not UNCHECKED and current != expected_holder:
            raise HolderChanged(name, alias, expected_holder, current)
        if current == target.version:
            raise RegistryError(f"{name}@{alias} is already v{version}")
        expected = ANY if expected_holder is UNCHECKED else (expected_holder or "")
        attempt = new_attempt()
        versions.set_tags(self.client, name, target.version, {
            versions.PROMOTION_TAG: "pending", versions.PROMOTION_FROM_TAG: current or "", "kit.target_alias": alias,
            ATTEMPT_TAG: attempt, STARTED_TAG: int(time.time() * 1000)})
        self.audit.append(name, alias, "promote", target.version, expected, reason or "all gates passed",
                          forced=force, evidence=evidence or {"version_tags": target.tags}, attempt=attempt)
        event = self._settle(name, alias, attempt)
        if event.refused:
            versions.set_tags(self.client, name, target.version, {versions.PROMOTION_TAG: "refused"})
            if event.from_version == target.version:
                raise RegistryError(f"{name}@{alias} is already v{version}")
            raise HolderChanged(name, alias, expected_holder, event.from_version)
        versions.set_tags(self.client, name, target.version, {
            versions.PROMOTION_TAG: "done", versions.PROMOTION_FROM_TAG: event.from_version or ""})
        if force:
            versions.set_tags(self.client, name, target.version, {"kit.forced": "true", "kit.forced.reason": reason})
        return event

    def rollback(self, name: str, alias: str, reason: str = "") -> Event:
        """Back to the holder before the current one, per the audit log; again walks further back."""
        self.repair(name, alias)
        current = versions.holder(self.client, name, alias)
        log = self.audit.read(name, alias)
        stack = log.state.stack
        if current is None:
            raise RegistryError(f"{name}@{alias} points at no version: nothing to roll back")
        if stack[-1:] != [current]:
            raise RegistryError(
                f"{name}@{alias} is v{current}, but the audit log says v{stack[-1] if stack else '(none)'}: "
                f"the alias was moved outside kit; use `kit promote {name} VERSION --alias {alias}` to set it")
        if len(stack) < 2:
            raise RegistryError(f"{name}@{alias}: nothing to roll back to; v{current} is the first version "
                                "this alias held (see `kit models`)")
        attempt = self.audit.append(name, alias, "rollback", None, ANY, reason or "rollback")
        event = self._settle(name, alias, attempt)
        if event.refused:  # another rollback took the last step back first
            raise RegistryError(f"{name}@{alias}: {event.refused} (another move came first; see `kit models`)")
        return event

    def follow(self, name: str, alias: str) -> str:
        """Bring an alias left behind by an interrupted move up to the head of the log.

        Returns a note for `kit models` when it cannot ('' when the alias agrees)."""
        from mlflow.exceptions import MlflowException

        current = versions.holder(self.client, name, alias)  # the alias first, then the log: see `_follow`
        log = self.audit.read(name, alias)
        if current == log.holder or not log.state.decisions and not log.legacy:
            return ""
        if current not in log.state.former:
            return f"{alias} points at v{current} but the audit log says {_shown(log.holder)}: moved outside kit"
        try:
            self._follow(name, alias, log)
        except MlflowException as exc:
            return (f"{alias} is {_shown(current)}, behind the audit log's {_shown(log.holder)} (a move was "
                    f"interrupted), and could not be repaired here: {exc.message}")
        return ""

    def repair(self, name: str, alias: str) -> list[str]:
        """Finish what interrupted moves left: the alias behind the log's head is written forward,
        and a version's promotion state follows what its request became in the log."""
        self.follow(name, alias)
        repaired = []
        log = self.audit.read(name, alias)
        current = versions.holder(self.client, name, alias)
        now = int(time.time() * 1000)
        for version in versions.in_promotion_states(self.client, name, ("pending", "interrupted")):
            state = version.tags.get(versions.PROMOTION_TAG)
            if version.tags.get("kit.target_alias") != alias:
                continue
            event = log.event(version.tags[ATTEMPT_TAG]) if version.tags.get(ATTEMPT_TAG) else None
            if event and not event.refused:
                versions.set_tags(self.client, name, version.version, {
                    versions.PROMOTION_TAG: "done", versions.PROMOTION_FROM_TAG: event.from_version or ""})
                repaired.append(f"v{version.version}: promotion completed")
            elif event:
                versions.set_tags(self.client, name, version.version, {versions.PROMOTION_TAG: "refused"})
                repaired.append(f"v{version.version}: interrupted promotion was refused ({event.refused})")
            elif (state == "pending" and not version.tags.get(ATTEMPT_TAG) and version.version == current
                  and current != log.holder):
                # An older kit moved the alias before writing its audit event: log the move now.
                attempt = self.audit.append(name, alias, "promote", version.version, ANY,
                                            "repaired: the promotion stopped after the alias moved")
                moved = self._settle(name, alias, attempt)
                versions.set_tags(self.client, name, version.version, {
                    versions.PROMOTION_TAG: "done", versions.PROMOTION_FROM_TAG: moved.from_version or ""})
                repaired.append(f"v{version.version}: promotion completed")
                log = self.audit.read(name, alias)
            elif state == "pending" and now - int(version.tags.get(STARTED_TAG) or 0) < IN_FLIGHT_MS:
                continue  # another process may be about to append its request
            else:
                versions.set_tags(self.client, name, version.version, {versions.PROMOTION_TAG: "abandoned"})
                repaired.append(f"v{version.version}: interrupted promotion abandoned (alias never moved)")
        return repaired

    def _settle(self, name: str, alias: str, attempt: str) -> Event:
        """After appending `attempt`: learn what it became, and if it moved, make the alias follow."""
        log = self.audit.read(name, alias)  # every request before ours is visible now (the log grows at its end)
        event = log.event(attempt)
        run_id = event.run_id
        try:
            if not event.refused:
                self._follow(name, alias, log)
            checkpoint("audit", f"{event.action} {name}@{alias} {_shown(event.from_version)} -> v{event.to_version}")
            self.audit.finish(event, f"refused: {event.refused}" if event.refused else "applied")
        except BaseException:  # interrupted after the request: it stands (and is repaired), its run says so
            self.audit.abort(run_id)
            raise
        return event

    def _follow(self, name: str, alias: str, log: Log) -> None:
        """Write the alias to the head's holder until a re-read shows the head did not move under it.

        Why the last alias write then agrees with the head: a request that lands after our
        re-read landed after our write, and its own process writes after it (or dies, and the
        next move or `kit models` repairs). A reader judging "behind or moved outside kit"
        reads the alias before the log, so any kit-written value is one a prefix of its log implies."""
        for _ in range(FOLLOW_ROUNDS):
            if log.holder is None:
                self.client.delete_registered_model_alias(name, alias)
            else:
                versions.upsert(self.client.set_registered_model_alias, name, alias, log.holder)
            again = self.audit.read(name, alias)
            if again.holder == log.holder:
                return
            log = again


def _shown(version: str | None) -> str:
    return f"v{version}" if version else "(none)"
