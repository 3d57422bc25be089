import test from "node:test";
import assert from "node:assert/strict";
import { loadBundle, memoryLoader, createPredictor, createHandlerFromLoader, compileSpec, registerModelKind, modelKinds, BundleError } from "../src/index.js";
import { tf } from "../src/models/tfjs_env.js";
import { bundleFiles, referencePredict, SPEC, WIDTH } from "../test-support/fixtures.js";

const ROWS = [
  { a: 3.3, b: 0.2, c: 6, d: "y" },
  { a: 0, b: -1, c: -3, d: "x" },
  { b: 1, d: "nope" },
  { a: 10, b: 0.5, c: 5, d: "z" },
  { a: "7.25", b: "-0.75", c: "0", d: "y" },
];

for (const task of ["multiclass", "binary"]) {
  test(`hand-written TF.js graph model (${task}, weights in 2 shards) matches the reference`, async () => {
    const h = await createHandlerFromLoader(memoryLoader(bundleFiles({ task })));
    const features = compileSpec(SPEC);
    assert.equal(features.width, WIDTH);
    assert.equal(h.predictor.inputWidth, WIDTH);
    for (const row of ROWS) {
      const qs = new URLSearchParams(Object.entries(row).map(([k, v]) => [k, String(v)])).toString();
      const res = await h(new Request(`http://x/predict?${qs}`));
      assert.equal(res.status, 200);
      const body = await res.json();
      const ref = referencePredict(features.transformRow(row), task);
      const want = task === "binary" ? [1 - ref[0], ref[0]] : ref;
      const got = Object.values(body.probabilities);
      got.forEach((p, j) => assert.ok(Math.abs(p - want[j]) < 1e-6, `row ${JSON.stringify(row)} class ${j}: ${p} vs ${want[j]}`));
    }
  });
}

test("batch predictions equal single-row predictions", async () => {
  const h = await createHandlerFromLoader(memoryLoader(bundleFiles()));
  const rows = ROWS.map((r) => Object.fromEntries(Object.entries(r).map(([k, v]) => [k, typeof v === "string" && k !== "d" ? Number(v) : v])));
  const batch = await (await h(new Request("http://x/predict", { method: "POST", body: JSON.stringify(rows) }))).json();
  for (let i = 0; i < rows.length; i++) {
    const single = await (await h(new Request("http://x/predict", { method: "POST", body: JSON.stringify(rows[i]) }))).json();
    assert.deepEqual(batch.predictions[i], { prediction: single.prediction, probabilities: single.probabilities });
  }
});

test("memory stays flat over many predictions", async () => {
  const h = await createHandlerFromLoader(memoryLoader(bundleFiles()));
  const req = () => new Request("http://x/predict?a=1&b=0&c=2&d=x");
  await h(req());
  const before = tf.memory().numTensors;
  for (let i = 0; i < 300; i++) await h(req());
  await h(new Request("http://x/predict", { method: "POST", body: JSON.stringify(Array(50).fill({ b: 0 })) }));
  assert.equal(tf.memory().numTensors, before);
});

test("a model.json shard not listed in manifest.files is refused", async () => {
  const files = bundleFiles({
    mutate(manifest) { delete manifest.files["model/group1-shard2of2.bin"]; },
  });
  const bundle = await loadBundle(memoryLoader(files));
  await assert.rejects(createPredictor(bundle), /needs weight shard "model\/group1-shard2of2\.bin"/);
});

test("a wrong tfjs input/output name or width is a clear error", async () => {
  const noIo = await loadBundle(memoryLoader(bundleFiles({ mutate(m) { delete m.tfjs; } })));
  await assert.rejects(createPredictor(noIo), /"tfjs": \{"input"/);
  const badOut = await loadBundle(memoryLoader(bundleFiles({ mutate(m) { m.tfjs.output = "nope"; } })));
  await assert.rejects(createPredictor(badOut));
  const narrowSpec = { ...SPEC, inputs: SPEC.inputs.slice(0, 2) };
  const files = bundleFiles({ spec: narrowSpec });
  await assert.rejects(createHandlerFromLoader(memoryLoader(files)), (e) => e instanceof BundleError && /2 columns but the model expects 9/.test(e.message));
});

test("a model whose output width does not fit the labels is refused at load", async () => {
  const files = bundleFiles({ mutate(m) { m.labels = ["a", "b", "c", "d"]; } });
  await assert.rejects(createHandlerFromLoader(memoryLoader(files)), /outputs 3 values per row, but manifest\.json has 4 labels/);
});

test("model kinds: unknown kind is a clear error; new kinds can be registered", async () => {
  assert.ok(modelKinds().includes("tfjs-graph"));
  const bundle = await loadBundle(memoryLoader(bundleFiles({ mutate(m) { m.kind = "xgboost-ubj"; } })));
  await assert.rejects(createPredictor(bundle), (e) => e instanceof BundleError && /unknown model kind "xgboost-ubj".*tfjs-graph/.test(e.message));
  registerModelKind("constant-test", async () => ({ kind: "constant-test", async predict(rows) { return rows.map(() => [0.2, 0.3, 0.5]); } }));
  const files = bundleFiles({ mutate(m) { m.kind = "constant-test"; } });
  const h = await createHandlerFromLoader(memoryLoader(files));
  const body = await (await h(new Request("http://x/predict?b=0"))).json();
  assert.equal(body.prediction, "blue");
});
