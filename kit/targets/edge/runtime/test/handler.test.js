import test, { after } from "node:test";
import assert from "node:assert/strict";
import { createHandler, BundleError } from "../src/index.js";
import { ADAPTERS } from "../test-support/adapters.js";

const SPEC = {
  format: "kit-feature-spec/1",
  inputs: [
    { name: "sepal_length", kind: "numeric", missing: { strategy: "fill", value: 5.8 }, range: { min: 4.3, max: 7.9 }, transform: { type: "identity" } },
    { name: "petal_width", kind: "numeric", range: { min: 0.1, max: 2.5 }, transform: { type: "identity" } },
    { name: "color", kind: "categorical", transform: { type: "vocabulary", values: ["r", "g"], output: "index" } },
  ],
};
const MANIFEST = {
  format: "kit-edge-bundle/1",
  model: { name: "iris", version: "3" },
  kind: "fake",
  task: "multiclass",
  labels: ["setosa", "versicolor", "virginica"],
  inputs: [
    { name: "sepal_length", type: "number", range: { min: 4.3, max: 7.9 } },
    { name: "petal_width", type: "number", range: { min: 0.1, max: 2.5 } },
    { name: "color", type: "string" },
  ],
  files: { "feature_spec.json": "0".repeat(64) },
};

/** Fake predictor: class = round(petal_width) clamped, records what it saw. */
function fakePredictor({ outputs, fail } = {}) {
  const calls = [];
  return {
    calls,
    async predict(rows, width) {
      calls.push({ rows: rows.map((r) => Array.from(r)), width });
      if (fail) throw new Error(fail);
      return rows.map((r) => outputs ?? (() => { const p = [0.1, 0.1, 0.1]; p[Math.max(0, Math.min(2, Math.round(r[1])))] = 0.8; return p; })());
    },
  };
}

