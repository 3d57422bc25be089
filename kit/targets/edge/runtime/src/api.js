// The edge API's behaviour, once: routing, parameter parsing and validation, answers, error
// bodies and headers. Transport-neutral: handle({method, path, query, body, bodyTooLarge}) ->
// {status, headers, body, rows}. Two adapters call it: the Fetch handler (handler.js: browsers,
// Fastly, Cloudflare) and the Node server's fast path (node/server.js), which never builds
// Fetch Request/Response objects.
import { compileSpec } from "./features.js";
import { RequestError, BundleError } from "./errors.js";
import { buildOpenApi } from "./openapi.js";
import { loadBundle } from "./bundle.js";
import { createPredictor } from "./models/index.js";

export const CORS = Object.freeze({
  "access-control-allow-origin": "*",
  "access-control-allow-methods": "GET, POST, OPTIONS",
  "access-control-allow-headers": "content-type",
  "access-control-max-age": "86400",
});

/** path -> methods. The OpenAPI description is generated from this table (openapi.js). */
export const ROUTES = Object.freeze({
  "/predict": ["GET", "POST"],
  "/health": ["GET", "HEAD"],
  "/metadata": ["GET", "HEAD"],
  "/openapi.json": ["GET", "HEAD"],
});

const JSON_HEADERS = Object.freeze({ "content-type": "application/json", "cache-control": "no-store", ...CORS });
const ALLOW_HEADERS = Object.fromEntries(Object.entries(ROUTES).map(([p, methods]) => {
  const allow = [...methods, "OPTIONS"].join(", ");
  return [p, {
    preflight: Object.freeze({ ...CORS, allow }),
    notAllowed: Object.freeze({ ...JSON_HEADERS, allow }),
  }];
}));

const hasOwn = (obj, key) => Object.prototype.hasOwnProperty.call(obj, key);
const utf8 = new TextDecoder("utf-8", { fatal: true });

/** The JSON error body every 4xx/5xx carries: {"error", "field", ["row"], ["detail"]}. */
export function errorBody(err) {
  const body = { error: err.message, field: err.field ?? null };
  if (err.row != null) body.row = err.row;
  return body;
}

export function jsonResult(status, obj, headers = JSON_HEADERS) {
  return { status, headers, body: JSON.stringify(obj), rows: 0 };
}

/** A JSON number as JSON.stringify writes it (non-finite -> null). */
const num = (x) => (Number.isFinite(x) ? String(x) : "null");

// Query strings made only of these characters need no percent- or plus-decoding, so they can
// be split by hand; anything else goes through URLSearchParams (same result, more work).
const PLAIN_QUERY = /^[A-Za-z0-9_.\-~=&]*$/;

/** Query string (without "?") -> row object, refusing a repeated field. */
export function parseQuery(query) {
  const raw = {};
  if (!query) return raw;
  const add = (key, value) => {
    if (hasOwn(raw, key)) throw new RequestError(key, `field "${key}" is given more than once`);
    raw[key] = value;
  };
  if (PLAIN_QUERY.test(query)) {
    let start = 0;
    while (start <= query.length) {
      let end = query.indexOf("&", start);
      if (end < 0) end = query.length;
      if (end > start) {
        const eq = query.indexOf("=", start);
        if (eq < 0 || eq > end) add(query.slice(start, end), "");
        else add(query.slice(start, eq), query.slice(eq + 1, end));
      }
      start = end + 1;
    }
  } else {
    for (const [key, value] of new URLSearchParams(query)) add(key, value);
  }
  return raw;
}

/**
 * Create the API.
 *   bundle: { manifest, spec } (from loadBundle)
 *   predictor: { predict(rows: Float64Array[], width) -> number[][] | Promise<number[][]> }
 *   rejectOutOfRange: out-of-range numeric fields are 400s (default: they pass)
 *   maxBodyBytes: POST bodies over this are refused with 413
 *   maxBatchRows: batches over this are refused with 400
 *   onError: (error) => void, called for unexpected errors (default: console.error)
 * Returns { handle, fail, maxBodyBytes, modelInfo, routes, openapi }.
 */
