import test from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { fileURLToPath } from "node:url";
import { bundleFiles, writeBundle, referencePredict, SPEC } from "../test-support/fixtures.js";
import { compileSpec } from "../src/index.js";
import { percentile } from "../src/node/index.js";

const BRIDGE = fileURLToPath(new URL("../src/node/bridge.js", import.meta.url));

test("bridge.js: features, outputs, predictions and latency for the Python gates", () => {
  const dir = writeBundle(bundleFiles());
  const rows = [{ a: 1, b: 0.5, c: 7, d: "z" }, { b: -1 }, { b: "0.5" }, { a: 1 }];
  const r = spawnSync(process.execPath, [BRIDGE, "--bundle", dir, "--bench", "20"], { input: JSON.stringify({ rows }), encoding: "utf8" });
  assert.equal(r.status, 0, r.stderr);
  const out = JSON.parse(r.stdout);
  const f = compileSpec(SPEC);
  assert.deepEqual(out.features[0], Array.from(f.transformRow(rows[0])));
  assert.deepEqual(out.features[1], Array.from(f.transformRow(rows[1])).map((x) => (Number.isNaN(x) ? null : x)), "NaN -> null");
  referencePredict(f.transformRow(rows[0])).forEach((p, j) => assert.ok(Math.abs(out.outputs[0][j] - p) < 1e-6));
  assert.equal(out.predictions[2].field, "b", "strings are not numbers in JSON rows");
  assert.equal(out.predictions[3].field, "b");
  assert.equal(out.latency_ms.n, 20);
  assert.ok(out.latency_ms.p50 > 0 && out.latency_ms.p99 >= out.latency_ms.p50);
  assert.equal(out.latency_ms.definition, "nearest-rank percentile (no interpolation)");
});

test("percentile: nearest rank, the rule kit/stats.py and wrk use (a measured value, no interpolation)", () => {
  const values = Array.from({ length: 100 }, (_, i) => 100 - i); // 100..1, unsorted on purpose
  assert.equal(percentile(values, 50), 50);
  assert.equal(percentile(values, 99), 99);
  assert.equal(percentile(values, 100), 100);
  assert.equal(percentile(values, 0), 1);
  const many = Array.from({ length: 2000 }, (_, i) => i + 1);
  assert.equal(percentile(many, 99), 1980, "p99 of 2000 values is the 1980th, not floor(0.99 * 2000) + 1 = 1981st");
  assert.equal(percentile([3], 99), 3);
  assert.deepEqual([percentile([2.5, 1.5], 50), percentile([2.5, 1.5], 51)], [1.5, 2.5]);
  assert.ok(Number.isNaN(percentile([], 50)));
  assert.throws(() => percentile([1], 101), RangeError);
  assert.deepEqual(values.slice(0, 2), [100, 99], "the caller's array is left as it was");
});
