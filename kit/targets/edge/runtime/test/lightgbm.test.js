import test from "node:test";
import assert from "node:assert/strict";
import { createHandlerFromLoader, memoryLoader, loadBundle, createPredictor, modelKinds } from "../src/index.js";
import { compileLightgbm, parseObjective, K_ZERO_THRESHOLD } from "../src/models/lightgbm.js";
import { handDump, HAND_ROWS, multiclassDump, randomDump, lightgbmBundleFiles } from "../test-support/lightgbm-fixtures.js";
import { DEFINITION, percentile } from "../src/node/stats.js";

const sigmoid = (s, k = 1) => 1 / (1 + Math.exp(-k * s));

test("lightgbm-json is a registered model kind", () => {
  assert.ok(modelKinds().includes("lightgbm-json"));
});

test("kZeroThreshold is LightGBM's 1e-35f, not the double 1e-35", () => {
  assert.equal(K_ZERO_THRESHOLD, 1.0000000180025095e-35);
  assert.ok(K_ZERO_THRESHOLD > 1e-35);
});

test("hand-made dump: numerical splits (None / Zero / NaN, default left and right), categorical splits, raw sums", () => {
  const m = compileLightgbm(handDump({ objective: "regression" }));
  assert.equal(m.numFeatures, 4);
  assert.equal(m.numTrees, 5);
  HAND_ROWS.forEach(([row, raw], i) => {
    const [got] = m.predict([Float64Array.from(row)], 4)[0];
    assert.equal(got, raw, `row ${i} ${JSON.stringify(row)}: ${got} vs ${raw}`);
  });
});

test("binary objective: sigmoid with the coefficient from the objective string", () => {
  const m = compileLightgbm(handDump({ objective: "binary sigmoid:2" }));
  const out = m.predict(HAND_ROWS.map(([row]) => Float64Array.from(row)), 4);
  HAND_ROWS.forEach(([, raw], i) => assert.equal(out[i][0], sigmoid(raw, 2)));
  // Values LightGBM 4.7 printed for the first rows (Booster.predict on the same model).
  assert.ok(Math.abs(out[0][0] - 0.63297478) < 1e-8 && Math.abs(out[1][0] - 0.63343929) < 1e-8);
});

test("multiclass: per-class sums over iterations, then softmax (matches LightGBM 4.7)", () => {
  const m = compileLightgbm(multiclassDump());
  assert.equal(m.numOutputs, 3);
  const rows = [[-1, 0], [0.5, 2], [2, NaN], [NaN, 2], [1, -0.5], [0, 1]];
  const expected = [ // lightgbm.Booster(model_str=dump_to_model_string(multiclassDump())).predict(rows)
    [0.5852850358689133, 0.2629855188802897, 0.15172944525079704],
    [0.036158281643724546, 0.12004972278240414, 0.8437919955738714],
    [0.23713352298215065, 0.39096708333672947, 0.37189939368111985],
    [0.2170364085919672, 0.09752074464835067, 0.6854428467596821],
    [0.1603680060406274, 0.5324405307210037, 0.3071914632383688],
    [0.6528386502401688, 0.17791928791185785, 0.16924206184797339],
  ];
  const out = m.predict(rows.map((r) => Float64Array.from(r)), 2);
  out.forEach((o, i) => o.forEach((p, k) => assert.ok(Math.abs(p - expected[i][k]) < 1e-15, `row ${i} class ${k}: ${p} vs ${expected[i][k]}`)));
});

test("average_output (random forest) divides the sums by the number of iterations", () => {
  const dump = { ...multiclassDump(), average_output: true, objective: "multiclassova num_class:3 sigmoid:1.5" };
  const m = compileLightgbm(dump);
  const [o] = m.predict([Float64Array.from([-1, 0])], 2);
  // class sums: [1 + 0.1, 0.5 - 0.2, 0.25 - 0.5] over 2 iterations
  [1.1 / 2, 0.3 / 2, -0.25 / 2].forEach((s, k) => assert.ok(Math.abs(o[k] - sigmoid(s, 1.5)) < 1e-15));
});

