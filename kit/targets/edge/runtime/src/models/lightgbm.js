// "lightgbm-json" model kind: a LightGBM booster as its `booster.dump_model()` JSON (bundle file
// model/model.json), evaluated exactly as LightGBM's C++ predictor does (v4, include/LightGBM/tree.h
// and src/boosting/gbdt_prediction.cpp), in double precision:
//
//   - input: values with |x| <= kZeroThreshold become 0 (LightGBM drops them when it reads a
//     dense row), NaN stays NaN. kZeroThreshold is `const double kZeroThreshold = 1e-35f`, a
//     FLOAT literal: Math.fround(1e-35) = 1.0000000180025095e-35, which is also the threshold
//     LightGBM writes for splits at zero.
//   - numerical split (decision_type "<="): NaN becomes 0 unless missing_type is "NaN"; then
//     missing_type "Zero" and -kZ <= x <= kZ, or missing_type "NaN" and x is NaN, go to the
//     default side (default_left); otherwise left iff x <= threshold. The dump writes an
//     infinite threshold as +-1e300 (Common::AvoidInf); it is read back as +-Infinity.
//   - categorical split (decision_type "=="; threshold "1||3||7" lists the categories going
//     left): NaN goes right (whatever missing_type says), else c = static_cast<int>(x)
//     (truncation, so -0.5 -> 0 and 2.9 -> 2; out of int range -> INT_MIN on x86), negative
//     goes right, left iff c is in the list.
//   - linear trees (linear_tree=True: leaf_const / leaf_features / leaf_coeff): leaf_const +
//     sum(coeff * x) in order, or the plain leaf_value if any of those x is NaN.
//   - raw score: per class k, the sum over iterations in tree order (tree i*K + k), starting
//     from 0; average_output (random forest) divides by the number of iterations; then the
//     objective's transform (binary: 1 / (1 + exp(-sigmoid * s)); multiclass: softmax with the
//     max subtracted; regression: identity, "sqrt" -> sign(s) * s * s; poisson / gamma /
//     tweedie: exp(s); cross_entropy_lambda: log1p(exp(s)); lambdarank: identity).
//
// Trees are compiled into flat typed arrays once; a prediction allocates nothing but its
// output arrays.
import { BundleError } from "../errors.js";
import { bundleJson } from "../bundle.js";

const MODEL_JSON = "model/model.json";

/** LightGBM's kZeroThreshold (`1e-35f` widened to double). */
export const K_ZERO_THRESHOLD = Math.fround(1e-35);
const KZ = K_ZERO_THRESHOLD;

// Node flags: LightGBM's own decision_type byte.
const CATEGORICAL = 1;
const DEFAULT_LEFT = 2;
const MISSING_TYPES = { None: 0, Zero: 1, NaN: 2 };
const MISSING_ZERO = 1;
const MISSING_NAN = 2;

// Output transforms.
const IDENTITY = 0, SIGMOID = 1, SOFTMAX = 2, EXP = 3, SQUARE = 4, LOG1P_EXP = 5;

const REGRESSION = new Set(["regression", "regression_l1", "huber", "fair", "quantile", "mape"]);
const RAW = new Set(["lambdarank", "rank_xendcg", "custom", "none", ""]);

function fail(message) {
  throw new BundleError(`${MODEL_JSON}: ${message}`);
}

/** objective string of the dump ("binary sigmoid:1", "multiclass num_class:3", "regression sqrt") -> transform. */
export function parseObjective(objective, numClass) {
  const tokens = String(objective ?? "").trim().split(/\s+/).filter(Boolean);
  const name = tokens[0] ?? "";
  const params = new Map();
  for (const t of tokens.slice(1)) {
    const i = t.indexOf(":");
    params.set(i < 0 ? t : t.slice(0, i), i < 0 ? true : t.slice(i + 1));
  }
  const coefficient = () => {
    const s = params.has("sigmoid") ? Number(params.get("sigmoid")) : 1;
    if (!Number.isFinite(s) || s <= 0) fail(`objective ${JSON.stringify(objective)} has an invalid sigmoid coefficient`);
    return s;
  };
  if (name === "binary") return { name, transform: SIGMOID, sigmoid: coefficient() };
  if (name === "multiclassova") return { name, transform: SIGMOID, sigmoid: coefficient() };
  if (name === "cross_entropy") return { name, transform: SIGMOID, sigmoid: 1 };
  if (name === "cross_entropy_lambda") return { name, transform: LOG1P_EXP, sigmoid: 1 };
  if (name === "multiclass") {
    if (numClass < 2) fail(`objective multiclass with num_class ${numClass}`);
    return { name, transform: SOFTMAX, sigmoid: 1 };
  }
  if (REGRESSION.has(name)) return { name, transform: params.has("sqrt") ? SQUARE : IDENTITY, sigmoid: 1 };
  if (name === "poisson" || name === "gamma" || name === "tweedie") return { name, transform: EXP, sigmoid: 1 };
  if (RAW.has(name)) return { name: name || "none", transform: IDENTITY, sigmoid: 1 };
  return fail(`objective ${JSON.stringify(objective)} is not supported by this runtime`);
}

