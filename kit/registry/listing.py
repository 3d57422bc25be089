"""What `kit models` prints: the truth of the registry, with the kit's evidence and history."""

from __future__ import annotations

import datetime as dt

from kit.registry import versions
from kit.registry.audit import holders


def _when(ms: int) -> str:
    return dt.datetime.fromtimestamp(ms / 1000, dt.timezone.utc).strftime("%Y-%m-%d %H:%M:%S")


def overview(registry) -> str:
    models = registry.client.search_registered_models(max_results=1000)
    if not models:
        return "no registered models yet (a pipeline with `promote:` registers one)"
    lines = [f"{'model':<32} {'versions':>8}  aliases"]
    for model in sorted(models, key=lambda m: m.name):
        count = len(versions.all_versions(registry.client, model.name))
        aliases = ", ".join(f"{a}=v{v}" for a, v in sorted(versions.aliases(registry.client, model.name).items())) or "-"
        lines.append(f"{model.name:<32} {count:>8}  {aliases}")
    return "\n".join(lines)


def describe(registry, name: str) -> str:
    from kit.registry.errors import RegistryError

    found = versions.all_versions(registry.client, name)
    if not found:
        raise RegistryError(f"no registered model {name!r} (see `kit models`)")
    aliases = versions.aliases(registry.client, name)
    held = {}
    for alias, version in aliases.items():
        held.setdefault(version, []).append(alias)
    lines = [f"model {name}", "", f"{'version':>7}  {'created (UTC)':<19}  {'gates':<7}  {'promotion':<10}  aliases   pipeline run"]
    for v in found:
        promotion = v.tags.get(versions.PROMOTION_TAG, "-")
        if promotion in ("pending", "interrupted"):
            promotion = "INTERRUPTED"
        forced = " (forced)" if v.tags.get("kit.forced") == "true" else ""
        lines.append(f"{v.version:>7}  {_when(v.created_ms):<19}  {v.gates:<7}  {promotion:<10}  "
                     f"{', '.join(held.get(v.version, [])) or '-':<8}  {v.tags.get('kit.pipeline_run_id', '-')}{forced}")
        failed = [f"{k[len('kit.gate.'):]}: {t}" for k, t in sorted(v.tags.items())
                  if k.startswith("kit.gate.") and t.startswith("failed")]
        for item in failed:
            lines.append(f"{'':>9}failed gate {item}")
    if any(v.tags.get(versions.PROMOTION_TAG) in ("pending", "interrupted") for v in found):
        lines.append("\nINTERRUPTED: a promotion stopped midway; the next promote, rollback or pipeline run "
                     "for that alias repairs it")

    events = registry.audit.events(name)
    lines.append("")
    lines.append("history" if events else "history: no promotions yet")
    for e in events:
        arrow = f"{'v' + e.from_version if e.from_version else '(none)'} -> v{e.to_version}"
        forced = " FORCED" if e.forced else ""
        lines.append(f"  {_when(e.time_ms)}  {e.alias:<16} {e.action:<8}{forced} {arrow:<14} by {e.user}: {e.reason}")
    for alias, version in sorted(aliases.items()):
        stack = holders(registry.audit.events(name, alias))
        if stack and stack[-1] != version:
            lines.append(f"  note: {alias} points at v{version} but the audit log says v{stack[-1]}: moved outside kit")
    return "\n".join(lines)


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
