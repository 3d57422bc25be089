// Start-up fuzz: bundles whose manifest.json or feature_spec.json is mutated (truncated, wrong
// types, missing keys, bad hashes, huge numbers) are refused at load with a BundleError naming
// the file, or load and then answer every request without a 5xx. Seeded and bounded:
//   KIT_FUZZ_SEED=7 KIT_FUZZ_CASES=4000 node --test test/bundle_fuzz.test.js
import test from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { loadApi } from "../src/api.js";
import { memoryLoader } from "../src/bundle.js";
import { BundleError } from "../src/errors.js";
import { bundleFiles, writeBundle } from "../test-support/fixtures.js";
import { handDump, lightgbmBundleFiles } from "../test-support/lightgbm-fixtures.js";
import { mutateBundle, rng } from "../test-support/bundle-fuzz.js";
import { SERVER } from "../test-support/proc.js";

const SEED = Number(process.env.KIT_FUZZ_SEED || 20261202);
const CASES = Number(process.env.KIT_FUZZ_CASES || 400);
const LGB_SPEC = {
  format: "kit-feature-spec/1",
  inputs: [
    { name: "f0", kind: "numeric", missing: { strategy: "nan" }, range: { min: -5, max: 5 }, transform: { type: "standardize", mean: 1, std: 2 } },
    { name: "f1", kind: "numeric", missing: { strategy: "fill", value: 0.5 }, transform: { type: "minmax", min: 0, max: 1 } },
    { name: "f2", kind: "categorical", missing: { strategy: "oov" }, transform: { type: "vocabulary", values: ["a", "b", "c", "d"], output: "index" } },
    { name: "f3", kind: "numeric", missing: { strategy: "nan" }, transform: { type: "bucketize", boundaries: [0, 1, 2], output: "index" } },
  ],
};
const BASES = [
  ["lightgbm-json", () => lightgbmBundleFiles(handDump(), { spec: LGB_SPEC })],
  ["tfjs-graph", () => bundleFiles()],
];
const NAMES_A_FILE = /manifest\.json|feature_spec\.json|model\//;

/** Requests a loaded bundle must answer without a 5xx, built from its own metadata. */
function probes(api) {
  const md = JSON.parse(api.openapi);
  const params = md.paths["/predict"].get.parameters.map((p) => p.name);
  const row = Object.fromEntries(params.map((n, i) => [n, i % 2 ? "1" : "a"]));
  const query = params.map((n) => `${encodeURIComponent(n)}=1`).join("&");
  return [
    { method: "GET", path: "/predict", query },
    { method: "GET", path: "/predict", query: "" },
    { method: "POST", path: "/predict", query: "", body: JSON.stringify([row, {}]) },
    { method: "GET", path: "/metadata", query: "" },
    { method: "GET", path: "/health", query: "" },
    { method: "GET", path: "/openapi.json", query: "" },
  ];
}

test(`mutated bundles: refused at load naming the file, or served without a 5xx (${CASES} cases, seed ${SEED})`, async () => {
  const rand = rng(SEED);
  const tally = { refused: 0, served: 0 };
  for (let i = 0; i < CASES; i++) {
    const [kind, base] = BASES[i % BASES.length];
    const files = base();
    const what = `case ${i} (${kind}) ${mutateBundle(files, rand)}`;
    let loaded;
    try {
      loaded = await loadApi(memoryLoader(files), { onError: () => {} });
    } catch (e) {
      assert.ok(e instanceof BundleError, `${what}: not a BundleError: ${e && e.stack}`);
      assert.match(e.message, NAMES_A_FILE, `${what}: the message names no file: ${e.message}`);
      tally.refused++;
      continue;
    }
    for (const req of probes(loaded.api)) {
      const res = await loaded.api.handle(req);
      assert.ok(res.status < 500, `${what}: ${req.method} ${req.path}?${req.query} -> ${res.status} ${res.body}`);
      if (res.body) JSON.parse(res.body);
    }
    tally.served++;
  }
  console.log(`bundle fuzz: ${CASES} cases, seed ${SEED}: ${tally.refused} refused at load, ${tally.served} served`);
  assert.ok(tally.refused > CASES / 4, "the mutations must break most bundles");
});

test("server.js refuses a mutated bundle: exit 1, one line naming the file, no stack trace", async () => {
  const rand = rng(SEED + 1);
  let spawned = 0;
  for (let i = 0; spawned < 6 && i < 200; i++) {
    const files = bundleFiles();
    const what = mutateBundle(files, rand);
    // Only mutations the loader refuses (a harmless one would start a server).
    try { await loadApi(memoryLoader(files)); continue; } catch { /* refused: the server must refuse too */ }
    const done = spawnSync(process.execPath, [SERVER, "--bundle", writeBundle(files), "--port", "0"], { encoding: "utf8", timeout: 30000, killSignal: "SIGKILL" });
    spawned++;
    assert.equal(done.status, 1, `${what}: ${done.stdout} ${done.stderr}`);
    assert.match(done.stderr, /^error: cannot start: .*(manifest\.json|feature_spec\.json|model\/)/, `${what}: ${done.stderr}`);
    assert.doesNotMatch(done.stderr, /\n\s+at /, `${what}: a stack trace: ${done.stderr}`);
  }
  assert.equal(spawned, 6);
});
