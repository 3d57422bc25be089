"""MkDocs hook: file-format pages generated from the code, so they cannot drift from it.

In a page's Markdown:

    {{ schema kit.pipeline.schema:PipelineSpec }}     one table per pydantic model (and the models it uses)
    {{ gates }}                                       one table per registered gate type
    {{ section kit/targets/edge/FORMAT.md | Heading }} the text of that `## Heading` section
"""

from __future__ import annotations

import importlib
import json
import re
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
DIRECTIVE = re.compile(r"\{\{\s*(schema|gates|section)\s*([^}]*?)\s*\}\}")


def on_page_markdown(markdown: str, **_: Any) -> str:
    return DIRECTIVE.sub(lambda m: _render(m.group(1), m.group(2)), markdown)


def _render(kind: str, argument: str) -> str:
    if kind == "schema":
        module, _, name = argument.partition(":")
        return schema_tables(getattr(importlib.import_module(module), name).model_json_schema())
    if kind == "gates":
        from kit.gates.registry import known

        return "\n\n".join(f"### `{name}`\n\n{_doc(gate)}{_reuse(gate)}\n\n"
                             f"{schema_tables(gate.model_json_schema(), nested=False)}"
                             for name, gate in sorted(known().items()))
    path, _, heading = (part.strip() for part in argument.partition("|"))
    return section(ROOT / path, heading)


def _reuse(gate: type) -> str:
    """Whether `kit run` may judge the gate from an earlier passed measurement (kit.gates.reuse)."""
    return {"pure": " A passed result is reused by a later run with the same settings and inputs.",
            "measured": " A passed result is reused by a later run with the same settings and inputs on the "
                        "same machine."}.get(gate.reuse, "")


def _doc(model: type) -> str:
    return " ".join((model.__doc__ or "").split())


def schema_tables(schema: dict[str, Any], nested: bool = True) -> str:
    """The model's fields as a Markdown table, then (if `nested`) a table for each model it uses."""
    definitions = schema.get("$defs", {}) if nested else {}
    parts = [_table(schema)]
    for name, definition in definitions.items():
        if definition.get("type") == "object" or "properties" in definition:
            parts.append(f"#### `{name}`\n\n{' '.join(definition.get('description', '').split())}\n\n"
                         f"{_table(definition)}")
    return "\n\n".join(parts)


def _table(schema: dict[str, Any]) -> str:
    required = set(schema.get("required", []))
    rows = ["| key | type | required | default | meaning |", "|---|---|---|---|---|"]
    for key, field in schema.get("properties", {}).items():
        if key == "type" and field.get("const") is not None:
            continue  # a gate's `type` is the section's name
        default = f"`{json.dumps(field['default'])}`" if "default" in field else ""
        rows.append(f"| `{key}` | {_type(field)} | {'yes' if key in required else 'no'} | {default} | "
                    f"{_constraints(field)}{' '.join(field.get('description', '').split())} |")
    if len(rows) == 2:
        return "(no keys)"
    return "\n".join(rows)


def _type(field: dict[str, Any] | bool) -> str:
    if not isinstance(field, dict) or not field:
        return "any"
    if "$ref" in field:
        return f"`{field['$ref'].rsplit('/', 1)[-1]}`"
    if "anyOf" in field:
        return " or ".join(_type(option) for option in field["anyOf"])
    if "enum" in field:
        return " or ".join(f"`{json.dumps(value)}`" for value in field["enum"])
    if "const" in field:
        return f"`{json.dumps(field['const'])}`"
    kind = field.get("type", "any")
    if kind == "array":
        return f"list of {_type(field.get('items', {}))}"
    if kind == "object" and "additionalProperties" in field:
        return f"map of string to {_type(field['additionalProperties'])}"
    return {"object": "mapping", "null": "null"}.get(kind, kind)


def _constraints(field: dict[str, Any]) -> str:
    words = {"pattern": "matches `{}`", "minLength": "length >= {}", "minItems": "items >= {}",
             "exclusiveMinimum": "> {}", "minimum": ">= {}", "maximum": "<= {}", "exclusiveMaximum": "< {}"}
    found = [template.format(field[key]) for key, template in words.items() if key in field]
    return f"({', '.join(found)}) " if found else ""


def section(path: Path, heading: str) -> str:
    """The body of the `## heading` section of a Markdown file, its subheadings kept below it."""
    text = path.read_text(encoding="utf-8")
    match = re.search(rf"^## {re.escape(heading)}[^\n]*\n(.*?)(?=^## |\Z)", text, flags=re.S | re.M)
    if match is None:
        raise ValueError(f"{path}: no section '## {heading}'")
    return match.group(1).strip() + "\n"
