"""Read YAML keeping where each value stands, so errors can name the line."""

from __future__ import annotations

from typing import Any

import yaml


def load_with_nodes(text: str, source: str) -> tuple[Any, yaml.Node | None]:
    """Parse `text` to plain data and to the node tree that knows line numbers."""
    from kit.errors import SpecError

    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{source}:{mark.line + 1}" if mark else source
        problem = getattr(exc, "problem", None) or str(exc)
        raise SpecError(f"{where}: not valid YAML: {problem}") from None
    return data, node


def line_of(node: yaml.Node | None, location: tuple[Any, ...]) -> int | None:
    """1-based line of the value at `location` (keys and list indices), or of its nearest parent."""
    line = node.start_mark.line + 1 if node is not None else None
    for part in location:
        if isinstance(node, yaml.MappingNode):
            child = next((v for k, v in node.value if k.value == part), None)
            key = next((k for k, v in node.value if k.value == part), None)
            if child is None:
                return line
            line = (key or child).start_mark.line + 1
            node = child
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int) and part < len(node.value):
            node = node.value[part]
            line = node.start_mark.line + 1
        else:
            return line
    return line
