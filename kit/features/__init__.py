"""Feature spec (`kit-feature-spec/1`): declarative preprocessing shared by Python and the edge.

The format is described in the reference docs (docs/formats/feature-spec.md); the JavaScript twin lives in
kit/targets/edge/runtime/src/features.js. Importing this package loads pydantic and numpy,
never pandas or tensorflow.

    from kit.features import FeatureSpec, categorical, load_spec, numeric
    spec = FeatureSpec.of(numeric("age", df["age"]), categorical("device", df["device"]))
    spec.save("feature_spec.json")
    X = load_spec("feature_spec.json").transform(df.drop(columns="label"))
"""

from kit.features.build import bucketized, categorical, numeric
from kit.features.spec import CategoricalInput, FeatureSpec, FeatureSpecError, NumericInput, load_spec
from kit.features.transform import RowError

__all__ = [
    "CategoricalInput",
    "FeatureSpec",
    "FeatureSpecError",
    "NumericInput",
    "RowError",
    "bucketized",
    "categorical",
    "load_spec",
    "numeric",
]
