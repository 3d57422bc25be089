"""Parameter values given at run time: `-p STEP.PARAM=VALUE` and `--params FILE.yaml`.

Both are read with YAML 1.2 core-schema rules (see yaml_lines), and remember where each value
was written, so a wrong one is reported at that file and line, not at the pipeline file.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

from kit.errors import SpecError
from kit.pipeline import parameters as params
from kit.pipeline.yaml_lines import load_document


class Overrides(dict):
    """{step: {parameter: value}}, and where each was written (`where(step, param)`)."""

    def __init__(self, values: dict | None = None, where: Callable[..., str] | None = None):
        super().__init__(values or {})
        self._where = where or (lambda *location: "override")

    def where(self, *location: Any) -> str:
        return self._where(*location)


def where_of(layer: dict, *location: Any) -> str:
    """Where a value of an override layer was written (plain dicts: "override")."""
    return layer.where(*location) if isinstance(layer, Overrides) else "override"


def parse_overrides(pairs: list[str]) -> Overrides:
    """`-p STEP.PARAM=VALUE` options into {step: {param: value}}."""
    values: dict[str, dict[str, Any]] = {}
    written: dict[tuple[str, str], str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        step, dot, param = key.strip().partition(".")
        if not sep or not dot or not step or not param:
            raise SpecError(f"-p {pair!r}: expected STEP.PARAM=VALUE, for example -p train.epochs=5")
        values.setdefault(step, {})[param] = params.parse_cli_value(value)
        written[(step, param)] = f"-p {params.cut(pair)}"
    return Overrides(values, lambda step=None, param=None, *rest: written.get((step, param), "-p"))


def load_params_file(path: Path) -> Overrides:
    """`--params FILE.yaml`: a mapping of step name to a mapping of parameter values."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise SpecError(f"--params {path}: cannot read: {exc.strerror}") from None
    except UnicodeDecodeError:
        raise SpecError(f"--params {path}: cannot read: not UTF-8 text") from None
    document = load_document(text, str(path))
    data = {} if document.data is None else document.data
    if not isinstance(data, dict) or not all(isinstance(v, dict) for v in data.values()):
        bad = next((k for k, v in data.items() if not isinstance(v, dict)), None) if isinstance(data, dict) else None
        where = document.where((bad,) if bad is not None else ())
        raise SpecError(f"{where}: --params: expected a mapping of step name to parameters, "
                        "e.g. 'train: {epochs: 5}'")
    return Overrides(data, lambda *location: document.where(location))
