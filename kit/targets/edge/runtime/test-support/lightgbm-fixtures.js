// Hand-made LightGBM dump_model() documents for the lightgbm-json evaluator tests, and random
// ones for the latency check. The expected outputs of HAND_ROWS were checked against LightGBM
// 4.7 itself (the dump rebuilt into a text model with kit/targets/edge/lightgbm.py
// dump_to_model_string, then Booster.predict).
import { createHash } from "node:crypto";

const KZ = Math.fround(1e-35); // LightGBM's kZeroThreshold, the threshold it writes for "x <= 0"

const leaf = (v) => ({ leaf_value: v });
const num = (f, t, missing, defaultLeft, l, r) => ({ split_feature: f, threshold: t, decision_type: "<=", default_left: defaultLeft, missing_type: missing, left_child: l, right_child: r });
const cat = (f, cats, missing, l, r) => ({ split_feature: f, threshold: cats, decision_type: "==", default_left: false, missing_type: missing, left_child: l, right_child: r });

/** 4 features: f0, f1, f3 numeric, f2 categorical. Every missing_type, default_left both ways. */
export function handDump({ objective = "binary sigmoid:2" } = {}) {
  return {
    name: "tree", version: "v4", num_class: 1, num_tree_per_iteration: 1, label_index: 0, max_feature_idx: 3,
    objective, average_output: false, feature_names: ["f0", "f1", "f2", "f3"],
    tree_info: [
      { tree_structure: num(0, 1.5, "NaN", true,
        num(1, 0.5, "Zero", false, leaf(0.1), leaf(0.2)),
        cat(2, "1||3||40", "None", leaf(-0.3), num(3, -2.5, "None", true, leaf(0.4), leaf(-0.5)))) },
      { tree_structure: num(0, -1, "NaN", false, leaf(0.05), num(3, 2, "Zero", true, leaf(0.01), leaf(0.02))) },
      { tree_structure: leaf(0.125) },
      // dump_model() writes an infinite threshold as 1e300 (AvoidInf): LightGBM sends 1e301 left.
      { tree_structure: num(0, 1e300, "NaN", false, leaf(0), leaf(0.001)) },
      // A split at zero as LightGBM writes it, no missing handling: NaN -> 0 -> left.
      { tree_structure: num(3, KZ, "None", false, leaf(-0.0625), leaf(0.0625)) },
    ],
  };
}

/** [row, raw score] pairs for handDump(); comments give the path through trees 0, 1, 4. */
export const HAND_ROWS = [
  [[1.5, 0, 1, 0], 0.2 + 0.01 + 0.125 + 0 - 0.0625],            // f0 at threshold -> left; f1 zero -> default right; f3 zero -> default left
  [[NaN, NaN, 1, NaN], 0.2 + 0.01 + 0.125 + 0.001 - 0.0625],     // f0 NaN -> default left; f1 NaN -> 0 -> zero -> right; T1 NaN default right; T3 NaN -> right
  [[2, 5, 3, NaN], -0.3 + 0.01 + 0.125 + 0 - 0.0625],            // category 3 -> left
  [[2, 5, NaN, NaN], -0.5 + 0.01 + 0.125 + 0 - 0.0625],          // categorical NaN -> right; f3 NaN (None) -> 0 > -2.5 -> right
  [[2, 5, 40.7, -3], -0.3 + 0.01 + 0.125 + 0 - 0.0625],          // 40.7 -> category 40 (truncation) -> left
  [[2, 5, -0.5, -3], 0.4 + 0.01 + 0.125 + 0 - 0.0625],           // -0.5 -> category 0, not listed -> right
  [[2, 5, 41, 3], -0.5 + 0.02 + 0.125 + 0 + 0.0625],             // 41 not listed; f3 3 > 2
  [[2, 5, 2 ** 31, -2.5], 0.4 + 0.01 + 0.125 + 0 - 0.0625],      // out of int range -> right; f3 at threshold -> left
  [[-2, 1e-36, 0, 0], 0.2 + 0.05 + 0.125 + 0 - 0.0625],          // |f1| <= kZeroThreshold is zero -> default right
  [[0, 2e-35, 0, 0], 0.1 + 0.01 + 0.125 + 0 - 0.0625],           // 2e-35 is not zero -> 2e-35 <= 0.5 left
  [[0, 1.00000001e-35, 0, 0], 0.2 + 0.01 + 0.125 + 0 - 0.0625],  // below fround(1e-35) -> zero
  [[-1, -1, 0, 1e-36], 0.1 + 0.05 + 0.125 + 0 - 0.0625],         // f0 = -1 at T1's threshold -> left
  [[Infinity, 5, Infinity, Infinity], -0.5 + 0.02 + 0.125 + 0 + 0.0625],
  [[1e301, 5, 3, 7], -0.3 + 0.02 + 0.125 + 0 + 0.0625],          // 1e301 <= inf -> T3 left
  [[-1e-36, -1, 1, -2e-35], 0.1 + 0.01 + 0.125 + 0 - 0.0625],    // f3 -2e-35 <= KZ -> left (T4); T1: f3 not zero, -2e-35 <= 2 -> left
];