test("linear trees: leaf_const + coefficients, the plain leaf value when a feature is NaN", () => {
  const dump = {
    max_feature_idx: 1, num_class: 1, num_tree_per_iteration: 1, objective: "regression",
    tree_info: [{ tree_structure: { split_feature: 0, threshold: 0, decision_type: "<=", default_left: true, missing_type: "None",
      left_child: { leaf_value: 0.5, leaf_const: 0.25, leaf_features: [0, 1], leaf_coeff: [2, -3] },
      right_child: { leaf_value: -0.5, leaf_const: 1, leaf_features: [], leaf_coeff: [] } } }],
  };
  const m = compileLightgbm(dump);
  assert.equal(m.predict([Float64Array.from([-1, 2])], 2)[0][0], 0.25 + 2 * -1 + -3 * 2);
  assert.equal(m.predict([Float64Array.from([-1, NaN])], 2)[0][0], 0.5);
  assert.equal(m.predict([Float64Array.from([3, NaN])], 2)[0][0], 1);
});

test("objectives: transforms, and unsupported ones are refused", () => {
  assert.equal(parseObjective("binary sigmoid:0.7", 1).sigmoid, 0.7);
  const raw = 0.3;
  const one = (objective) => compileLightgbm({ ...handDump(), tree_info: [{ tree_structure: { leaf_value: raw } }], objective }).predict([new Float64Array(4)], 4)[0][0];
  assert.equal(one("regression"), raw);
  assert.equal(one("regression sqrt"), raw * raw);
  assert.equal(one("poisson"), Math.exp(raw));
  assert.equal(one("cross_entropy"), sigmoid(raw));
  assert.equal(one("cross_entropy_lambda"), Math.log1p(Math.exp(raw)));
  assert.equal(one("lambdarank"), raw);
  assert.throws(() => one("my_objective"), /objective "my_objective" is not supported/);
});

test("malformed dumps are refused with the file and the field", () => {
  assert.throws(() => compileLightgbm({}), /model\/model\.json: not a LightGBM dump_model\(\) document/);
  const bad = handDump();
  bad.tree_info[0].tree_structure.split_feature = 9;
  assert.throws(() => compileLightgbm(bad), /tree_info\[0\]\.tree_structure\.split_feature must be an integer in \[0, 3\]/);
  const bad2 = handDump();
  bad2.tree_info[1].tree_structure.missing_type = "Sometimes";
  assert.throws(() => compileLightgbm(bad2), /missing_type "Sometimes"/);
  assert.throws(() => compileLightgbm(handDump()).predict([new Float64Array(3)], 3), /yields 3 columns but the LightGBM model expects 4/);
});

const SPEC = {
  format: "kit-feature-spec/1",
  inputs: [
    { name: "f0", kind: "numeric", missing: { strategy: "nan" }, transform: { type: "identity" } },
    { name: "f1", kind: "numeric", missing: { strategy: "nan" }, transform: { type: "identity" } },
    { name: "f2", kind: "categorical", missing: { strategy: "oov" }, transform: { type: "vocabulary", values: ["a", "b", "c", "d"], output: "index" } },
    { name: "f3", kind: "numeric", missing: { strategy: "nan" }, transform: { type: "identity" } },
  ],
};

test("a lightgbm-json bundle through the handler: missing fields, unseen categories, binary answer", async () => {
  const h = await createHandlerFromLoader(memoryLoader(lightgbmBundleFiles(handDump(), { spec: SPEC })));
  assert.equal(h.predictor.kind, "lightgbm-json");
  assert.equal(h.predictor.inputWidth, 4);
  // f2 "d" -> index 3 (listed: left); "zzz" and missing -> OOV index 4 (not listed: right)
  const cases = [
    ["f0=2&f1=5&f2=d", [2, 5, 3, NaN]],
    ["f0=2&f1=5&f2=zzz", [2, 5, 4, NaN]],
    ["f0=2&f1=5", [2, 5, 4, NaN]],
    ["f1=0&f2=b&f3=0", [NaN, 0, 1, 0]],
  ];
  const m = compileLightgbm(handDump());
  for (const [qs, vec] of cases) {
    const body = await (await h(new Request(`http://x/predict?${qs}`))).json();
    const [p] = m.predict([Float64Array.from(vec)], 4)[0];
    assert.deepEqual(body.probabilities, { neg: 1 - p, pos: p }, qs);
  }
  const batch = await (await h(new Request("http://x/predict", { method: "POST", body: JSON.stringify([{ f0: 2, f1: 5, f2: "d" }, { f3: 1e-36 }]) }))).json();
  assert.equal(batch.predictions.length, 2);
});