// Every behaviour test runs through both adapters of the API core (test-support/adapters.js).
for (const [adapterName, adapter] of Object.entries(ADAPTERS)) {
const opened = [];
after(() => Promise.all(opened.map((a) => a.close())));
const test_ = (name, fn) => test(`[${adapterName}] ${name}`, fn);

async function make(opts = {}, predictor = fakePredictor(), manifest = MANIFEST, spec = SPEC) {
  const a = await adapter({ bundle: { manifest, spec }, predictor, onError: () => {}, ...opts });
  opened.push(a);
  return { h: a.h, predictor };
}

const get = (h, qs, path = "/predict") => h(new Request(`http://edge.test${path}${qs}`));
const post = (h, body, headers = {}) => h(new Request("http://edge.test/predict", { method: "POST", body: typeof body === "string" || body instanceof Uint8Array ? body : JSON.stringify(body), headers: { "content-type": "application/json", ...headers } }));

async function expectJson(res, status) {
  assert.equal(res.status, status);
  assert.equal(res.headers.get("content-type"), "application/json");
  assert.equal(res.headers.get("access-control-allow-origin"), "*");
  return res.json();
}

async function expect400(res, field, re, status = 400) {
  const body = await expectJson(res, status);
  assert.equal(body.field, field, JSON.stringify(body));
  assert.equal(typeof body.error, "string");
  if (re) assert.match(body.error, re);
  return body;
}

test_("GET /predict single row", async () => {
  const { h, predictor } = await make();
  const body = await expectJson(await get(h, "?sepal_length=5.1&petal_width=1.2&color=g"), 200);
  assert.deepEqual(body.model, { name: "iris", version: "3" });
  assert.equal(body.prediction, "versicolor");
  assert.deepEqual(body.probabilities, { setosa: 0.1, versicolor: 0.8, virginica: 0.1 });
  assert.deepEqual(predictor.calls[0], { rows: [[5.1, 1.2, 1]], width: 3 });
});

test_("POST /predict: one row, an array batch and a {rows} batch", async () => {
  const { h } = await make();
  const one = await expectJson(await post(h, { sepal_length: 5.1, petal_width: 2.2, color: "r" }), 200);
  assert.equal(one.prediction, "virginica");
  assert.ok(!("predictions" in one));
  const rows = [{ petal_width: 0.2 }, { petal_width: 1.1, color: 7 }, { petal_width: 2.4, sepal_length: null }];
  for (const payload of [rows, { rows }]) {
    const b = await expectJson(await post(h, payload), 200);
    assert.deepEqual(b.model, { name: "iris", version: "3" });
    assert.deepEqual(b.predictions.map((p) => p.prediction), ["setosa", "versicolor", "virginica"]);
    assert.deepEqual(Object.keys(b.predictions[0]), ["prediction", "probabilities"]);
  }
  const empty = await expectJson(await post(h, []), 200);
  assert.deepEqual(empty.predictions, []);
});

test_("400s name the field: missing, unknown, non-numeric, NaN/Infinity, out of range", async () => {
  const { h } = await make({ rejectOutOfRange: true });
  await expect400(await get(h, "?sepal_length=5"), "petal_width", /missing/);
  await expect400(await get(h, "?petal_width=1&petal_length=2"), "petal_length", /unknown/);
  await expect400(await get(h, "?petal_width=abc"), "petal_width", /number/);
  await expect400(await get(h, "?petal_width=NaN"), "petal_width");
  await expect400(await get(h, "?petal_width=Infinity"), "petal_width");
  await expect400(await get(h, "?petal_width=1e999"), "petal_width");
  await expect400(await get(h, "?petal_width=0x10"), "petal_width");
  await expect400(await get(h, "?petal_width=3"), "petal_width", /out of range/);
  await expect400(await get(h, "?petal_width=1&sepal_length=1"), "sepal_length", /out of range/);
  await expect400(await get(h, "?petal_width=1&petal_width=2"), "petal_width", /more than once/);
  await expect400(await post(h, { petal_width: "1.0" }), "petal_width", /string/);
  await expect400(await post(h, { petal_width: true }), "petal_width");
  await expect400(await post(h, { petal_width: 1, color: { a: 1 } }), "color");
  await expect400(await post(h, { petal_width: 1, extra: 1 }), "extra", /unknown/);
  const batch = await expect400(await post(h, [{ petal_width: 1 }, { petal_width: 1 }, { petal_width: "x" }]), "petal_width", /row 2/);
  assert.equal(batch.row, 2);
});

test_("out of range passes when not rejecting", async () => {
  const { h } = await make();
  await expectJson(await get(h, "?petal_width=30&sepal_length=-4"), 200);
});

test_("malformed JSON and bad body shapes are 400 with field null", async () => {
  const { h } = await make();
  await expect400(await post(h, "{not json"), null, /malformed JSON/);
  await expect400(await post(h, ""), null, /empty/);
  await expect400(await post(h, "42"), null);
  await expect400(await post(h, "null"), null);
  await expect400(await post(h, '"row"'), null);
  await expect400(await post(h, [1, 2]), null, /row 0/);
  await expect400(await post(h, [null]), null, /row 0/);
  await expect400(await post(h, { rows: 5 }), "rows");
  await expect400(await post(h, { rows: [], debug: true }), "debug");
  await expect400(await post(h, new Uint8Array([0x7b, 0xff, 0x7d])), null, /UTF-8/);
});

test_("batch and body size limits", async () => {
  const { h } = await make({ maxBatchRows: 3, maxBodyBytes: 1000 });
  await expectJson(await post(h, Array(3).fill({ petal_width: 1 })), 200);
  await expect400(await post(h, Array(4).fill({ petal_width: 1 })), null, /limit is 3/);
  const big = JSON.stringify({ rows: Array(60).fill({ petal_width: 1 }) });
  assert.ok(big.length > 1000);
  await expect400(await post(h, big), null, /larger than/, 413);
  // A lying or absent content-length does not get past the streaming limit.
  const stream = new ReadableStream({
    start(c) { for (let i = 0; i < 50; i++) c.enqueue(new TextEncoder().encode("[                                                  ")); c.close(); },
  });
  const res = await h(new Request("http://edge.test/predict", { method: "POST", body: stream, duplex: "half" }), { stream: true });
  await expect400(res, null, /larger than/, 413);
});

test_("404 for other paths, 405 for other methods, OPTIONS preflight, HEAD", async () => {
  const { h } = await make();
  for (const p of ["/", "/predict/x", "/predictions", "/bundle/manifest.json", "/PREDICT"]) {
    const b = await expectJson(await get(h, "", p), 404);
    assert.equal(b.field, null);
  }
  for (const m of ["PUT", "DELETE", "PATCH"]) {
    const res = await h(new Request("http://edge.test/predict", { method: m, body: m === "DELETE" ? undefined : "{}" }));
    await expectJson(res, 405);
    assert.match(res.headers.get("allow"), /GET, POST/);
  }
  await expectJson(await h(new Request("http://edge.test/health", { method: "POST", body: "{}" })), 405);
  const pre = await h(new Request("http://edge.test/predict", { method: "OPTIONS" }));
  assert.equal(pre.status, 204);
  assert.equal(pre.headers.get("access-control-allow-origin"), "*");
  assert.match(pre.headers.get("access-control-allow-methods"), /POST/);
  const head = await h(new Request("http://edge.test/health", { method: "HEAD" }));
  assert.equal(head.status, 200);
  assert.equal(await head.text(), "");
});

test_("/health and /metadata", async () => {
  const { h } = await make();
  assert.deepEqual(await expectJson(await get(h, "", "/health"), 200), { status: "ok", model: { name: "iris", version: "3" } });
  const md = await expectJson(await get(h, "", "/metadata"), 200);
  assert.deepEqual(md, { model: { name: "iris", version: "3" }, kind: "fake", task: "multiclass", labels: MANIFEST.labels, inputs: MANIFEST.inputs });
  assert.deepEqual(await expectJson(await get(h, "?x=1", "/health"), 200), { status: "ok", model: { name: "iris", version: "3" } });
});

test_("binary task: one probability p -> {labels[0]: 1-p, labels[1]: p}", async () => {
  const manifest = { ...MANIFEST, task: "binary", labels: ["no", "yes"] };
  const { h } = await make({}, fakePredictor({ outputs: [0.75] }), manifest);
  const b = await expectJson(await get(h, "?petal_width=1"), 200);
  assert.equal(b.prediction, "yes");
  assert.deepEqual(b.probabilities, { no: 0.25, yes: 0.75 });
  const { h: h2 } = await make({}, fakePredictor({ outputs: [0.2] }), manifest);
  assert.equal((await (await get(h2, "?petal_width=1")).json()).prediction, "no");
  const { h: h3 } = await make({}, fakePredictor({ outputs: [0.3, 0.7] }), manifest);
  assert.deepEqual((await (await get(h3, "?petal_width=1")).json()).probabilities, { no: 0.3, yes: 0.7 });
});

test_("ties go to the first label", async () => {
  const { h } = await make({}, fakePredictor({ outputs: [0.4, 0.4, 0.2] }));
  assert.equal((await (await get(h, "?petal_width=1")).json()).prediction, "setosa");
});

test_("never throws: predictor failures and wrong output widths are 500 JSON", async () => {
  const { h } = await make({}, fakePredictor({ fail: "boom" }));
  const b = await expectJson(await get(h, "?petal_width=1"), 500);
  assert.equal(b.error, "internal error");
  assert.match(b.detail, /boom/);
  const { h: h2 } = await make({}, fakePredictor({ outputs: [0.5, 0.5] }));
  assert.match((await expectJson(await get(h2, "?petal_width=1"), 500)).detail, /2 values per row/);
});

test_("answers are the exact JSON text of {model, prediction, probabilities}, labels escaped", async () => {
  const manifest = { ...MANIFEST, model: { name: 'i"ris\\', version: 12 }, labels: ["a\"b", "ü\n", "</script>"] };
  const { h } = await make({}, fakePredictor({ outputs: [0.25, 1e-7, 0.75] }), manifest);
  const one = await get(h, "?petal_width=1");
  const expected = { model: { name: 'i"ris\\', version: "12" }, prediction: "</script>", probabilities: { "a\"b": 0.25, "ü\n": 1e-7, "</script>": 0.75 } };
  assert.equal(await one.text(), JSON.stringify(expected));
  const batch = await post(h, [{ petal_width: 1 }, { petal_width: 2 }]);
  const { model, ...answer } = expected;
  assert.equal(await batch.text(), JSON.stringify({ model, predictions: [answer, answer] }));
});

test_("query strings: percent-encoding and + decode as URLSearchParams does; empty pairs are skipped", async () => {
  const { h, predictor } = await make();
  await expectJson(await get(h, "?color=%67&petal_width=1.5&&sepal_length=+5"), 400); // "+5" is " 5": not a number
  await expectJson(await get(h, "?color=%67&petal_width=1.5&&sepal_length=5"), 200);
  assert.deepEqual(predictor.calls.at(-1).rows, [[5, 1.5, 1]]);
  await expectJson(await get(h, "?petal_width=1&color"), 200); // a key without "=" is ""
  await expectJson(await get(h, "?petal_width=1&color="), 200); // "" is missing: out of vocabulary
  await expect400(await get(h, "?petal%5Fwidth=1&petal_width=2"), "petal_width", /more than once/);
});

test_("GET /openapi.json describes the routes and the bundle's inputs", async () => {
  const { h } = await make();
  const doc = await expectJson(await get(h, "", "/openapi.json"), 200);
  assert.equal(doc.openapi, "3.0.3");
  assert.deepEqual(Object.keys(doc.paths).sort(), ["/health", "/metadata", "/openapi.json", "/predict"]);
  assert.deepEqual(Object.keys(doc.paths["/predict"]).sort(), ["get", "post"]);
  const type = (schema) => schema.type ?? schema.anyOf[0].type;
  assert.deepEqual(doc.paths["/predict"].get.parameters.map((p) => [p.name, type(p.schema)]), [["sepal_length", "number"], ["petal_width", "number"], ["color", "string"]]);
  assert.deepEqual(Object.keys(doc.components.schemas.Row.properties), ["sepal_length", "petal_width", "color"]);
  assert.deepEqual(doc.components.schemas.Prediction.properties.prediction.enum, MANIFEST.labels);
});

test_("a spec input named \"rows\" makes {\"rows\": ...} a single row", async () => {
  const spec = { format: "kit-feature-spec/1", inputs: [{ name: "rows", kind: "numeric", transform: { type: "identity" } }] };
  const manifest = { ...MANIFEST, task: "binary", labels: ["a", "b"], inputs: [{ name: "rows", type: "number" }] };
  const p = fakePredictor({ outputs: [0.9] });
  const { h } = await make({}, p, manifest, spec);
  const b = await expectJson(await post(h, { rows: 3 }), 200);
  assert.equal(b.prediction, "b");
  assert.deepEqual(p.calls[0].rows, [[3]]);
});
}