/** A 3-class dump, 2 iterations, with a linear-free categorical split. */
export function multiclassDump() {
  return {
    name: "tree", version: "v4", num_class: 3, num_tree_per_iteration: 3, label_index: 0, max_feature_idx: 1,
    objective: "multiclass num_class:3", average_output: false, feature_names: ["x", "c"],
    tree_info: [
      { tree_structure: num(0, 0, "NaN", true, leaf(1), leaf(-1)) },
      { tree_structure: cat(1, "0||2", "NaN", leaf(0.5), leaf(0)) },
      { tree_structure: leaf(0.25) },
      { tree_structure: num(0, 1, "None", false, leaf(0.1), leaf(0.3)) },
      { tree_structure: leaf(-0.2) },
      { tree_structure: cat(1, "2", "None", leaf(2), leaf(-0.5)) },
    ],
  };
}

/** Random binary dump: `trees` trees of `leaves` leaves over `features` features (a few categorical). */
export function randomDump({ trees = 100, leaves = 31, features = 24, categorical = [20, 21, 22, 23], seed = 1 } = {}) {
  let s = seed >>> 0;
  const rand = () => ((s = (Math.imul(s, 1664525) + 1013904223) >>> 0) / 4294967296);
  const missing = ["None", "Zero", "NaN"];
  function grow(n) {
    if (n === 1) return leaf((rand() - 0.5) * 0.2);
    const f = Math.floor(rand() * features);
    const nl = 1 + Math.floor(rand() * (n - 1));
    const l = grow(nl), r = grow(n - nl);
    if (categorical.includes(f)) {
      const cats = [...new Set(Array.from({ length: 1 + Math.floor(rand() * 5) }, () => Math.floor(rand() * 30)))].sort((a, b) => a - b);
      return cat(f, cats.join("||"), "NaN", l, r);
    }
    return num(f, (rand() - 0.5) * 4, missing[Math.floor(rand() * 3)], rand() < 0.5, l, r);
  }
  return {
    name: "tree", version: "v4", num_class: 1, num_tree_per_iteration: 1, label_index: 0, max_feature_idx: features - 1,
    objective: "binary sigmoid:1", average_output: false, feature_names: Array.from({ length: features }, (_, i) => `f${i}`),
    tree_info: Array.from({ length: trees }, () => ({ tree_structure: grow(leaves) })),
  };
}

const sha = (b) => createHash("sha256").update(b).digest("hex");

/** Files of a lightgbm-json bundle (Map path -> Buffer) for `dump`, with a feature spec. */
export function lightgbmBundleFiles(dump, { spec, task = "binary", labels = ["neg", "pos"], mutate } = {}) {
  const files = new Map();
  files.set("feature_spec.json", Buffer.from(JSON.stringify(spec, null, 2)));
  files.set("model/model.json", Buffer.from(JSON.stringify(dump)));
  const manifest = {
    format: "kit-edge-bundle/1",
    model: { name: "lgb-fixture", version: "1" },
    kind: "lightgbm-json",
    task,
    labels,
    inputs: spec.inputs.map((i) => ({ name: i.name, type: i.kind === "numeric" ? "number" : "string", ...(i.range ? { range: i.range } : {}) })),
    files: Object.fromEntries([...files].map(([p, bytes]) => [p, sha(bytes)])),
    created_at: "2026-11-22T14:00:00Z",
  };
  if (mutate) mutate(manifest, files);
  files.set("manifest.json", Buffer.from(JSON.stringify(manifest, null, 2)));
  return files;
}
