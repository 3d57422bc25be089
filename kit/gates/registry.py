"""Gate types by name: the generic gates, and the gates targets add through the `kit.gates`
entry point group (or `register` at start-up), as papermill does for its engines. The core
knows only this registry, never a target."""

from __future__ import annotations

from typing import Any

from kit.errors import SpecError
from kit.plugins import Plugins
from kit.gates.base import Gate
from kit.gates.generic import ArtifactSize, MetricThreshold
from kit.gates.regression import NoRegression

_GATES: Plugins[type[Gate]] = Plugins("kit.gates", name_of=lambda gate_class: gate_class.type)
register = _GATES.register  # add a gate type (usable as a class decorator)
known = _GATES.known  # type name -> gate class
for _builtin in (MetricThreshold, NoRegression, ArtifactSize):
    register(_builtin)


def parse(config: dict[str, Any], where: str) -> Gate:
    """One `gates:` entry of a pipeline file into a gate object, or SpecError naming `where`."""
    from pydantic import ValidationError

    if not isinstance(config, dict) or "type" not in config:
        raise SpecError(f"{where}: a gate needs a `type` (one of: {', '.join(sorted(known()))})")
    gate_class = known().get(config["type"])
    if gate_class is None:
        raise SpecError(f"{where}: unknown gate type {config['type']!r} (known: {', '.join(sorted(known()))})")
    try:
        return gate_class.model_validate({k: v for k, v in config.items() if k != "type"})
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(map(str, e['loc'])) or 'gate'}: {'unknown key' if e['type'] == 'extra_forbidden' else e['msg']}"
            for e in exc.errors())
        raise SpecError(f"{where}: gate {config['type']!r}: {problems}") from None