function integer(value, what, min = 0, max = 2147483647) {
  if (!Number.isInteger(value) || value < min || value > max) fail(`${what} must be an integer in [${min}, ${max}], got ${JSON.stringify(value)}`);
  return value;
}

/**
 * Compile a `booster.dump_model()` document into a flat evaluator.
 * Returns { numFeatures, numOutputs, numTrees, objective, predictRow(row, out), predict(rows, width) }.
 */
export function compileLightgbm(dump) {
  if (dump == null || typeof dump !== "object" || !Array.isArray(dump.tree_info)) {
    fail("not a LightGBM dump_model() document (no tree_info); write booster.dump_model() as JSON");
  }
  const numFeatures = integer(dump.max_feature_idx, "max_feature_idx", 0) + 1;
  const numClass = integer(dump.num_class ?? 1, "num_class", 1, 1 << 20);
  const K = integer(dump.num_tree_per_iteration ?? numClass, "num_tree_per_iteration", 1, 1 << 20);
  if (K !== numClass) fail(`num_tree_per_iteration (${K}) differs from num_class (${numClass}); such models are not supported`);
  const objective = parseObjective(dump.objective, numClass);
  const trees = dump.tree_info;
  if (trees.length % K !== 0) fail(`${trees.length} trees is not a whole number of iterations of ${K} trees`);
  const numIterations = trees.length / K;
  const averageOutput = dump.average_output === true;

  // Growable node / leaf columns, turned into typed arrays at the end.
  const feature = [], threshold = [], flags = [], left = [], right = [], catStart = [], catWords = [];
  const bits = [];
  const leafValue = [], leafConst = [], leafFeatStart = [], leafFeatCount = [], leafFeat = [], leafCoeff = [];
  const roots = new Int32Array(trees.length);
  let linear = false;

  // Error paths ("tree_info[3].tree_structure.left_child.threshold") are only built on failure:
  // find the node again from the current tree's root.
  let currentTree = 0;
  function pathOf(target) {
    const stack = [[trees[currentTree] && trees[currentTree].tree_structure, `tree_info[${currentTree}].tree_structure`]];
    while (stack.length) {
      const [node, path] = stack.pop();
      if (node === target) return path;
      if (node && typeof node === "object" && "split_feature" in node) {
        stack.push([node.right_child, `${path}.right_child`], [node.left_child, `${path}.left_child`]);
      }
    }
    return `tree_info[${currentTree}]`;
  }
  const bad = (node, message) => fail(`${pathOf(node)}${message}`);
  const isIndex = (v, max) => Number.isInteger(v) && v >= 0 && v <= max;

  function addLeaf(leaf) {
    const i = leafValue.length;
    const value = leaf.leaf_value;
    if (typeof value !== "number" || !Number.isFinite(value)) bad(leaf, `.leaf_value must be a finite number, got ${JSON.stringify(value)}`);
    leafValue.push(value);
    if (leaf.leaf_const !== undefined || leaf.leaf_features !== undefined || leaf.leaf_coeff !== undefined) {
      linear = true;
      const feats = leaf.leaf_features ?? [];
      const coeffs = leaf.leaf_coeff ?? [];
      if (!Array.isArray(feats) || !Array.isArray(coeffs) || feats.length !== coeffs.length) {
        bad(leaf, ": leaf_features and leaf_coeff must be arrays of the same length");
      }
      if (typeof leaf.leaf_const !== "number" || !Number.isFinite(leaf.leaf_const)) bad(leaf, ".leaf_const must be a finite number");
      leafConst.push(leaf.leaf_const);
      leafFeatStart.push(leafFeat.length);
      leafFeatCount.push(feats.length);
      for (let j = 0; j < feats.length; j++) {
        if (!isIndex(feats[j], numFeatures - 1)) bad(leaf, `.leaf_features[${j}] must be a feature index in [0, ${numFeatures - 1}]`);
        if (typeof coeffs[j] !== "number" || !Number.isFinite(coeffs[j])) bad(leaf, `.leaf_coeff[${j}] must be a finite number`);
        leafFeat.push(feats[j]);
        leafCoeff.push(coeffs[j]);
      }
    } else {
      leafConst.push(value);
      leafFeatStart.push(leafFeat.length);
      leafFeatCount.push(0);
    }
    return ~i;
  }

  function addSplit(node) {
    const ref = feature.length;
    const sf = node.split_feature;
    if (!isIndex(sf, numFeatures - 1)) bad(node, `.split_feature must be an integer in [0, ${numFeatures - 1}], got ${JSON.stringify(sf)}`);
    feature.push(sf);
    const mt = MISSING_TYPES[node.missing_type ?? "None"];
    if (mt === undefined) bad(node, `.missing_type ${JSON.stringify(node.missing_type)} is not None, Zero or NaN`);
    let f = (mt << 2) | (node.default_left ? DEFAULT_LEFT : 0);
    const dt = node.decision_type;
    if (dt === "==") {
      f |= CATEGORICAL;
      const text = String(node.threshold);
      const cats = text === "" ? [] : text.split("||").map(Number);
      let max = -1;
      for (const c of cats) {
        if (!isIndex(c, (1 << 26) - 1)) bad(node, `.threshold ${JSON.stringify(node.threshold)}: categories must be integers in [0, ${(1 << 26) - 1}]`);
        if (c > max) max = c;
      }
      const words = max < 0 ? 0 : (max >>> 5) + 1;
      const start = bits.length;
      for (let w = 0; w < words; w++) bits.push(0);
      for (const c of cats) bits[start + (c >>> 5)] |= 1 << (c & 31);
      threshold.push(0);
      catStart.push(start);
      catWords.push(words);
    } else if (dt === "<=" || dt === undefined) {
      const t = node.threshold;
      if (typeof t !== "number" || !Number.isFinite(t)) bad(node, `.threshold must be a finite number, got ${JSON.stringify(t)}`);
      // dump_model() writes thresholds through Common::AvoidInf (|t| >= 1e300 -> +-1e300), but
      // the booster keeps +-inf (e.g. the "every number left, NaN right" split), so
      // 1e300 < x <= inf goes left in LightGBM: map them back.
      threshold.push(t >= 1e300 ? Infinity : t <= -1e300 ? -Infinity : t);
      catStart.push(0);
      catWords.push(0);
    } else {
      bad(node, `.decision_type ${JSON.stringify(dt)} is not "<=" or "=="`);
    }
    flags.push(f);
    left.push(0);
    right.push(0);
    return ref;
  }

  // Iterative pre-order walk (trees can be deep): the node reference (>= 0 node, < 0 ~leaf).
  const stackNode = [], stackParent = [], stackLeft = [];
  function addTree(structure) {
    if (structure == null || typeof structure !== "object") fail(`tree_info[${currentTree}]: missing tree_structure`);
    if (!("split_feature" in structure)) return addLeaf(structure);
    const rootIndex = feature.length;
    stackNode.push(structure); stackParent.push(-1); stackLeft.push(false);
    while (stackNode.length) {
      const node = stackNode.pop(), parent = stackParent.pop(), isLeft = stackLeft.pop();
      let ref;
      if (node == null || typeof node !== "object") {
        fail(`tree_info[${currentTree}]: a ${isLeft ? "left" : "right"} child under split ${parent - rootIndex} is not a node`);
      }
      if (!("split_feature" in node)) {
        ref = addLeaf(node);
      } else {
        ref = addSplit(node);
        // Right pushed first so the left subtree is numbered first (pre-order, like LightGBM's dump).
        stackNode.push(node.right_child, node.left_child);
        stackParent.push(ref, ref);
        stackLeft.push(false, true);
      }
      if (parent >= 0) (isLeft ? left : right)[parent] = ref;
    }
    return rootIndex;
  }

  for (currentTree = 0; currentTree < trees.length; currentTree++) {
    const t = trees[currentTree];
    roots[currentTree] = addTree(t && t.tree_structure);
  }

  const F = Int32Array.from(feature);
  const T = Float64Array.from(threshold);
  const FL = Uint8Array.from(flags);
  const L = Int32Array.from(left);
  const R = Int32Array.from(right);
  const CS = Int32Array.from(catStart);
  const CW = Int32Array.from(catWords);
  const BITS = Uint32Array.from(bits.map((b) => b >>> 0));
  const LV = Float64Array.from(leafValue);
  const LC = Float64Array.from(leafConst);
  const LFS = Int32Array.from(leafFeatStart);
  const LFC = Int32Array.from(leafFeatCount);
  const LF = Int32Array.from(leafFeat);
  const LCO = Float64Array.from(leafCoeff);
  const numTrees = trees.length;
  const transform = objective.transform;
  const sigmoid = objective.sigmoid;

  const x = new Float64Array(numFeatures); // the row as LightGBM sees it
  const raw = new Float64Array(K);

  /** Leaf reached by the row in `x` from `node` (Tree::GetLeaf with Decision()). */
  function leafOf(node) {
    while (node >= 0) {
      const f = FL[node];
      let v = x[F[node]];
      if ((f & CATEGORICAL) !== 0) {
        // CategoricalDecision: NaN, negative, out-of-int-range -> right; else the bitset.
        let goLeft = false;
        if (v > -1 && v < 2147483648) {
          const c = v | 0; // static_cast<int>: truncation toward zero
          const w = c >>> 5;
          goLeft = w < CW[node] && ((BITS[CS[node] + w] >>> (c & 31)) & 1) === 1;
        }
        node = goLeft ? L[node] : R[node];
      } else {
        const mt = f >> 2;
        if (v !== v && mt !== MISSING_NAN) v = 0;
        if ((mt === MISSING_ZERO && v >= -KZ && v <= KZ) || (mt === MISSING_NAN && v !== v)) {
          node = (f & DEFAULT_LEFT) !== 0 ? L[node] : R[node];
        } else {
          node = v <= T[node] ? L[node] : R[node];
        }
      }
    }
    return ~node;
  }

  function treeOutput(t) {
    const leaf = leafOf(roots[t]);
    if (!linear) return LV[leaf];
    let out = LC[leaf];
    const start = LFS[leaf], end = start + LFC[leaf];
    for (let j = start; j < end; j++) {
      const v = x[LF[j]];
      if (v !== v) return LV[leaf];
      out += LCO[j] * v;
    }
    return out;
  }

  /** One row (array-like of numFeatures numbers) -> `out` (length numClass): LightGBM's Predict. */
  function predictRow(row, out) {
    for (let j = 0; j < numFeatures; j++) {
      const v = +row[j];
      x[j] = v >= -KZ && v <= KZ ? 0 : v; // RowFunctionFromDenseMatric drops |v| <= kZeroThreshold
    }
    raw.fill(0);
    if (K === 1) {
      let s = 0;
      for (let t = 0; t < numTrees; t++) s += treeOutput(t);
      raw[0] = s;
    } else {
      for (let t = 0, k = 0; t < numTrees; t++) {
        raw[k] += treeOutput(t);
        if (++k === K) k = 0;
      }
    }
    if (averageOutput && numIterations > 0) for (let k = 0; k < K; k++) raw[k] /= numIterations;
    switch (transform) {
      case SIGMOID:
        for (let k = 0; k < K; k++) out[k] = 1 / (1 + Math.exp(-sigmoid * raw[k]));
        break;
      case SOFTMAX: {
        let wmax = raw[0];
        for (let k = 1; k < K; k++) if (raw[k] > wmax) wmax = raw[k];
        let wsum = 0;
        for (let k = 0; k < K; k++) { out[k] = Math.exp(raw[k] - wmax); wsum += out[k]; }
        for (let k = 0; k < K; k++) out[k] /= wsum;
        break;
      }
      case EXP:
        for (let k = 0; k < K; k++) out[k] = Math.exp(raw[k]);
        break;
      case SQUARE:
        for (let k = 0; k < K; k++) out[k] = Math.sign(raw[k]) * raw[k] * raw[k];
        break;
      case LOG1P_EXP:
        for (let k = 0; k < K; k++) out[k] = Math.log1p(Math.exp(raw[k]));
        break;
      default:
        for (let k = 0; k < K; k++) out[k] = raw[k];
    }
    return out;
  }

  /** rows: Float64Array[] of `width` columns -> number[][] (numClass outputs per row). */
  function predict(rows, width) {
    if (width !== numFeatures) {
      throw new BundleError(`the feature spec yields ${width} columns but the LightGBM model expects ${numFeatures}`);
    }
    const result = new Array(rows.length);
    for (let i = 0; i < rows.length; i++) result[i] = predictRow(rows[i], new Array(K));
    return result;
  }

  return {
    numFeatures,
    numOutputs: K,
    numTrees,
    numNodes: F.length,
    numLeaves: LV.length,
    linear,
    objective: objective.name,
    featureNames: Array.isArray(dump.feature_names) ? dump.feature_names.slice() : null,
    predictRow,
    predict,
  };
}

/** Factory for manifest.kind "lightgbm-json". */
export async function createLightgbmPredictor(bundle) {
  const model = compileLightgbm(bundleJson(bundle, MODEL_JSON));
  return {
    kind: "lightgbm-json",
    inputWidth: model.numFeatures,
    outputWidth: model.numOutputs,
    /** rows: Float64Array[] -> Promise<number[][]>, like every predictor (the work is synchronous). */
    async predict(rows, width) {
      return model.predict(rows, width);
    },
    dispose() {},
    model,
  };
}
