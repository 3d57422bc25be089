// The edge HTTP handler (Fetch API: Request -> Response), per FORMAT.md. Runtime-neutral.
import { compileSpec } from "./features.js";
import { RequestError, BundleError } from "./errors.js";
import { loadBundle } from "./bundle.js";
import { createPredictor } from "./models/index.js";

const CORS = {
  "access-control-allow-origin": "*",
  "access-control-allow-methods": "GET, POST, OPTIONS",
  "access-control-allow-headers": "content-type",
  "access-control-max-age": "86400",
};

const ROUTES = {
  "/predict": ["GET", "POST"],
  "/health": ["GET", "HEAD"],
  "/metadata": ["GET", "HEAD"],
};

function json(status, body, extraHeaders = {}) {
  return new Response(JSON.stringify(body), {
    status,
    headers: { "content-type": "application/json", "cache-control": "no-store", ...CORS, ...extraHeaders },
  });
}

function errorBody(err) {
  const body = { error: err.message, field: err.field ?? null };
  if (err.row != null) body.row = err.row;
  return body;
}

const utf8 = new TextDecoder("utf-8", { fatal: true });

/** Read a request body, refusing more than `limit` bytes (413) without buffering past it. */
async function readBody(request, limit) {
  const tooLarge = () => new RequestError(null, `request body is larger than the limit of ${limit} bytes`, { status: 413 });
  const declared = request.headers.get("content-length");
  if (declared !== null && Number(declared) > limit) throw tooLarge();
  if (request.body == null) return "";
  let bytes;
  if (declared !== null && /^\d+$/.test(declared)) {
    // Declared and within the limit: read it in one go (cheaper than a reader loop), check again.
    bytes = new Uint8Array(await request.arrayBuffer());
    if (bytes.byteLength > limit) throw tooLarge();
  } else {
    bytes = await readStream(request.body, limit, tooLarge);
  }
  try {
    return utf8.decode(bytes);
  } catch {
    throw new RequestError(null, "request body is not valid UTF-8");
  }
}

async function readStream(body, limit, tooLarge) {
  const reader = body.getReader();
  const chunks = [];
  let total = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    total += value.byteLength;
    if (total > limit) {
      try { await reader.cancel(); } catch { /* ignore */ }
      throw tooLarge();
    }
    chunks.push(value);
  }
  const bytes = new Uint8Array(total);
  let off = 0;
  for (const c of chunks) { bytes.set(c, off); off += c.byteLength; }
  return bytes;
}

/**
 * Create the handler.
 *   bundle: { manifest, spec } (from loadBundle)
 *   predictor: { predict(rows: Float64Array[], width) -> Promise<number[][]> } (from createPredictor)
 *   rejectOutOfRange: out-of-range numeric fields are 400s (default: they pass)
 *   maxBodyBytes: POST bodies over this are refused with 413
 *   maxBatchRows: batches over this are refused with 400
 *   onError: (error, request) => void, called for unexpected errors (default: console.error)
 */
