"""The feature spec (`kit-feature-spec/1`, see kit/targets/edge/FORMAT.md) as pydantic models.

A spec is a list of inputs, processed in order; each input turns one raw request field into
one or more float columns. The same file is implemented in JavaScript by the edge runtime, so
the models here are strict: unknown keys, strings where numbers belong, NaN/Infinity, a zero
`std`, an empty `minmax` interval, unsorted bucket boundaries, duplicate vocabulary values and
duplicate input names are all refused with a `FeatureSpecError` naming the file and the input.

    spec = load_spec("build/iris/feature_spec.json")
    X = spec.transform(df)          # numpy float64 (n, spec.width)
    spec.column_names               # ["sepal_length", ..., "device=mobile", "device=<oov>"]
    spec.save("out/feature_spec.json")
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any, Literal, Union

from pydantic import AllowInfNan, BaseModel, ConfigDict, Field, Strict, ValidationError, model_validator

from kit.errors import LibraryError
from kit.features.transform import transform as transform_rows

FORMAT = "kit-feature-spec/1"

# A finite JSON number: ints are accepted, strings, booleans, NaN and ±Infinity are not.
Number = Annotated[float, Strict(), AllowInfNan(False)]
Name = Annotated[str, Strict(), Field(min_length=1)]


class FeatureSpecError(LibraryError):
    """A feature spec (file or dict) is not valid, or a spec cannot be built from the data given."""


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


# -- missing-value strategies ----------------------------------------------------------------

class FillMissing(_Model):
    """Numeric only: a missing value is replaced by `value`."""

    strategy: Literal["fill"]
    value: Number


class NanMissing(_Model):
    """Numeric only: a missing value becomes NaN (for models that handle it)."""

    strategy: Literal["nan"]


class ErrorMissing(_Model):
    """A missing value rejects the row."""

    strategy: Literal["error"]


class OovMissing(_Model):
    """Categorical only: a missing value is treated as out-of-vocabulary."""

    strategy: Literal["oov"]


NumericMissing = Annotated[Union[FillMissing, NanMissing, ErrorMissing], Field(discriminator="strategy")]
CategoricalMissing = Annotated[Union[OovMissing, ErrorMissing], Field(discriminator="strategy")]


class Range(_Model):
    """The raw value's allowed range, inclusive (checked only when rejecting out-of-range values)."""

    min: Number
    max: Number

    @model_validator(mode="after")
    def _ordered(self) -> Range:
        if self.min > self.max:
            raise ValueError(f"range.min ({self.min}) is greater than range.max ({self.max}); swap them")
        return self


# -- transforms ------------------------------------------------------------------------------

class Identity(_Model):
    """1 column: x."""

    type: Literal["identity"]


class Standardize(_Model):
    """1 column: (x - mean) / std."""

    type: Literal["standardize"]
    mean: Number
    std: Number

    @model_validator(mode="after")
    def _positive(self) -> Standardize:
        if not self.std > 0:
            raise ValueError(f"std must be > 0, got {self.std} (a constant column: use identity or drop the input)")
        return self


class MinMax(_Model):
    """1 column: (x - min) / (max - min)."""

    type: Literal["minmax"]
    min: Number
    max: Number

    @model_validator(mode="after")
    def _interval(self) -> MinMax:
        if not self.max > self.min:
            raise ValueError(f"minmax needs min < max, got min={self.min}, max={self.max}"
                             " (min == max is a constant column: use identity or drop the input)")
        return self


class Bucketize(_Model):
    """bucket i = number of boundaries <= x; `index` -> 1 column, `one_hot` -> len(boundaries)+1."""

    type: Literal["bucketize"]
    boundaries: list[Number] = Field(min_length=1)
    output: Literal["index", "one_hot"]

    @model_validator(mode="after")
    def _sorted(self) -> Bucketize:
        b = self.boundaries
        for i in range(1, len(b)):
            if not b[i] > b[i - 1]:
                raise ValueError(f"bucket boundaries must be strictly increasing, but boundaries[{i - 1}]={b[i - 1]}"
                                 f" and boundaries[{i}]={b[i]}; sort them and drop duplicates")
        return self


class Vocabulary(_Model):
    """index = position in `values`, OOV = len(values); `index` -> 1 column, `one_hot` -> len(values)+1."""

    type: Literal["vocabulary"]
    values: list[Annotated[str, Strict()]]
    output: Literal["index", "one_hot"]

    @model_validator(mode="after")
    def _unique(self) -> Vocabulary:
        seen: set[str] = set()
        for v in self.values:
            if v in seen:
                raise ValueError(f"vocabulary value {v!r} appears twice; each value must appear once")
            seen.add(v)
        return self


