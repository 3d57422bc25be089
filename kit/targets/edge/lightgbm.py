"""LightGBM to the edge: the `lightgbm-json` bundle kind, Python side.

The edge runtime evaluates `booster.dump_model()` JSON (runtime/src/models/lightgbm.js) exactly
as LightGBM's own predictor does, so a booster trained on the feature-spec matrix (categorical
inputs with `output="index"`, declared as `categorical_feature` to LightGBM; numeric inputs with
`missing="nan"` for LightGBM's own missing-value handling) gets exactly the same inputs and
gives the same probabilities at the edge (measured: raw scores bit-identical, probabilities
within ~2e-16).

    X = spec.transform(train[spec.input_names])                     # float64, NaN = missing
    booster = lgb.train(params, lgb.Dataset(X, y, categorical_feature=[...]))
    booster.save_model("build/model.txt")                           # the parity reference
    export_booster(booster, "build/lgb")                            # build/lgb/model.json
    write_bundle("build/bundle", model_dir="build/lgb", kind="lightgbm-json", task="binary",
                 labels=["no", "yes"], feature_spec=spec, model_name="churn")
    lightgbm_predict("build/model.txt", X)                          # (n, 1) reference outputs

The reference is LightGBM itself, so the parity gate's `reference` for a lightgbm-json bundle is
best the booster's text model written by `booster.save_model` (an independent source). Given the
dump JSON instead (e.g. the bundle's model/model.json), `lightgbm_predict` rebuilds a text model
from it (`dump_to_model_string`: LightGBM cannot load a dump) and lets LightGBM evaluate that:
it proves the JSON holds the model LightGBM would run, but shares this module's reading of
the dump.

Importing this module does not import lightgbm; the functions that need it import it.
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from kit.targets.edge.convert import ConversionError

# What the JS evaluator reads; everything else in a dump (gains, counts, weights, importances,
# feature_infos, ...) is left out of the bundle.
_TOP_KEYS = ("name", "version", "num_class", "num_tree_per_iteration", "label_index", "max_feature_idx",
             "objective", "average_output", "feature_names")
_NODE_KEYS = ("split_feature", "threshold", "decision_type", "default_left", "missing_type")
_LINEAR_LEAF_KEYS = ("leaf_const", "leaf_features", "leaf_coeff")
_MISSING_TYPES = {"None": 0, "Zero": 1, "NaN": 2}


class LightgbmError(ConversionError):
    """A LightGBM model cannot be exported, read or evaluated."""


# -- export --------------------------------------------------------------------------------------

def _booster(booster_or_model_file: Any):
    if isinstance(booster_or_model_file, (str, Path)):
        import lightgbm as lgb

        path = Path(booster_or_model_file)
        if not path.is_file():
            raise LightgbmError(f"{path}: LightGBM model file not found; write it with booster.save_model(path)")
        try:
            return lgb.Booster(model_file=str(path))
        except Exception as exc:  # lightgbm.basic.LightGBMError, ValueError
            raise LightgbmError(f"{path}: LightGBM cannot load this model file: {exc}") from None
    if hasattr(booster_or_model_file, "booster_"):  # sklearn API (LGBMClassifier, ...)
        return booster_or_model_file.booster_
    if hasattr(booster_or_model_file, "dump_model"):
        return booster_or_model_file
    raise LightgbmError(f"export_booster: expected a lightgbm.Booster, an LGBM estimator or a model file path,"
                        f" got {type(booster_or_model_file).__name__}")


def _compact_node(node: Mapping[str, Any]) -> dict[str, Any]:
    """One tree, keeping only what prediction needs (iterative: trees can be deep)."""
    def shallow(n: Mapping[str, Any]) -> dict[str, Any]:
        if "split_feature" in n:
            return {k: n[k] for k in _NODE_KEYS if k in n}
        out = {"leaf_value": n["leaf_value"]}
        out.update({k: n[k] for k in _LINEAR_LEAF_KEYS if k in n})
        return out

    root = shallow(node)
    stack = [(node, root)]
    while stack:
        src, dst = stack.pop()
        if "split_feature" in src:
            for side in ("left_child", "right_child"):
                dst[side] = shallow(src[side])
                stack.append((src[side], dst[side]))
    return root


def compact_dump(dump: Mapping[str, Any]) -> dict[str, Any]:
    """A `booster.dump_model()` document reduced to what the edge evaluator reads."""
    if not isinstance(dump, Mapping) or not isinstance(dump.get("tree_info"), list):
        raise LightgbmError("not a LightGBM dump_model() document (no tree_info)")
    out = {k: dump[k] for k in _TOP_KEYS if k in dump}
    out["tree_info"] = [{"num_leaves": t.get("num_leaves"), "tree_structure": _compact_node(t["tree_structure"])}
                        for t in dump["tree_info"]]
    return out


def export_booster(booster_or_model_file: Any, out_path: str | Path, *, num_iteration: int | None = None,
                   feature_spec: Any = None) -> Path:
    """Write the booster's compact `dump_model()` JSON for a lightgbm-json bundle; return its path.

    `booster_or_model_file`: a lightgbm.Booster, a fitted LGBM estimator, or a text model file
    (booster.save_model). `out_path`: a `.json` file, or a folder (then `<folder>/model.json`,
    what `write_bundle(model_dir=folder, kind="lightgbm-json")` reads). `num_iteration`: as in
    `dump_model` (None: the best iteration if early stopping set one, else all), so keep it the
    same as the `save_model` call that writes the parity reference. `feature_spec` (optional, a
    FeatureSpec or its path): check the model takes exactly the spec's columns.
    """
    booster = _booster(booster_or_model_file)
    dump = booster.dump_model(num_iteration=num_iteration)
    if dump.get("pandas_categorical"):
        warnings.warn("this booster was trained on pandas categorical columns: it expects pandas' category codes,"
                      " while the edge runtime feeds the feature spec's vocabulary indices; train on"
                      " spec.transform(...) output instead", stacklevel=2)
    compact = compact_dump(dump)
    if feature_spec is not None:
        from kit.features import FeatureSpec, load_spec

        spec = feature_spec if isinstance(feature_spec, FeatureSpec) else load_spec(feature_spec)
        width = compact["max_feature_idx"] + 1
        if width != spec.width:
            raise LightgbmError(f"export_booster: the booster takes {width} features but the feature spec makes"
                                f" {spec.width} ({spec.column_names}); train on spec.transform(...) output")
    out = Path(out_path)
    if out.suffix.lower() != ".json":
        out = out / "model.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(compact, separators=(",", ":"), allow_nan=False), encoding="utf-8")
    return out


# -- dump JSON -> LightGBM text model ------------------------------------------------------------

def _num(x: float) -> str:
    """A double as LightGBM's text model writes it (round-trip exact); +-1e300 from AvoidInf -> +-inf."""
    x = float(x)
    if x >= 1e300:
        return "inf"
    if x <= -1e300:
        return "-inf"
    return repr(x)