test("a model whose width differs from the feature spec is refused at load", async () => {
  const files = lightgbmBundleFiles({ ...handDump(), max_feature_idx: 5 }, { spec: SPEC });
  await assert.rejects(createHandlerFromLoader(memoryLoader(files)), /yields 4 columns but the model expects 6/);
  const bundle = await loadBundle(memoryLoader(lightgbmBundleFiles({ nope: 1 }, { spec: SPEC })));
  await assert.rejects(createPredictor(bundle), /not a LightGBM dump_model\(\) document/);
});

test("latency: single-row predict, 100 trees x 31 leaves x 24 features (printed, not asserted)", async () => {
  const dump = randomDump();
  const t0 = performance.now();
  const m = compileLightgbm(JSON.parse(JSON.stringify(dump)));
  const compileMs = performance.now() - t0;
  assert.equal(m.numLeaves, 100 * 31);
  let s = 7;
  const rand = () => ((s = (Math.imul(s, 1664525) + 1013904223) >>> 0) / 4294967296);
  const rows = Array.from({ length: 256 }, () => Float64Array.from({ length: 24 }, (_, j) => (j >= 20 ? Math.floor(rand() * 32) : rand() < 0.1 ? NaN : rand() < 0.1 ? 0 : (rand() - 0.5) * 5)));
  const measure = (fn, n) => {
    const times = new Float64Array(n);
    for (let i = 0; i < n; i++) {
      const a = performance.now();
      fn(i);
      times[i] = performance.now() - a;
    }
    return { p50: percentile(times, 50), p99: percentile(times, 99) };
  };
  const one = [null];
  const predictOne = (i) => { one[0] = rows[i & 255]; return m.predict(one, 24); };
  measure(predictOne, 20000); // warm-up (V8 optimizes)
  const direct = measure(predictOne, 20000);
  const batchStart = performance.now();
  for (let r = 0; r < 100; r++) m.predict(rows, 24);
  const perRowBatch = (performance.now() - batchStart) / (100 * rows.length);

  const spec = { format: "kit-feature-spec/1", inputs: Array.from({ length: 24 }, (_, j) => ({ name: `f${j}`, kind: "numeric", missing: { strategy: "nan" }, transform: { type: "identity" } })) };
  const h = await createHandlerFromLoader(memoryLoader(lightgbmBundleFiles(dump, { spec })));
  const bodies = rows.slice(0, 64).map((r) => JSON.stringify(Object.fromEntries(Array.from(r, (v, j) => [`f${j}`, Number.isNaN(v) ? null : v]))));
  const times = [];
  for (let i = 0; i < 5000 + 2000; i++) {
    const a = performance.now();
    await (await h(new Request("http://x/predict", { method: "POST", body: bodies[i & 63] }))).text();
    if (i >= 5000) times.push(performance.now() - a);
  }
  const f = (x) => `${(x * 1000).toFixed(1)} us`;
  console.log(`lightgbm-json 100 trees x 31 leaves x 24 features: compile ${compileMs.toFixed(2)} ms; ` +
    `predict single row p50 ${f(direct.p50)}, p99 ${f(direct.p99)}; batched ${f(perRowBatch)}/row; ` +
    `through the handler (POST JSON) p50 ${f(percentile(times, 50))}, p99 ${f(percentile(times, 99))} (${DEFINITION})`);
});
