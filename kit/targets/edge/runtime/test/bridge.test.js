import test from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { fileURLToPath } from "node:url";
import { bundleFiles, writeBundle, referencePredict, SPEC } from "../test-support/fixtures.js";
import { compileSpec } from "../src/index.js";

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
});