NumericTransform = Annotated[Union[Identity, Standardize, MinMax, Bucketize], Field(discriminator="type")]


# -- inputs ----------------------------------------------------------------------------------

class NumericInput(_Model):
    """A raw number (JSON number, or a numeric string)."""

    name: Name
    kind: Literal["numeric"]
    missing: NumericMissing = ErrorMissing(strategy="error")
    range: Range | None = None
    transform: NumericTransform

    @property
    def width(self) -> int:
        t = self.transform
        if isinstance(t, Bucketize) and t.output == "one_hot":
            return len(t.boundaries) + 1
        return 1

    @property
    def column_names(self) -> list[str]:
        t = self.transform
        if isinstance(t, Bucketize):
            if t.output == "index":
                return [f"{self.name}[bucket]"]
            return [f"{self.name}[bucket={i}]" for i in range(len(t.boundaries) + 1)]
        return [self.name]


class CategoricalInput(_Model):
    """A raw string (numbers are turned into their shortest decimal form, as JavaScript's String(x))."""

    name: Name
    kind: Literal["categorical"]
    missing: CategoricalMissing = OovMissing(strategy="oov")
    transform: Vocabulary

    @property
    def width(self) -> int:
        return len(self.transform.values) + 1 if self.transform.output == "one_hot" else 1

    @property
    def column_names(self) -> list[str]:
        if self.transform.output == "index":
            return [f"{self.name}[index]"]
        return [f"{self.name}={v}" for v in self.transform.values] + [f"{self.name}=<oov>"]


Input = Annotated[Union[NumericInput, CategoricalInput], Field(discriminator="kind")]


class FeatureSpec(_Model):
    """A whole spec. Build one with `FeatureSpec(inputs=[...])`, `FeatureSpec.of(...)` or `load_spec`."""

    format: Literal["kit-feature-spec/1"] = FORMAT
    inputs: list[Input] = Field(min_length=1)

    @model_validator(mode="after")
    def _unique_names(self) -> FeatureSpec:
        seen: set[str] = set()
        for item in self.inputs:
            if item.name in seen:
                first = next(i for i, x in enumerate(self.inputs) if x.name == item.name)
                raise ValueError(f"input name {item.name!r} appears twice (inputs[{first}] and"
                                 f" inputs[{self.inputs.index(item, first + 1)}]); give each input its own name")
            seen.add(item.name)
        return self

    # -- construction ------------------------------------------------------------------------

    @classmethod
    def of(cls, *inputs: NumericInput | CategoricalInput) -> FeatureSpec:
        """A spec from inputs (e.g. made by `kit.features.numeric` / `categorical`), in order."""
        return cls.from_dict({"format": FORMAT, "inputs": [i.model_dump() for i in inputs]}, where="FeatureSpec.of(...)")

    @classmethod
    def from_dict(cls, data: Any, *, where: str = "feature spec") -> FeatureSpec:
        """Validate a parsed JSON document; `where` (usually the file) starts every error message."""
        if not isinstance(data, dict) or "format" not in data:
            raise FeatureSpecError(f"{where}: not a feature spec: expected a JSON object with"
                                   f' "format": "{FORMAT}" and "inputs": [...]')
        if data["format"] != FORMAT:
            raise FeatureSpecError(f"{where}: format {data['format']!r} is not supported; this kit reads {FORMAT!r}")
        try:
            return cls.model_validate(data)
        except ValidationError as exc:
            raise FeatureSpecError(_describe(exc, data, where)) from None

    # -- output --------------------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        return self.model_dump(mode="json", exclude_none=True)

    def to_json(self) -> str:
        """The spec as JSON text (2-space indent, no NaN/Infinity), as `save` writes it."""
        return json.dumps(self.to_dict(), indent=2, allow_nan=False) + "\n"

    def save(self, path: str | Path) -> Path:
        """Write the spec to `path` (parent folders are created); returns the path."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(self.to_json(), encoding="utf-8")
        return path

    # -- shape ---------------------------------------------------------------------------------

    @property
    def width(self) -> int:
        """Length of the model's input vector."""
        return sum(i.width for i in self.inputs)

    @property
    def column_names(self) -> list[str]:
        """One name per output column, e.g. "age", "age[bucket]", "device=mobile", "device=<oov>"."""
        return [name for i in self.inputs for name in i.column_names]

    @property
    def input_names(self) -> list[str]:
        """The raw request fields, in order."""
        return [i.name for i in self.inputs]

    def request_fields(self) -> list[dict[str, Any]]:
        """The manifest's `inputs`: name, type ("number" | "string") and range where the spec has one."""
        fields = []
        for i in self.inputs:
            field: dict[str, Any] = {"name": i.name, "type": "number" if i.kind == "numeric" else "string"}
            if i.kind == "numeric" and i.range is not None:
                field["range"] = {"min": i.range.min, "max": i.range.max}
            fields.append(field)
        return fields

    # -- applying it -------------------------------------------------------------------------

    def transform(self, rows: Any, *, reject_out_of_range: bool = False,
                  unknown: Literal["error", "ignore"] = "error"):
        """Raw rows -> numpy float64 array (n, width), exactly as FORMAT.md says.

        `rows`: a pandas DataFrame, a list of dicts, or one dict (one row). A value is missing
        when the field is absent, None, NaN/pd.NA (pandas' null) or "". Fields/columns the spec
        does not know are errors unless `unknown="ignore"` (e.g. a DataFrame that still holds
        the label). Out-of-range numbers are errors only with `reject_out_of_range=True`.
        Raises `RowError` (field, row) for the first bad row.
        """
        return transform_rows(self, rows, reject_out_of_range=reject_out_of_range, unknown=unknown)