export function createHandler({ bundle, predictor, rejectOutOfRange = false, maxBodyBytes = 65536, maxBatchRows = 1000, onError } = {}) {
  if (!bundle || !bundle.manifest || !bundle.spec) throw new TypeError("createHandler needs { bundle: { manifest, spec } }");
  if (!predictor || typeof predictor.predict !== "function") throw new TypeError("createHandler needs { predictor } with predict(rows, width)");
  const { manifest } = bundle;
  const features = compileSpec(bundle.spec);

  const specNames = features.inputs.map((i) => i.name);
  const manifestNames = (manifest.inputs || []).map((i) => i && i.name);
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
  const metadata = { model: modelInfo, kind: manifest.kind, task: manifest.task, labels, inputs: manifest.inputs };
  const batchKeyIsInput = specNames.includes("rows");
  const report = onError || ((e) => console.error("kit-edge handler error:", e));

  function toAnswer(out) {
    let probs;
    if (binary && out.length === 1) probs = [1 - out[0], out[0]];
    else if (out.length === labels.length) probs = out;
    else throw new BundleError(`the model returned ${out.length} values per row, but the manifest has ${labels.length} labels (task ${manifest.task})`);
    let best = 0;
    for (let j = 1; j < probs.length; j++) if (probs[j] > probs[best]) best = j;
    const probabilities = {};
    labels.forEach((l, j) => { probabilities[l] = probs[j]; });
    return { prediction: labels[best], probabilities };
  }

  async function predictRows(rawRows, { numericStrings, isBatch }) {
    const opts = { rejectOutOfRange, numericStrings };
    const rows = rawRows.map((raw, i) => {
      try {
        return features.transformRow(raw, opts);
      } catch (e) {
        if (e instanceof RequestError && isBatch) {
          e.row = i;
          e.message = `row ${i}: ${e.message}`;
        }
        throw e;
      }
    });
    const outs = await predictor.predict(rows, features.width);
    return outs.map(toAnswer);
  }

  async function predictGet(url) {
    const raw = {};
    for (const [key, value] of url.searchParams) {
      if (Object.prototype.hasOwnProperty.call(raw, key)) throw new RequestError(key, `field "${key}" is given more than once`);
      raw[key] = value;
    }
    const [answer] = await predictRows([raw], { numericStrings: true, isBatch: false });
    return json(200, { model: modelInfo, ...answer });
  }

  async function predictPost(request) {
    const text = await readBody(request, maxBodyBytes);
    if (text.trim() === "") throw new RequestError(null, "request body is empty; send a JSON object (one row), an array of rows or {\"rows\": [...]}");
    let body;
    try {
      body = JSON.parse(text);
    } catch (e) {
      throw new RequestError(null, `malformed JSON: ${e.message}`);
    }
    let rows = null;
    if (Array.isArray(body)) rows = body;
    else if (body && typeof body === "object" && !batchKeyIsInput && Object.prototype.hasOwnProperty.call(body, "rows")) {
      if (!Array.isArray(body.rows)) throw new RequestError("rows", `"rows" must be an array of row objects`);
      const extra = Object.keys(body).filter((k) => k !== "rows");
      if (extra.length) throw new RequestError(extra[0], `unknown field "${extra[0]}" next to "rows"`);
      rows = body.rows;
    }
    if (rows === null) {
      if (body === null || typeof body !== "object") throw new RequestError(null, "the JSON body must be an object (one row), an array of rows or {\"rows\": [...]}");
      const [answer] = await predictRows([body], { numericStrings: false, isBatch: false });
      return json(200, { model: modelInfo, ...answer });
    }
    if (rows.length > maxBatchRows) throw new RequestError(null, `batch has ${rows.length} rows; the limit is ${maxBatchRows}`);
    const predictions = await predictRows(rows, { numericStrings: false, isBatch: true });
    return json(200, { model: modelInfo, predictions });
  }

  return async function handle(request) {
    try {
      let url;
      try {
        url = new URL(request.url);
      } catch {
        return json(400, { error: "invalid request URL", field: null });
      }
      const path = url.pathname;
      const allowed = ROUTES[path];
      if (!allowed) return json(404, { error: `no route for ${path}; try /predict, /health or /metadata`, field: null });
      const method = request.method.toUpperCase();
      if (method === "OPTIONS") return new Response(null, { status: 204, headers: { ...CORS, allow: [...allowed, "OPTIONS"].join(", ") } });
      if (!allowed.includes(method)) {
        return json(405, { error: `method ${method} is not allowed on ${path}; use ${allowed.join(" or ")}`, field: null }, { allow: [...allowed, "OPTIONS"].join(", ") });
      }
      let response;
      if (path === "/health") response = json(200, { status: "ok", model: modelInfo });
      else if (path === "/metadata") response = json(200, metadata);
      else if (method === "GET") response = await predictGet(url);
      else response = await predictPost(request);
      if (method === "HEAD") return new Response(null, { status: response.status, headers: response.headers });
      return response;
    } catch (err) {
      if (err instanceof RequestError) return json(err.status, errorBody(err));
      try { report(err, request); } catch { /* never throw */ }
      return json(500, { error: "internal error", detail: String((err && err.message) || err), field: null });
    }
  };
}

/** loadBundle + createPredictor + createHandler. */
export async function createHandlerFromLoader(loader, options = {}) {
  const bundle = await loadBundle(loader);
  const predictor = await createPredictor(bundle);
  const handler = createHandler({ ...options, bundle, predictor });
  handler.bundle = bundle;
  handler.predictor = predictor;
  return handler;
}