def _tree_text(index: int, structure: Mapping[str, Any]) -> str:
    """Tree::ToString for one dump tree: nodes in pre-order, leaves in the order reached."""
    split_feature, threshold, decision_type, left, right = [], [], [], [], []
    leaf_value, leaf_const, leaf_features, leaf_coeff = [], [], [], []
    cat_boundaries, cat_threshold = [0], []
    linear = False

    def add_leaf(n: Mapping[str, Any]) -> int:
        nonlocal linear
        leaf_value.append(_num(n["leaf_value"]))
        if any(k in n for k in _LINEAR_LEAF_KEYS):
            linear = True
        leaf_const.append(_num(n.get("leaf_const", n["leaf_value"])))
        leaf_features.append([int(f) for f in n.get("leaf_features", [])])
        leaf_coeff.append([_num(c) for c in n.get("leaf_coeff", [])])
        return ~(len(leaf_value) - 1)

    if "split_feature" not in structure:
        add_leaf(structure)
    else:
        stack: list[tuple[Mapping[str, Any], int, bool]] = [(structure, -1, False)]
        while stack:
            n, parent, is_left = stack.pop()
            if "split_feature" in n:
                ref = len(split_feature)
                split_feature.append(int(n["split_feature"]))
                missing = _MISSING_TYPES[n.get("missing_type", "None")]
                flags = (missing << 2) | (2 if n.get("default_left") else 0)
                if n.get("decision_type") == "==":
                    flags |= 1
                    text = str(n["threshold"])
                    cats = [int(c) for c in text.split("||")] if text else []
                    words = [0] * ((max(cats) // 32 + 1) if cats else 0)
                    for c in cats:
                        words[c // 32] |= 1 << (c % 32)
                    threshold.append(str(len(cat_boundaries) - 1))  # the categorical split's index
                    cat_threshold.extend(words)
                    cat_boundaries.append(len(cat_threshold))
                else:
                    threshold.append(_num(n["threshold"]))
                decision_type.append(flags)
                left.append(0)
                right.append(0)
                stack.append((n["right_child"], ref, False))
                stack.append((n["left_child"], ref, True))
            else:
                ref = add_leaf(n)
            if parent >= 0:
                (left if is_left else right)[parent] = ref

    join = lambda xs: " ".join(str(x) for x in xs)  # noqa: E731
    num_cat = len(cat_boundaries) - 1
    lines = [f"Tree={index}", f"num_leaves={len(leaf_value)}", f"num_cat={num_cat}"]
    if split_feature:
        lines += [f"split_feature={join(split_feature)}", f"split_gain={join([0] * len(split_feature))}",
                  f"threshold={join(threshold)}", f"decision_type={join(decision_type)}",
                  f"left_child={join(left)}", f"right_child={join(right)}"]
    lines.append(f"leaf_value={join(leaf_value)}")
    if num_cat:
        lines += [f"cat_boundaries={join(cat_boundaries)}", f"cat_threshold={join(cat_threshold)}"]
    lines.append(f"is_linear={int(linear)}")
    if linear:
        lines += [f"leaf_const={join(leaf_const)}", f"num_features={join(len(f) for f in leaf_features)}",
                  "leaf_features=" + "".join((join(f) + " " if f else "") + " " for f in leaf_features),
                  "leaf_coeff=" + "".join((join(c) + " " if c else "") + " " for c in leaf_coeff)]
    lines.append("shrinkage=1")
    return "\n".join(lines) + "\n\n\n"


def dump_to_model_string(dump: Mapping[str, Any]) -> str:
    """A LightGBM text model (as `booster.model_to_string()` writes it) holding exactly the trees,
    objective and settings of a (compact or full) `dump_model()` document, for
    `lightgbm.Booster(model_str=...)`. Split gains, counts and weights are not kept (zeros)."""
    if not isinstance(dump, Mapping) or not isinstance(dump.get("tree_info"), list):
        raise LightgbmError("not a LightGBM dump_model() document (no tree_info)")
    try:
        width = int(dump["max_feature_idx"]) + 1
        num_class = int(dump.get("num_class", 1))
        names = dump.get("feature_names") or [f"Column_{i}" for i in range(width)]
        header = ["tree", f"version={dump.get('version', 'v4')}", f"num_class={num_class}",
                  f"num_tree_per_iteration={int(dump.get('num_tree_per_iteration', num_class))}",
                  f"label_index={int(dump.get('label_index', 0))}", f"max_feature_idx={width - 1}"]
        if dump.get("objective"):
            header.append(f"objective={dump['objective']}")
        if dump.get("average_output"):
            header.append("average_output")
        header += [f"feature_names={' '.join(names)}", f"feature_infos={' '.join(['none'] * width)}"]
        trees = [_tree_text(i, t["tree_structure"]) for i, t in enumerate(dump["tree_info"])]
    except (KeyError, TypeError, ValueError) as exc:
        raise LightgbmError(f"malformed dump_model() document: {type(exc).__name__}: {exc}") from None
    return "\n".join(header) + "\n\n" + "".join(trees) + "end of trees\n"


# -- reference prediction ------------------------------------------------------------------------

def _load_reference(model: Any):
    import lightgbm as lgb

    if isinstance(model, Mapping):
        return lgb.Booster(model_str=dump_to_model_string(model))
    if not isinstance(model, (str, Path)):
        return _booster(model)
    path = Path(model)
    if path.is_dir():
        found = next((path / n for n in ("model.txt", "model.json") if (path / n).is_file()), None)
        if found is None:
            raise LightgbmError(f"{path}: no model.txt (booster.save_model) or model.json (dump) in this folder")
        path = found
    if not path.is_file():
        raise LightgbmError(f"{path}: LightGBM model not found; pass the file booster.save_model wrote")
    with open(path, "rb") as handle:
        head = handle.read(64).lstrip()
    if head.startswith(b"{"):
        try:
            dump = json.loads(path.read_text(encoding="utf-8"))
        except ValueError as exc:
            raise LightgbmError(f"{path}: not valid JSON: {exc}") from None
        try:
            return lgb.Booster(model_str=dump_to_model_string(dump))
        except LightgbmError as exc:
            raise LightgbmError(f"{path}: {exc}") from None
        except Exception as exc:
            raise LightgbmError(f"{path}: LightGBM cannot rebuild a model from this dump: {exc}") from None
    return _booster(path)


def lightgbm_predict(model: Any, X: Any) -> np.ndarray:
    """LightGBM's own predictions for feature vectors X (n, width), float64 with NaN = missing:
    numpy (n, k) float64 (binary / regression: k = 1, P(label 1) for binary; multiclass: one
    probability per class), what the edge runtime's outputs must equal.

    `model`: the text model file of `booster.save_model` (preferred: the independent reference),
    a `dump_model()` JSON file / dict (rebuilt into a text model first), a folder holding
    model.txt or model.json, or a Booster.
    """
    booster = _load_reference(model)
    X = np.ascontiguousarray(np.asarray(X, dtype=np.float64))
    if X.ndim != 2:
        raise LightgbmError(f"lightgbm_predict: X must be a 2-D batch (rows, features), got shape {X.shape}")
    if X.shape[1] != booster.num_feature():
        raise LightgbmError(f"lightgbm_predict: the model takes {booster.num_feature()} features, X has {X.shape[1]}")
    if len(X) == 0:
        width = np.zeros((1, X.shape[1]))
        return np.zeros((0, np.asarray(booster.predict(width)).reshape(1, -1).shape[1]))
    return np.asarray(booster.predict(X), dtype=np.float64).reshape(len(X), -1)


__all__ = ["LightgbmError", "compact_dump", "dump_to_model_string", "export_booster", "lightgbm_predict"]
