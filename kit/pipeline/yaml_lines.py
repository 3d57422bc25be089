"""Read YAML the way people mean it, keeping where each value stands so errors can name the line.

YAML 1.2 core-schema rules (ruamel.yaml), not PyYAML's YAML 1.1: `yes`/`no`/`on`/`off` are
strings, `017` is 17 (never octal 15), `1e-3` is a float. Dates and times stay the strings they
were typed as: a notebook parameter is a plain Python literal, and a date is not one.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.constructor import SafeConstructor
from ruamel.yaml.error import YAMLError
from ruamel.yaml.nodes import MappingNode, Node, SequenceNode


class _Constructor(SafeConstructor):
    """The safe constructor, with timestamps left as the text that was written, and only plain
    data: strings, numbers, booleans, null, lists and mappings (no !!binary, !!set, !!omap)."""


_Constructor.add_constructor("tag:yaml.org,2002:timestamp", SafeConstructor.construct_yaml_str)
for _tag in ("binary", "set", "omap", "pairs"):
    _Constructor.add_constructor(f"tag:yaml.org,2002:{_tag}", SafeConstructor.construct_undefined)


class YamlProblem(ValueError):
    """Text that is not YAML we can read; `line` is 1-based when known."""

    def __init__(self, message: str, line: int | None = None):
        super().__init__(message)
        self.line = line


def _reader() -> YAML:
    reader = YAML(typ="safe", pure=True)
    reader.Constructor = _Constructor
    return reader


MAX_CHARS = 1_000_000  # no pipeline or parameter file is this long; parsing one takes seconds
MAX_FLOW_DEPTH = 100  # ruamel's scanner slows down quadratically with [ { nesting (3000 levels: 17 s)


def parse(text: str) -> tuple[Any, Node | None]:
    """`text` as plain data and as the node tree that knows line numbers; YamlProblem if it is not YAML."""
    if len(text) > MAX_CHARS:
        raise YamlProblem(f"too long to be a pipeline or parameter file ({len(text):,} characters; "
                          f"the limit is {MAX_CHARS:,})")
    depth = _flow_depth(text)
    if depth > MAX_FLOW_DEPTH:
        raise YamlProblem(f"nested too deeply ({depth} levels of [ or {{; the limit is {MAX_FLOW_DEPTH})")
    try:
        reader = _reader()
        node = reader.compose(text)  # one parse: the data is built from the same node tree
        _refuse_surrogates(node)
        return (reader.constructor.construct_document(node) if node is not None else None), node
    except YamlProblem:
        raise
    except YAMLError as exc:
        mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise YamlProblem(f"not valid YAML: {problem}", mark.line + 1 if mark else None) from None
    except RecursionError:
        raise YamlProblem("nested too deeply to read") from None
    except ValueError as exc:  # e.g. an integer longer than Python converts (4300 digits)
        raise YamlProblem(f"not a value we can read: {exc}") from None


def _refuse_surrogates(root: Node | None) -> None:
    """A "\\ud800" escape makes a lone surrogate: not a character, and no file name or terminal takes it."""
    seen, stack = set(), [root] if root is not None else []
    while stack:  # aliases share nodes: visit each once, however often it is referred to
        node = stack.pop()
        if id(node) in seen:
            continue
        seen.add(id(node))
        if isinstance(node, MappingNode):
            stack.extend(part for pair in node.value for part in pair)
        elif isinstance(node, SequenceNode):
            stack.extend(node.value)
        elif isinstance(node.value, str) and any("\ud800" <= char <= "\udfff" for char in node.value):
            raise YamlProblem("a lone surrogate escape (\\ud800-\\udfff) is not a character",
                              node.start_mark.line + 1)


def _flow_depth(text: str) -> int:
    """The deepest nesting of [ and { (counted on the raw text, quotes included: a bound, not a parse)."""
    depth = deepest = 0
    for char in text:
        if char in "[{":
            depth += 1
            deepest = max(deepest, depth)
        elif char in "]}" and depth:
            depth -= 1
    return deepest


def parse_value(text: str) -> Any:
    """One value typed on the command line: `5` is an int, `0.1` a float, `true` a bool, `[16, 8]`
    a list; anything that is not YAML stays the string it was."""
    if not text.strip():
        return text
    try:
        value, _ = parse(text)
    except YamlProblem:
        return text
    return value


@dataclass(frozen=True)
class Document:
    """One YAML file: its data, its node tree and the name errors show for it."""

    data: Any
    node: Node | None
    source: str

    def line(self, location: tuple[Any, ...]) -> int | None:
        return line_of(self.node, location)

    def where(self, location: tuple[Any, ...] = ()) -> str:
        """`source:line` of the value at `location` (or of its nearest parent that exists)."""
        line = self.line(location)
        return f"{self.source}:{line}" if line else self.source


def load_document(text: str, source: str) -> Document:
    """Parse one file; SpecError naming `source` and the line if it is not YAML."""
    from kit.errors import SpecError

    try:
        data, node = parse(text)
    except YamlProblem as exc:
        raise SpecError(f"{source}:{exc.line}: {exc}" if exc.line else f"{source}: {exc}") from None
    return Document(data, node, source)


def line_of(node: Node | None, location: tuple[Any, ...]) -> int | None:
    """1-based line of the value at `location` (keys and list indices), or of its nearest parent."""
    line = node.start_mark.line + 1 if node is not None else None
    for part in location:
        if isinstance(node, MappingNode):
            pair = next(((k, v) for k, v in node.value if getattr(k, "value", None) == str(part)), None)
            if pair is None:
                return line
            key, node = pair
            line = key.start_mark.line + 1
        elif isinstance(node, SequenceNode) and isinstance(part, int) and 0 <= part < len(node.value):
            node = node.value[part]
            line = node.start_mark.line + 1
        else:
            return line
    return line
