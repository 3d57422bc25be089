#!/usr/bin/env node
// A stdin/stdout bridge for the Python gates (parity and latency in the target runtime).
//
//   node src/node/bridge.js --bundle DIR [--reject-out-of-range] [--bench N] < request.json
//
// stdin: {"rows": [{...raw fields...}, ...]}, or, to score many rows fast (the regression gate
//        re-scores whole validation sets), columns: {"columns": {"field": COLUMN, ...}} where
//        COLUMN is [v0, v1, ...] (null: missing), {"float64": base64 little-endian doubles}
//        (NaN: missing) or {"codes": base64 int32, "categories": [...]} (-1: missing); then stdout is only {"model", "outputs": [flat, row-major],
//        "output_width", "refused": {"count", "row", "error", "field"} | null}
//        (outputs of the accepted rows; a caller that needs every row checks `refused`).
// stdout (rows): {"model": {...}, "features": [[...]], "outputs": [[...]], "predictions": [{"prediction",
//          "probabilities"} | {"error", "field"}], "latency_ms": {...}}   (one JSON document)
// features: the spec's vectors (NaN -> null); outputs: the raw model outputs (float32 as numbers);
// latency_ms (with --bench N [--warmup W, default 3000]): single-row handler latency (a JSON row)
// over N calls after W warm-up calls; cold_p99 is the p99 of the warm-up calls. Percentiles are
// nearest-rank (stats.js, the same rule as kit/stats.py); `definition` names it.
import { readFileSync } from "node:fs";
import { compileSpec } from "../features.js";
import { RequestError } from "../errors.js";
import { createHandlerFromLoader } from "../handler.js";
import { fsLoader } from "./fsLoader.js";
import { DEFINITION, percentile } from "./stats.js";

function parseArgs(argv) {
  const o = { bundle: null, rejectOutOfRange: false, bench: 0, warmup: 3000 };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === "--bundle") o.bundle = argv[++i];
    else if (a === "--reject-out-of-range") o.rejectOutOfRange = true;
    else if (a === "--bench") o.bench = Number(argv[++i]);
    else if (a === "--warmup") o.warmup = Number(argv[++i]);
    else throw new Error(`unknown argument ${JSON.stringify(a)}`);
  }
  if (!o.bundle) throw new Error("--bundle DIR is required");
  if (!Number.isInteger(o.bench) || o.bench < 0) throw new Error("--bench needs a non-negative integer");
  if (!Number.isInteger(o.warmup) || o.warmup < 0) throw new Error("--warmup needs a non-negative integer");
  return o;
}

async function main() {
  const opts = parseArgs(process.argv.slice(2));
  const input = JSON.parse(readFileSync(0, "utf8") || "{}");
  const rows = Array.isArray(input) ? input : input.rows || [];
  const handler = await createHandlerFromLoader(fsLoader(opts.bundle), { rejectOutOfRange: opts.rejectOutOfRange });
  const features = compileSpec(handler.bundle.spec);
  if (input && typeof input === "object" && !Array.isArray(input) && input.columns) {
    process.stdout.write(JSON.stringify(await scoreColumns(handler, features, input.columns, opts)) + "\n");
    return;
  }
  const labels = handler.bundle.manifest.labels;
  const out = { model: { name: handler.bundle.manifest.model.name, version: String(handler.bundle.manifest.model.version) }, width: features.width, features: [], outputs: [], predictions: [] };
  for (const row of rows) {
    let vec;
    try {
      vec = features.transformRow(row, { rejectOutOfRange: opts.rejectOutOfRange, numericStrings: false }); // as a JSON POST body
    } catch (e) {
      if (!(e instanceof RequestError)) throw e;
      out.features.push(null);
      out.outputs.push(null);
      out.predictions.push({ error: e.message, field: e.field });
      continue;
    }
    const [o] = await handler.predictor.predict([vec], features.width);
    out.features.push(Array.from(vec, (x) => (Number.isFinite(x) ? x : null)));
    out.outputs.push(o);
    const probs = o.length === 1 && labels.length === 2 ? [1 - o[0], o[0]] : o;
    let best = 0;
    for (let j = 1; j < probs.length; j++) if (probs[j] > probs[best]) best = j;
    out.predictions.push({ prediction: labels[best], probabilities: Object.fromEntries(labels.map((l, j) => [l, probs[j]])) });
  }
  if (opts.bench > 0 && rows.length > 0) {
    // V8 needs a few thousand calls to optimize the handler and tfjs (measured: p99 5 ms over
    // the first 1,000 calls, 0.3-0.5 ms from the 3,000th on). A server reaches that in its first
    // seconds, so the gate judges the steady state after `--warmup` calls, and reports the cold
    // calls separately.
    const call = async (i) => {
      const body = JSON.stringify(rows[i % rows.length]);
      const t0 = performance.now();
      const res = await handler(new Request("http://bridge/predict", { method: "POST", body }));
      await res.text();
      return performance.now() - t0;
    };
    const cold = [];
    for (let i = 0; i < opts.warmup; i++) cold.push(await call(i));
    const times = [];
    for (let i = 0; i < opts.bench; i++) times.push(await call(i));
    out.latency_ms = { n: times.length, warmup: cold.length, definition: DEFINITION, p50: percentile(times, 50), p90: percentile(times, 90), p99: percentile(times, 99), max: percentile(times, 100), mean: times.reduce((a, b) => a + b, 0) / times.length, cold_p99: cold.length ? percentile(cold, 99) : null };
  }
  process.stdout.write(JSON.stringify(out) + "\n");
}

