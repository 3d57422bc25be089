import test from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, existsSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { pathToFileURL, fileURLToPath } from "node:url";
import { spawnSync } from "node:child_process";
import { buildDeploy } from "../scripts/build-deploy.mjs";
import { bundleFiles, writeBundle } from "../test-support/fixtures.js";
import { createHandlerFromLoader, memoryLoader } from "../src/index.js";

test("build:deploy writes a self-contained worker.js that answers like the handler", async () => {
  const files = bundleFiles({ task: "binary" });
  const out = mkdtempSync(path.join(tmpdir(), "kit-edge-deploy-"));
  const info = await buildDeploy({ bundle: writeBundle(files), out, options: { rejectOutOfRange: true } });
  assert.equal(info.check, "ok");
  assert.ok(existsSync(path.join(out, "manifest.json")));
  const code = readFileSync(path.join(out, "worker.js"), "utf8");
  // No runtime imports or requires: one file, nothing else to resolve.
  assert.ok(!/(^|[;\s])import\s*[\w{*]/m.test(code) && !/\bimport\s*\(\s*["']/.test(code), "static or dynamic import left in worker.js");
  assert.ok(!/\brequire\s*\(\s*["']/.test(code), "require() left in worker.js");
  assert.ok(!/new Function\(|\beval\(/.test(code), "code generation is not allowed in Workers");

  const worker = (await import(pathToFileURL(path.join(out, "worker.js")).href)).default;
  const local = await createHandlerFromLoader(memoryLoader(files));
  for (const qs of ["a=1&b=0&c=2&d=x", "b=-0.5&d=q", "b=1&a=9.5&c=-1&d=z"]) {
    const w = await worker.fetch(new Request(`http://x/predict?${qs}`));
    assert.equal(w.status, 200);
    const l = await local(new Request(`http://x/predict?${qs}`));
    assert.deepEqual(await w.json(), await l.json());
  }
  const oor = await worker.fetch(new Request("http://x/predict?b=3"));
  assert.equal(oor.status, 400, "build options are baked in");
  assert.equal((await worker.fetch(new Request("http://x/metadata"))).status, 200);
  assert.equal((await worker.fetch(new Request("http://x/nope"))).status, 404);

  // The same file in a bare context with only web globals (as at the edge), through both entry
  // points: export default { fetch } (Cloudflare) and addEventListener("fetch") (Fastly).
  const bare = spawnSync(process.execPath, ["--experimental-vm-modules", "--no-warnings", fileURLToPath(new URL("../test-support/bare-worker.mjs", import.meta.url)), path.join(out, "worker.js"), "a=1&b=0&c=2&d=x"], { encoding: "utf8" });
  assert.equal(bare.status, 0, bare.stderr);
  const got = JSON.parse(bare.stdout);
  assert.equal(got.hasProcess, false);
  const want = await (await local(new Request("http://x/predict?a=1&b=0&c=2&d=x"))).json();
  assert.deepEqual(got.default, { status: 200, body: want });
  assert.deepEqual(got.event, { status: 200, body: want });
});

test("build:deploy refuses a corrupt bundle", async () => {
  const files = bundleFiles();
  files.set("model/model.json", Buffer.from(files.get("model/model.json").toString().replace("MatMul", "MatMul ")));
  const out = mkdtempSync(path.join(tmpdir(), "kit-edge-deploy-"));
  await assert.rejects(buildDeploy({ bundle: writeBundle(files), out }), /"model\/model\.json" does not match/);
  assert.ok(!existsSync(path.join(out, "worker.js")));
});
