"""What `kit models` prints: the truth of the registry, with the kit's evidence and history."""

from __future__ import annotations

import datetime as dt

from kit.registry import versions
from kit.registry.audit import is_log
from kit.report import Table, table_text


def _when(ms: int) -> str:
    return dt.datetime.fromtimestamp(ms / 1000, dt.timezone.utc).strftime("%Y-%m-%d %H:%M:%S")


def overview(registry) -> str:
    models = [m for m in registry.client.search_registered_models(max_results=1000) if not is_log(m)]
    if not models:
        return "no registered models yet (a pipeline with `promote:` registers one)"
    rows = []
    for model in sorted(models, key=lambda m: m.name):
        follow_all(registry, model.name)
        count = len(versions.all_versions(registry.client, model.name))
        aliases = ", ".join(f"{a}=v{v}" for a, v in sorted(versions.aliases(registry.client, model.name).items())) or "-"
        rows.append((model.name, str(count), aliases))
    return table_text(Table(("model", "versions", "aliases"), rows)).rstrip()


def describe(registry, name: str) -> str:
    from kit.registry.errors import RegistryError

    found = versions.all_versions(registry.client, name)
    if not found:
        raise RegistryError(f"no registered model {name!r} (see `kit models`)")
    notes = follow_all(registry, name)
    aliases = versions.aliases(registry.client, name)
    held = {}
    for alias, version in aliases.items():
        held.setdefault(version, []).append(alias)
    rows, failed = [], []
    for v in found:
        promotion = v.tags.get(versions.PROMOTION_TAG, "-")
        if promotion in ("pending", "interrupted"):
            promotion = "INTERRUPTED"
        forced = " (forced)" if v.tags.get("kit.forced") == "true" else ""
        rows.append((v.version, _when(v.created_ms), v.gates, promotion, ", ".join(held.get(v.version, [])) or "-",
                     v.tags.get("kit.pipeline_run_id", "-") + forced))
        failed += [f"  v{v.version} failed gate {k[len('kit.gate.'):]}: {t}" for k, t in sorted(v.tags.items())
                   if k.startswith("kit.gate.") and t.startswith("failed")]
    columns = ("version", "created (UTC)", "gates", "promotion", "aliases", "pipeline run")
    lines = [f"model {name}", "", table_text(Table(columns, rows)).rstrip(), *failed]
    if any(v.tags.get(versions.PROMOTION_TAG) in ("pending", "interrupted") for v in found):
        lines.append("\nINTERRUPTED: a promotion stopped midway; the next promote, rollback or pipeline run "
                     "for that alias repairs it")

    events = registry.audit.history(name)
    lines.append("")
    if events:
        history = [(_when(e.time_ms), e.alias, _action(e), _move(e), e.user, e.reason) for e in events]
        lines.append(table_text(Table(("time (UTC)", "alias", "action", "move", "by", "reason"), history,
                                      title="history")).rstrip())
    else:
        lines.append("history: no promotions yet")
    lines.extend(f"  note: {note}" for note in notes)
    return "\n".join(lines)


def follow_all(registry, name: str) -> list[str]:
    """Repair aliases an interrupted move left behind the audit log (any `kit models` does);
    returns what could not be repaired, in words."""
    return [note for alias in sorted(registry.audit.aliases(name)) if (note := registry.follow(name, alias))]


def _action(event) -> str:
    if event.refused:
        return "refused"
    return event.action + (" FORCED" if event.forced else "")


def _move(event) -> str:
    before = f"v{event.from_version}" if event.from_version else "(none)"
    if not event.refused:
        return f"{before} -> v{event.to_version}"
    asked = f"v{event.to_version}" if event.to_version else "the previous version"
    return f"{event.action} to {asked}: {event.refused}"


def describe_version(registry, name: str, number: str) -> str:
    """The evidence of one version: gates with figures, contracts, data hashes, metrics,
    where it came from (commit, dirty flag, lock) and the snapshot of what built it."""
    version = versions.get(registry.client, name, number)
    tags = version.tags
    held = [a for a, v in versions.aliases(registry.client, name).items() if v == version.version]
    promotion = tags.get(versions.PROMOTION_TAG, "-")
    lines = [f"model {name} v{version.version}  created {_when(version.created_ms)} UTC",
             f"  gates       {version.gates}",
             f"  promotion   {'INTERRUPTED (' + promotion + ')' if promotion in ('pending', 'interrupted') else promotion}"
             + (" (forced: " + tags.get("kit.forced.reason", "") + ")" if tags.get("kit.forced") == "true" else ""),
             f"  aliases     {', '.join(sorted(held)) or '-'}",
             f"  pipeline    {tags.get('kit.pipeline', '-')}, run {tags.get('kit.pipeline_run_id', '-')}",
             f"  source      {version.source}"]
    dirty = tags.get("kit.git.dirty")
    dirty_words = {"true": "dirty: true (modified, staged or untracked files were used; the snapshot has them)",
                   "false": "dirty: false"}.get(dirty, "dirty: unknown (not a git work tree)")
    lines.append(f"  commit      {tags.get('kit.git.commit', '(none: not a git work tree)')}  {dirty_words}")
    lines.append(f"  lock        sha256 {tags.get('kit.lock_sha256', '-')}")
    lines.append(f"  snapshot    {tags.get('kit.snapshot', '(none recorded)')}"
                 + ("  (pipeline file, notebooks as read, contracts, feature specs, manifest.json)"
                    if "kit.snapshot" in tags else ""))

    def section(title: str, prefix: str) -> None:
        found = sorted((k[len(prefix):], v) for k, v in tags.items() if k.startswith(prefix))
        lines.append(f"{title}:" if found else f"{title}: none recorded")
        width = max((len(k) for k, _ in found), default=0)
        lines.extend(f"  {key:<{width}}  {value}" for key, value in found)

    section("gates", "kit.gate.")
    section("contracts", "kit.contract.")
    section("data (sha256)", "kit.data.")
    section("metrics", versions.METRIC_PREFIX)
    return "\n".join(lines)