test("[fetch] a request object that misbehaves is a 500 or 400 JSON, never a throw", async () => {
  const h = createHandler({ bundle: { manifest: MANIFEST, spec: SPEC }, predictor: fakePredictor(), onError: () => {} });
  const weird = { url: "http://edge.test/predict", method: "POST", headers: new Headers(), get body() { throw new Error("stream exploded"); } };
  const res = await h(weird);
  assert.equal(res.status, 500);
  assert.equal((await res.json()).error, "internal error");
  const bad = await h({ url: "not a url", method: "GET", headers: new Headers() });
  assert.equal(bad.status, 400);
  assert.equal((await bad.json()).error, "invalid request URL");
});

test("createHandler checks the bundle", () => {
  assert.throws(() => createHandler({ bundle: { manifest: { ...MANIFEST, inputs: [{ name: "a" }] }, spec: SPEC }, predictor: fakePredictor() }), BundleError);
  assert.throws(() => createHandler({ bundle: { manifest: MANIFEST, spec: SPEC }, predictor: { ...fakePredictor(), inputWidth: 9 } }), BundleError);
  assert.throws(() => createHandler({ bundle: { manifest: MANIFEST, spec: SPEC } }), TypeError);
});


test("parseQuery's hand split gives what URLSearchParams gives (2,000 seeded random queries)", async () => {
  const { parseQuery } = await import("../src/api.js");
  const { rng } = await import("../test-support/bundle-fuzz.js");
  const rand = rng(11);
  const alphabet = "ab1.-_~=&=&%+ é";
  const reference = (q) => {
    const out = {};
    for (const [k, v] of new URLSearchParams(q)) {
      if (Object.prototype.hasOwnProperty.call(out, k)) return "repeated";
      out[k] = v;
    }
    return out;
  };
  for (let i = 0; i < 2000; i++) {
    let q = "";
    for (let n = Math.floor(rand() * 12); n > 0; n--) q += alphabet[Math.floor(rand() * alphabet.length)];
    let got;
    try { got = parseQuery(q); } catch (e) { got = /more than once/.test(e.message) ? "repeated" : e; }
    assert.deepEqual(got, reference(q), JSON.stringify(q));
  }
});
