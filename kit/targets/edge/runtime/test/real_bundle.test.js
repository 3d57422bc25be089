// A real bundle from the Python side (tensorflowjs converter output). Skipped unless
// KIT_TEST_BUNDLE=DIR is set. If DIR/../expected.json or $KIT_TEST_EXPECTED exists
// ({"rows": [...], "outputs": [[...], ...]} with the Python model's outputs), predictions are
// compared with it (tolerance 1e-5).
import test from "node:test";
import assert from "node:assert/strict";
import { existsSync, readFileSync } from "node:fs";
import path from "node:path";
import { createHandlerFromLoader } from "../src/index.js";
import { fsLoader } from "../src/node/fsLoader.js";
import { tf } from "../src/models/tfjs_env.js";

const DIR = process.env.KIT_TEST_BUNDLE;
const skip = DIR ? false : "set KIT_TEST_BUNDLE=DIR to test a real bundle";

function defaultRow(manifest, spec) {
  const row = {};
  const byName = new Map(spec.inputs.map((i) => [i.name, i]));
  for (const input of manifest.inputs) {
    const s = byName.get(input.name) || {};
    if (s.kind === "categorical") row[input.name] = s.transform?.values?.[0] ?? "x";
    else if (input.range) row[input.name] = (input.range.min + input.range.max) / 2;
    else if (s.missing?.strategy === "fill") row[input.name] = s.missing.value;
    else row[input.name] = 0;
  }
  return row;
}

test("real bundle: loads, predicts, matches Python, memory stays flat", { skip }, async () => {
  const h = await createHandlerFromLoader(fsLoader(DIR));
  const { manifest, spec } = h.bundle;
  const row = defaultRow(manifest, spec);
  const res = await h(new Request("http://x/predict", { method: "POST", body: JSON.stringify(row) }));
  assert.equal(res.status, 200);
  const body = await res.json();
  assert.ok(manifest.labels.includes(body.prediction));
  const total = Object.values(body.probabilities).reduce((a, b) => a + b, 0);
  assert.ok(Math.abs(total - 1) < 1e-4, `probabilities sum to ${total}`);

  const expectedPath = process.env.KIT_TEST_EXPECTED || path.join(path.resolve(DIR), "..", "expected.json");
  if (existsSync(expectedPath)) {
    const exp = JSON.parse(readFileSync(expectedPath, "utf8"));
    const batch = await (await h(new Request("http://x/predict", { method: "POST", body: JSON.stringify(exp.rows) }))).json();
    let maxDiff = 0;
    batch.predictions.forEach((p, i) => {
      const want = manifest.task === "binary" && exp.outputs[i].length === 1 ? [1 - exp.outputs[i][0], exp.outputs[i][0]] : exp.outputs[i];
      manifest.labels.forEach((l, j) => { maxDiff = Math.max(maxDiff, Math.abs(p.probabilities[l] - want[j])); });
    });
    assert.ok(maxDiff < 1e-5, `max |node - python| = ${maxDiff}`);
  }

  const before = tf.memory().numTensors;
  for (let i = 0; i < 200; i++) await h(new Request("http://x/predict", { method: "POST", body: JSON.stringify(row) }));
  assert.equal(tf.memory().numTensors, before);
});
