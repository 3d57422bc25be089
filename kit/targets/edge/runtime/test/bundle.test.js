import test from "node:test";
import assert from "node:assert/strict";
import { createHash, randomBytes } from "node:crypto";
import { loadBundle, memoryLoader, fetchLoader, isSafeBundlePath, BundleError, sha256Hex } from "../src/index.js";
import { sha256Sync } from "../src/sha256.js";
import { fsLoader } from "../src/node/fsLoader.js";
import { bundleFiles, writeBundle } from "../test-support/fixtures.js";

test("loadBundle verifies every file and returns manifest, spec and model files", async () => {
  const b = await loadBundle(memoryLoader(bundleFiles()));
  assert.equal(b.manifest.format, "kit-edge-bundle/1");
  assert.equal(b.spec.format, "kit-feature-spec/1");
  assert.deepEqual([...b.modelFiles.keys()].sort(), ["model/group1-shard1of2.bin", "model/group1-shard2of2.bin", "model/model.json"]);
  assert.ok(b.modelFiles.get("model/model.json") instanceof Uint8Array);
});

test("a hash mismatch is refused with an error naming the file", async () => {
  const files = bundleFiles();
  const shard = Buffer.from(files.get("model/group1-shard2of2.bin"));
  shard[0] ^= 1;
  files.set("model/group1-shard2of2.bin", shard);
  await assert.rejects(loadBundle(memoryLoader(files)), (e) => e instanceof BundleError && /"model\/group1-shard2of2\.bin" does not match its sha256/.test(e.message));
  const files2 = bundleFiles();
  files2.set("feature_spec.json", Buffer.from(files2.get("feature_spec.json").toString() + " "));
  await assert.rejects(loadBundle(memoryLoader(files2)), /"feature_spec\.json" does not match/);
});

test("a missing file is refused with an error naming the file", async () => {
  const files = bundleFiles();
  files.delete("model/group1-shard1of2.bin");
  await assert.rejects(loadBundle(memoryLoader(files)), /"model\/group1-shard1of2\.bin"/);
  const noManifest = bundleFiles();
  noManifest.delete("manifest.json");
  await assert.rejects(loadBundle(memoryLoader(noManifest)), /manifest\.json/);
});

test("manifest validation: format, task, labels, files", async () => {
  const cases = [
    [(m) => { m.format = "kit-edge-bundle/2"; }, /format/],
    [(m) => { m.task = "regression"; }, /task/],
    [(m) => { m.labels = ["only"]; }, /labels/],
    [(m) => { m.task = "binary"; }, /binary task needs exactly 2 labels/],
    [(m) => { m.labels = ["a", "a", "b"]; }, /duplicates/],
    [(m) => { m.files["../etc/passwd"] = "0".repeat(64); }, /invalid path/],
    [(m) => { m.files["model/model.json"] = "abc"; }, /sha256/],
    [(m) => { delete m.files["feature_spec.json"]; }, /feature_spec\.json/],
    [(m) => { delete m.model; }, /model/],
  ];
  for (const [mutate, re] of cases) {
    await assert.rejects(loadBundle(memoryLoader(bundleFiles({ mutate }))), (e) => e instanceof BundleError && re.test(e.message), String(mutate));
  }
});

test("safe bundle paths", () => {
  for (const p of ["manifest.json", "model/model.json", "model/group1-shard1of1.bin", "a/b/c"]) assert.ok(isSafeBundlePath(p), p);
  for (const p of ["", "/etc/passwd", "../x", "model/../../x", "model//x", "./x", "model\\x", "C:/x", "x/", "a\0b", 5, null]) assert.ok(!isSafeBundlePath(p), String(p));
});

test("memoryLoader accepts bytes, ArrayBuffers and UTF-8 strings", async () => {
  const l = memoryLoader({ "a.json": '{"x": 1}', "b.bin": new Uint8Array([1, 2]).buffer, "c.bin": new Uint16Array([1]) });
  assert.deepEqual(await l.json("a.json"), { x: 1 });
  assert.deepEqual(Array.from(await l.bytes("b.bin")), [1, 2]);
  assert.equal((await l.bytes("c.bin")).length, 2);
  await assert.rejects(l.bytes("../a.json"), /unsafe/);
  await assert.rejects(l.bytes("nope"), /not found/);
});

test("fetchLoader resolves paths under the base URL and reports HTTP errors", async () => {
  const files = bundleFiles();
  const seen = [];
  const fakeFetch = async (url) => {
    seen.push(url);
    const p = new URL(url).pathname.replace(/^\/models\/iris\//, "");
    if (!files.has(p)) return new Response("nope", { status: 404 });
    return new Response(files.get(p));
  };
  const b = await loadBundle(fetchLoader("https://cdn.test/models/iris", { fetch: fakeFetch }));
  assert.equal(b.manifest.model.name, "fixture-multiclass");
  assert.ok(seen.every((u) => u.startsWith("https://cdn.test/models/iris/")));
  const missing = fetchLoader("https://cdn.test/other/", { fetch: fakeFetch });
  await assert.rejects(loadBundle(missing), /manifest\.json.*HTTP 404/);
});

test("fsLoader reads a folder and refuses paths outside it", async () => {
  const dir = writeBundle(bundleFiles());
  const b = await loadBundle(fsLoader(dir));
  assert.equal(b.manifest.task, "multiclass");
  const l = fsLoader(dir);
  await assert.rejects(l.bytes("../x"), /unsafe/);
  await assert.rejects(l.bytes("/etc/passwd"), /unsafe/);
  await assert.rejects(l.bytes("model/nothing.bin"), /cannot be read/);
});

test("SHA-256: WebCrypto and the pure-JS fallback agree with node:crypto", async () => {
  const hex = (b) => Buffer.from(b).toString("hex");
  for (const n of [0, 1, 55, 56, 63, 64, 65, 119, 120, 1000, 100003]) {
    const data = new Uint8Array(randomBytes(n));
    const want = createHash("sha256").update(data).digest("hex");
    assert.equal(hex(sha256Sync(data)), want, `n=${n}`);
    assert.equal(await sha256Hex(data), want, `n=${n}`);
  }
  assert.equal(hex(sha256Sync(new TextEncoder().encode("abc"))), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
});