// Columns in, raw outputs out: one reused row object (null reads as missing, as in a JSON body)
// and vectors predicted in batches, which a TF.js graph runs as one tensor. Per-row JSON objects
// cost ~15x more at 250k rows.
const BATCH = 2048;
function decodeColumn(name, encoded) {
  if (Array.isArray(encoded)) return encoded;
  const bytes = (b64) => Buffer.from(b64, "base64");
  if (encoded && typeof encoded.float64 === "string") {
    const buf = bytes(encoded.float64);
    const values = new Float64Array(buf.buffer, buf.byteOffset, buf.length / 8);
    return Array.from(values, (x) => (Number.isNaN(x) ? null : x));
  }
  if (encoded && typeof encoded.codes === "string" && Array.isArray(encoded.categories)) {
    const buf = bytes(encoded.codes);
    const codes = new Int32Array(buf.buffer, buf.byteOffset, buf.length / 4);
    return Array.from(codes, (c) => (c < 0 ? null : encoded.categories[c]));
  }
  throw new Error(`column ${JSON.stringify(name)}: expected a list, {"float64"} or {"codes", "categories"}`);
}

async function scoreColumns(handler, features, encoded, opts) {
  const names = Object.keys(encoded);
  const columns = Object.fromEntries(names.map((name) => [name, decodeColumn(name, encoded[name])]));
  const n = names.length ? columns[names[0]].length : 0;
  for (const name of names) {
    if (columns[name].length !== n) throw new Error(`column ${JSON.stringify(name)} has ${columns[name].length} values, not ${n}`);
  }
  const outputs = [];
  let outputWidth = null;
  let refused = null;
  const row = {};
  let batch = [];
  const flush = async () => {
    if (!batch.length) return;
    const predicted = await handler.predictor.predict(batch, features.width);
    for (let j = 0; j < predicted.length; j++) {
      const o = predicted[j];
      outputWidth ??= o.length;
      for (let k = 0; k < o.length; k++) outputs.push(o[k]);
    }
    batch = [];
  };
  for (let i = 0; i < n; i++) {
    for (const name of names) row[name] = columns[name][i];
    try {
      batch.push(features.transformRow(row, { rejectOutOfRange: opts.rejectOutOfRange, numericStrings: false }));
    } catch (e) {
      if (!(e instanceof RequestError)) throw e;
      refused ??= { count: 0, row: i, error: e.message, field: e.field };
      refused.count++;
    }
    if (batch.length === BATCH) await flush();
  }
  await flush();
  return { model: { name: handler.bundle.manifest.model.name, version: String(handler.bundle.manifest.model.version) }, outputs, output_width: outputWidth, refused };
}

main().catch((e) => {
  process.stderr.write(`error: ${e.message}\n`);
  process.exit(e instanceof SyntaxError ? 2 : 1);
});