def load_spec(path: str | Path) -> FeatureSpec:
    """Read and validate a `feature_spec.json`. Raises FeatureSpecError naming the file and input."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise FeatureSpecError(f"{path}: feature spec file not found; check the path"
                               " (a features step writes it, e.g. spec.save(path))") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise FeatureSpecError(f"{path}: cannot read feature spec: {exc}") from None
    try:
        data = json.loads(text, parse_constant=_reject_constant)
    except json.JSONDecodeError as exc:
        raise FeatureSpecError(f"{path}: not valid JSON at line {exc.lineno}, column {exc.colno}: {exc.msg}") from None
    except ValueError as exc:
        raise FeatureSpecError(f"{path}: {exc}") from None
    return FeatureSpec.from_dict(data, where=str(path))


def _reject_constant(name: str) -> float:
    raise ValueError(f"{name} is not valid JSON (JavaScript's JSON.parse refuses it); write a finite number")


# Tags pydantic puts into error locations for discriminated unions; not field names.
_TAGS = {"numeric", "categorical", "identity", "standardize", "minmax", "bucketize", "vocabulary",
         "fill", "nan", "error", "oov"}


def _describe(exc: ValidationError, data: Any, where: str) -> str:
    """One line per problem: '<where>: input 'age' (inputs[2]): transform.std: std must be > 0 ...'."""
    lines = []
    for err in exc.errors(include_url=False):
        loc = list(err["loc"])
        subject = "spec"
        if len(loc) >= 2 and loc[0] == "inputs" and isinstance(loc[1], int):
            index = loc[1]
            raw = data.get("inputs") if isinstance(data, dict) else None
            name = raw[index].get("name") if isinstance(raw, list) and index < len(raw) and isinstance(raw[index], dict) else None
            subject = f"input {name!r} (inputs[{index}])" if isinstance(name, str) else f"inputs[{index}]"
            loc = loc[2:]
            if loc and loc[0] in ("numeric", "categorical"):
                loc = loc[1:]
        field = ".".join(str(p) for p in loc if not (isinstance(p, str) and p in _TAGS))
        message = err["msg"].removeprefix("Value error, ")
        if err["type"] == "union_tag_invalid":
            message = _union_message(err)
        elif err["type"] == "union_tag_not_found":
            message = f"required key {(err.get('ctx') or {}).get('discriminator', '')} is missing"
        elif err["type"] == "extra_forbidden":
            message = "unknown key; remove it (allowed keys are listed in FORMAT.md)"
        elif err["type"] == "missing":
            message = "required key is missing"
        elif err["type"] != "value_error" and not isinstance(err.get("input"), (dict, list)):
            message = f"{message} (got {err.get('input')!r})"
        lines.append(f"{where}: {subject}: {field + ': ' if field else ''}{message}")
    return "\n".join(lines)


def _union_message(err: dict[str, Any]) -> str:
    ctx = err.get("ctx") or {}
    return (f"{ctx.get('discriminator', 'tag')} {ctx.get('tag')!r} is not known here;"
            f" expected one of {ctx.get('expected_tags')}")

