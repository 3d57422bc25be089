"""Moving an alias: promotion (gated, or forced and recorded so), rollback, and repair of a
promotion that was interrupted. Every move holds the registry lock and lands in the audit log."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from kit import store
from kit.errors import GateFailure
from kit.registry import versions
from kit.registry.audit import AuditLog, Event, holders
from kit.registry.errors import HolderChanged, RegistryError

LOCK_NAME = ".registry.lock"
UNCHECKED = object()  # promote whoever holds the alias now (a person's `kit promote`)


class Registry:
    def __init__(self, root: Path, client=None):
        self.root = root
        self.client = client or store.client(root)
        self.audit = AuditLog(self.client, root)

    def promote(self, name: str, version: str, alias: str, reason: str = "", force: bool = False,
                evidence: dict[str, Any] | None = None, expected_holder: str | None | object = UNCHECKED) -> Event:
        """Point `alias` at `version`. Refuses a version without passed gates unless forced.

        With `expected_holder` (a version, or None for "no holder"), a compare-and-set: the alias
        moves only if it still points there, else HolderChanged says who holds it now."""
        target = versions.get(self.client, name, version)
        if target.gates != "passed" and not force:
            why = "its gates failed" if target.gates == "failed" else "it has no gate evidence"
            raise GateFailure(f"{name} v{version} is not promoted to {alias!r}: {why} "
                              f"(see `kit models {name}`); to override, add --force --reason TEXT")
        if force and not reason.strip():
            raise RegistryError("--force needs --reason TEXT: a forced promotion is recorded with its reason")
        with store.file_lock(self.root, LOCK_NAME):
            self._repair(name, alias)
            current = versions.holder(self.client, name, alias)
            if expected_holder is not UNCHECKED and current != expected_holder:
                raise HolderChanged(name, alias, expected_holder, current)
            if current == target.version:
                raise RegistryError(f"{name}@{alias} is already v{version}")
            versions.set_tags(self.client, name, target.version, {
                versions.PROMOTION_TAG: "pending", versions.PROMOTION_FROM_TAG: current or "", "kit.target_alias": alias})
            self.client.set_registered_model_alias(name, alias, target.version)
            event = self.audit.record("promote", name, alias, current, target.version,
                                      reason or "all gates passed", forced=force,
                                      evidence=evidence or {"version_tags": target.tags})
            versions.set_tags(self.client, name, target.version, {versions.PROMOTION_TAG: "done"})
            if force:
                versions.set_tags(self.client, name, target.version, {"kit.forced": "true", "kit.forced.reason": reason})
        return event

    def rollback(self, name: str, alias: str, reason: str = "") -> Event:
        """Back to the holder before the current one, per the audit log; again walks further back."""
        with store.file_lock(self.root, LOCK_NAME):
            self._repair(name, alias)
            stack = holders(self.audit.events(name, alias))
            current = versions.holder(self.client, name, alias)
            if current is None:
                raise RegistryError(f"{name}@{alias} points at no version: nothing to roll back")
            if not stack or stack[-1] != current:
                raise RegistryError(
                    f"{name}@{alias} is v{current}, but the audit log says v{stack[-1] if stack else '(none)'}: "
                    f"the alias was moved outside kit; use `kit promote {name} VERSION --alias {alias}` to set it")
            if len(stack) < 2:
                raise RegistryError(f"{name}@{alias}: nothing to roll back to; v{current} is the first version "
                                    "this alias held (see `kit models`)")
            previous = stack[-2]
            self.client.set_registered_model_alias(name, alias, previous)
            return self.audit.record("rollback", name, alias, current, previous, reason or "rollback")

    def repair(self, name: str, alias: str) -> list[str]:
        with store.file_lock(self.root, LOCK_NAME):
            return self._repair(name, alias)

    def _repair(self, name: str, alias: str) -> list[str]:
        """Finish or abandon promotions that stopped between moving the alias and the audit log.

        Holding the lock: a version tagged pending either holds the alias (the move
        happened: write the missing audit event) or does not (it never moved: abandon it).
        """
        repaired = []
        current = versions.holder(self.client, name, alias)
        for version in versions.all_versions(self.client, name):
            if (version.tags.get(versions.PROMOTION_TAG) not in ("pending", "interrupted")
                    or version.tags.get("kit.target_alias") != alias):
                continue
            if version.version == current:
                logged = any(e.to_version == version.version for e in self.audit.events(name, alias)[-1:])
                if not logged:
                    self.audit.record("promote", name, alias, version.tags.get(versions.PROMOTION_FROM_TAG) or None,
                                      version.version, "repaired: the promotion stopped after the alias moved")
                versions.set_tags(self.client, name, version.version, {versions.PROMOTION_TAG: "done"})
                repaired.append(f"v{version.version}: promotion completed")
            else:
                versions.set_tags(self.client, name, version.version, {versions.PROMOTION_TAG: "abandoned"})
                repaired.append(f"v{version.version}: interrupted promotion abandoned (alias never moved)")
        return repaired