export function createApi({ bundle, predictor, rejectOutOfRange = false, maxBodyBytes = 65536, maxBatchRows = 1000, onError } = {}) {
  if (!bundle || !bundle.manifest || !bundle.spec) throw new TypeError("createApi needs { bundle: { manifest, spec } }");
  if (!predictor || typeof predictor.predict !== "function") throw new TypeError("createApi needs { predictor } with predict(rows, width)");
  const { manifest } = bundle;
  let features;
  try {
    features = compileSpec(bundle.spec);
  } catch (e) {
    if (e instanceof BundleError) throw new BundleError(`feature_spec.json: ${e.message}`);
    throw e;
  }

  const specNames = features.inputs.map((i) => i.name);
  const manifestNames = (Array.isArray(manifest.inputs) ? manifest.inputs : []).map((i) => i && i.name);
  if (manifestNames.length !== specNames.length || manifestNames.some((n, i) => n !== specNames[i])) {
    throw new BundleError(`manifest.json inputs [${manifestNames.join(", ")}] do not match feature_spec.json inputs [${specNames.join(", ")}]`);
  }
  if (predictor.inputWidth != null && predictor.inputWidth !== features.width) {
    throw new BundleError(`feature_spec.json yields ${features.width} columns but the model expects ${predictor.inputWidth}`);
  }

  const labels = manifest.labels;
  const binary = manifest.task === "binary";
  const k = predictor.outputWidth;
  if (k != null && k !== labels.length && !(binary && k === 1)) {
    throw new BundleError(`the model outputs ${k} values per row, but manifest.json has ${labels.length} labels (task ${manifest.task})`);
  }
  const modelInfo = { name: manifest.model.name, version: String(manifest.model.version) };
  const report = onError || ((e) => console.error("kit-edge handler error:", e));
  const batchKeyIsInput = specNames.includes("rows");

  // Answers are written by hand from pieces serialised once (same text as JSON.stringify).
  const modelJson = JSON.stringify(modelInfo);
  const labelKeys = labels.map((l, j) => (j ? "," : "") + JSON.stringify(l) + ":");
  const labelValues = labels.map((l) => JSON.stringify(l));
  const SINGLE_PREFIX = `{"model":${modelJson},`;
  const BATCH_PREFIX = `{"model":${modelJson},"predictions":[`;
  const fixed = {
    health: JSON.stringify({ status: "ok", model: modelInfo }),
    metadata: JSON.stringify({ model: modelInfo, kind: manifest.kind, task: manifest.task, labels, inputs: manifest.inputs }),
    openapi: JSON.stringify(buildOpenApi({ routes: ROUTES, manifest, modelInfo, maxBodyBytes, maxBatchRows, batchKeyIsInput, rejectOutOfRange })),
  };

  /** One row's model outputs -> `"prediction":...,"probabilities":{...}` (no braces). */
  function answerJson(out) {
    let p0 = null;
    if (binary && out.length === 1) p0 = 1 - out[0];
    else if (out.length !== labels.length) {
      throw new BundleError(`the model returned ${out.length} values per row, but the manifest has ${labels.length} labels (task ${manifest.task})`);
    }
    const at = (j) => (p0 === null ? out[j] : j === 0 ? p0 : out[0]);
    let best = 0;
    for (let j = 1; j < labels.length; j++) if (at(j) > at(best)) best = j;
    let s = `"prediction":${labelValues[best]},"probabilities":{`;
    for (let j = 0; j < labels.length; j++) s += labelKeys[j] + num(at(j));
    return s + "}";
  }

  function transformRows(rawRows, numericStrings, isBatch) {
    const opts = { rejectOutOfRange, numericStrings };
    const rows = new Array(rawRows.length);
    for (let i = 0; i < rawRows.length; i++) {
      try {
        rows[i] = features.transformRow(rawRows[i], opts);
      } catch (e) {
        if (e instanceof RequestError && isBatch) {
          e.row = i;
          e.message = `row ${i}: ${e.message}`;
        }
        throw e;
      }
    }
    return rows;
  }

  async function predictOne(raw, numericStrings) {
    const rows = transformRows([raw], numericStrings, false);
    const outs = await predictor.predict(rows, features.width);
    return { status: 200, headers: JSON_HEADERS, body: SINGLE_PREFIX + answerJson(outs[0]) + "}", rows: 1 };
  }

  async function predictBatch(rawRows) {
    if (rawRows.length > maxBatchRows) throw new RequestError(null, `batch has ${rawRows.length} rows; the limit is ${maxBatchRows}`);
    const rows = transformRows(rawRows, false, true);
    const outs = rows.length ? await predictor.predict(rows, features.width) : [];
    let s = BATCH_PREFIX;
    for (let i = 0; i < outs.length; i++) s += (i ? ",{" : "{") + answerJson(outs[i]) + "}";
    return { status: 200, headers: JSON_HEADERS, body: s + "]}", rows: rows.length };
  }

  function decodeBody(body) {
    if (body == null) return "";
    if (typeof body === "string") return body;
    try {
      return utf8.decode(body);
    } catch {
      throw new RequestError(null, "request body is not valid UTF-8");
    }
  }

  function predictPost(bodyBytes, bodyTooLarge) {
    if (bodyTooLarge) throw new RequestError(null, `request body is larger than the limit of ${maxBodyBytes} bytes`, { status: 413 });
    const text = decodeBody(bodyBytes);
    if (text.trim() === "") throw new RequestError(null, "request body is empty; send a JSON object (one row), an array of rows or {\"rows\": [...]}");
    let body;
    try {
      body = JSON.parse(text);
    } catch (e) {
      throw new RequestError(null, `malformed JSON: ${e.message}`);
    }
    if (Array.isArray(body)) return predictBatch(body);
    if (body && typeof body === "object" && !batchKeyIsInput && hasOwn(body, "rows")) {
      if (!Array.isArray(body.rows)) throw new RequestError("rows", `"rows" must be an array of row objects`);
      const extra = Object.keys(body).filter((key) => key !== "rows");
      if (extra.length) throw new RequestError(extra[0], `unknown field "${extra[0]}" next to "rows"`);
      return predictBatch(body.rows);
    }
    if (body === null || typeof body !== "object") throw new RequestError(null, "the JSON body must be an object (one row), an array of rows or {\"rows\": [...]}");
    return predictOne(body, false);
  }

  /** An error -> its JSON result: RequestError -> its 4xx, anything else -> 500 (reported). */
  function fail(err) {
    if (err instanceof RequestError) return jsonResult(err.status, errorBody(err));
    try { report(err); } catch { /* never throw */ }
    return jsonResult(500, { error: "internal error", detail: String((err && err.message) || err), field: null });
  }

  function route(method, path, query, body, bodyTooLarge) {
    if (!hasOwn(ROUTES, path)) {
      return jsonResult(404, { error: `no route for ${path}; try /predict, /health, /metadata or /openapi.json`, field: null });
    }
    if (method === "OPTIONS") return { status: 204, headers: ALLOW_HEADERS[path].preflight, body: null, rows: 0 };
    const allowed = ROUTES[path];
    if (!allowed.includes(method)) {
      return jsonResult(405, { error: `method ${method} is not allowed on ${path}; use ${allowed.join(" or ")}`, field: null }, ALLOW_HEADERS[path].notAllowed);
    }
    if (path === "/predict") return method === "GET" ? predictOne(parseQuery(query), true) : predictPost(body, bodyTooLarge);
    if (path === "/health") return { status: 200, headers: JSON_HEADERS, body: fixed.health, rows: 0 };
    if (path === "/metadata") return { status: 200, headers: JSON_HEADERS, body: fixed.metadata, rows: 0 };
    return { status: 200, headers: JSON_HEADERS, body: fixed.openapi, rows: 0 };
  }

  /**
   * req: { method: "GET", path: "/predict" (decoded as URL.pathname gives it), query: "a=1&b=2"
   * (without "?"), body: Uint8Array | string | null (at most maxBodyBytes + 1 bytes read),
   * bodyTooLarge: true when the body went past maxBodyBytes }.
   * Resolves to { status, headers (shared, frozen: never mutate), body: string | null, rows }.
   */
  async function handle(req) {
    const method = req.method.toUpperCase();
    let result;
    try {
      result = await route(method, req.path, req.query, req.body, req.bodyTooLarge === true);
    } catch (err) {
      return fail(err);
    }
    if (method === "HEAD") return { status: result.status, headers: result.headers, body: null, rows: 0 };
    return result;
  }

  return { handle, fail, maxBodyBytes, modelInfo, routes: ROUTES, openapi: fixed.openapi };
}

/** loadBundle + createPredictor + createApi: { bundle, predictor, api }. Throws BundleError. */
export async function loadApi(loader, options = {}) {
  const bundle = await loadBundle(loader);
  const predictor = await createPredictor(bundle);
  return { bundle, predictor, api: createApi({ ...options, bundle, predictor }) };
}
