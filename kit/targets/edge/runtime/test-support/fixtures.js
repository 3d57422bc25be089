// Test fixtures: a small but real TF.js graph model written by hand (GraphDef JSON + float32
// weight shards), wrapped in a kit-edge-bundle/1 with a feature spec that uses every transform.
import { createHash } from "node:crypto";
import { mkdtempSync, mkdirSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";

export const SPEC = {
  format: "kit-feature-spec/1",
  inputs: [
    { name: "a", kind: "numeric", missing: { strategy: "fill", value: 1.5 }, range: { min: 0, max: 10 }, transform: { type: "standardize", mean: 2, std: 4 } },
    { name: "b", kind: "numeric", range: { min: -1, max: 1 }, transform: { type: "minmax", min: -1, max: 1 } },
    { name: "c", kind: "numeric", missing: { strategy: "nan" }, transform: { type: "bucketize", boundaries: [0, 5], output: "one_hot" } },
    { name: "d", kind: "categorical", transform: { type: "vocabulary", values: ["x", "y", "z"], output: "one_hot" } },
  ],
};
export const WIDTH = 1 + 1 + 3 + 4;

const sha = (b) => createHash("sha256").update(b).digest("hex");
const f32 = (arr) => Buffer.from(new Float32Array(arr).buffer);

/** Deterministic weights. */
export function weights(width, k) {
  const W = [];
  for (let i = 0; i < width; i++) for (let j = 0; j < k; j++) W.push(Math.sin(1 + i * 7 + j * 3) * 1.3);
  const b = Array.from({ length: k }, (_, j) => 0.1 * (j - 1));
  return { W, b };
}

const dim = (...sizes) => ({ dim: sizes.map((s) => ({ size: String(s) })) });

export function graphModelJson(width, k, activation, { shards = 2 } = {}) {
  const fl = { type: "DT_FLOAT" };
  const nodes = [
    { name: "features", op: "Placeholder", attr: { dtype: fl, shape: { shape: dim(-1, width) } } },
    { name: "dense/kernel", op: "Const", attr: { dtype: fl, value: { tensor: { dtype: "DT_FLOAT", tensorShape: dim(width, k) } } } },
    { name: "dense/bias", op: "Const", attr: { dtype: fl, value: { tensor: { dtype: "DT_FLOAT", tensorShape: dim(k) } } } },
    { name: "dense/MatMul", op: "MatMul", input: ["features", "dense/kernel"], attr: { T: fl, transpose_a: { b: false }, transpose_b: { b: false } } },
    { name: "dense/BiasAdd", op: "BiasAdd", input: ["dense/MatMul", "dense/bias"], attr: { T: fl, data_format: { s: Buffer.from("NHWC").toString("base64") } } },
    { name: "dense/act", op: activation === "sigmoid" ? "Sigmoid" : "Softmax", input: ["dense/BiasAdd"], attr: { T: fl } },
    { name: "Identity", op: "Identity", input: ["dense/act"], attr: { T: fl } },
  ];
  const paths = Array.from({ length: shards }, (_, i) => `group1-shard${i + 1}of${shards}.bin`);
  return {
    format: "graph-model",
    generatedBy: "hand-written test fixture",
    convertedBy: null,
    signature: {
      inputs: { features: { name: "features:0", dtype: "DT_FLOAT", tensorShape: dim(-1, width) } },
      outputs: { probs: { name: "Identity:0", dtype: "DT_FLOAT", tensorShape: dim(-1, k) } },
    },
    modelTopology: { node: nodes, library: {}, versions: { producer: 1987 } },
    weightsManifest: [{ paths, weights: [{ name: "dense/kernel", shape: [width, k], dtype: "float32" }, { name: "dense/bias", shape: [k], dtype: "float32" }] }],
  };
}

/**
 * Files of a fixture bundle: Map path -> Buffer (manifest.json included).
 * task "multiclass" (3 labels, softmax) or "binary" (1 sigmoid output).
 */
export function bundleFiles({ task = "multiclass", shards = 2, spec = SPEC, mutate } = {}) {
  const k = task === "binary" ? 1 : 3;
  const width = WIDTH;
  const { W, b } = weights(width, k);
  const weightBytes = Buffer.concat([f32(W), f32(b)]);
  const mj = graphModelJson(width, k, task === "binary" ? "sigmoid" : "softmax", { shards });
  const files = new Map();
  files.set("feature_spec.json", Buffer.from(JSON.stringify(spec, null, 2)));
  files.set("model/model.json", Buffer.from(JSON.stringify(mj)));
  // Split the weights across shards at arbitrary byte offsets (shards are plain byte slices).
  const cut = Math.floor(weightBytes.length / shards);
  mj.weightsManifest[0].paths.forEach((p, i) => {
    files.set(`model/${p}`, weightBytes.subarray(i * cut, i === shards - 1 ? weightBytes.length : (i + 1) * cut));
  });
  const manifest = {
    format: "kit-edge-bundle/1",
    model: { name: `fixture-${task}`, version: "7" },
    kind: "tfjs-graph",
    task,
    labels: task === "binary" ? ["neg", "pos"] : ["red", "green", "blue"],
    inputs: spec.inputs.map((i) => ({ name: i.name, type: i.kind === "numeric" ? "number" : "string", ...(i.range ? { range: i.range } : {}) })),
    tfjs: { input: "features", output: "probs" },
    files: Object.fromEntries([...files].map(([p, bytes]) => [p, sha(bytes)])),
    created_at: "2026-11-22T14:00:00Z",
  };
  if (mutate) mutate(manifest, files);
  files.set("manifest.json", Buffer.from(JSON.stringify(manifest, null, 2)));
  return files;
}

export function writeBundle(files, dir = mkdtempSync(path.join(tmpdir(), "kit-edge-bundle-"))) {
  for (const [p, bytes] of files) {
    mkdirSync(path.dirname(path.join(dir, p)), { recursive: true });
    writeFileSync(path.join(dir, p), bytes);
  }
  return dir;
}

/** Reference forward pass in float32-ish double math (input and weights rounded to float32). */
export function referencePredict(vec, task = "multiclass") {
  const k = task === "binary" ? 1 : 3;
  const { W, b } = weights(WIDTH, k);
  const z = [];
  for (let j = 0; j < k; j++) {
    let s = Math.fround(b[j]);
    for (let i = 0; i < WIDTH; i++) s += Math.fround(vec[i]) * Math.fround(W[i * k + j]);
    z.push(s);
  }
  if (task === "binary") return [1 / (1 + Math.exp(-z[0]))];
  const m = Math.max(...z);
  const e = z.map((v) => Math.exp(v - m));
  const t = e.reduce((x, y) => x + y, 0);
  return e.map((v) => v / t);
}
