// POST /admin/reload: what `kit serve edge` uses to switch bundles (SIGHUP, --follow-interval).
import test from "node:test";
import assert from "node:assert/strict";
import { bundleFiles, writeBundle } from "../test-support/fixtures.js";
import { startServer } from "../src/node/server.js";

const first = writeBundle(bundleFiles());
const second = writeBundle(bundleFiles({ task: "binary" }));
const reload = (url, body, token = "secret") => fetch(`${url}/admin/reload`, {
  method: "POST", headers: token ? { "x-kit-admin-token": token } : {}, body: JSON.stringify(body),
});

test("reload: switches bundles with no failed request, refuses without the token, keeps serving on a bad bundle", async (t) => {
  const srv = await startServer({ bundle: first, port: 0, adminToken: "secret" });
  t.after(() => srv.close());
  const model = async () => (await (await fetch(`${srv.url}/health`)).json()).model.name;
  assert.equal(await model(), "fixture-multiclass");

  assert.equal((await reload(srv.url, { bundle: second }, null)).status, 403);
  assert.equal((await reload(srv.url, { bundle: second }, "wrong")).status, 403);
  const broken = await reload(srv.url, { bundle: "/nonexistent/bundle" });
  assert.equal(broken.status, 500);
  assert.equal((await broken.json()).reloaded, false);
  assert.equal(await model(), "fixture-multiclass");

  // Requests keep coming while the switch happens: every one answered, by one bundle or the other.
  const during = Array.from({ length: 200 }, () => fetch(`${srv.url}/predict?a=1&b=0&c=2&d=x`).then(async (r) => [r.status, (await r.json()).model.name]));
  const switched = await reload(srv.url, { bundle: second });
  const answers = await Promise.all(during);
  assert.deepEqual(await switched.json(), { reloaded: true, from: "7", to: "7" });
  assert.ok(answers.every(([status]) => status === 200), JSON.stringify(answers.filter(([s]) => s !== 200)));
  assert.equal(await model(), "fixture-binary");
  assert.equal((await (await fetch(`${srv.url}/bundle/manifest.json`)).json()).model.name, "fixture-binary");
  assert.match(await (await fetch(`${srv.url}/metrics`)).text(), /kit_edge_model_info\{name="fixture-binary"/);
});

test("reload: no token given to the server, no admin route", async (t) => {
  const srv = await startServer({ bundle: first, port: 0 });
  t.after(() => srv.close());
  assert.equal((await reload(srv.url, { bundle: second })).status, 404);
});
