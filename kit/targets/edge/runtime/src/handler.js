// The edge HTTP handler (Fetch API: Request -> Response), per FORMAT.md. Runtime-neutral: the
// adapter of the API core (api.js) for browsers, Fastly Compute and Cloudflare Workers.
import { createApi } from "./api.js";
import { RequestError } from "./errors.js";
import { loadBundle } from "./bundle.js";
import { createPredictor } from "./models/index.js";

/** Read at most `limit` + 1 bytes of a request body: { body: Uint8Array, tooLarge }. */
async function readBody(request, limit) {
  const declared = request.headers.get("content-length");
  if (declared !== null && Number(declared) > limit) return { body: null, tooLarge: true };
  if (request.body == null) return { body: null, tooLarge: false };
  if (declared !== null && /^\d+$/.test(declared)) {
    // Declared and within the limit: read it in one go (cheaper than a reader loop), check again.
    const bytes = new Uint8Array(await request.arrayBuffer());
    return { body: bytes, tooLarge: bytes.byteLength > limit };
  }
  const reader = request.body.getReader();
  const chunks = [];
  let total = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    total += value.byteLength;
    if (total > limit) {
      try { await reader.cancel(); } catch { /* ignore */ }
      return { body: null, tooLarge: true };
    }
    chunks.push(value);
  }
  const bytes = new Uint8Array(total);
  let off = 0;
  for (const c of chunks) { bytes.set(c, off); off += c.byteLength; }
  return { body: bytes, tooLarge: false };
}

const toResponse = (r) => new Response(r.body, { status: r.status, headers: r.headers });

/**
 * Create the Fetch handler: async (Request) -> Response. Options as createApi (api.js):
 * { bundle, predictor, rejectOutOfRange, maxBodyBytes, maxBatchRows, onError }.
 * handler.api is the core it adapts.
 */
export function createHandler(options = {}) {
  if (!options.bundle || !options.bundle.manifest || !options.bundle.spec) throw new TypeError("createHandler needs { bundle: { manifest, spec } }");
  if (!options.predictor || typeof options.predictor.predict !== "function") throw new TypeError("createHandler needs { predictor } with predict(rows, width)");
  const api = createApi(options);
  async function handle(request) {
    let req;
    try {
      let url;
      try {
        url = new URL(request.url);
      } catch {
        return toResponse(api.fail(new RequestError(null, "invalid request URL")));
      }
      const method = request.method.toUpperCase();
      req = { method, path: url.pathname, query: url.search.slice(1), body: null, bodyTooLarge: false };
      if (method !== "GET" && method !== "HEAD" && method !== "OPTIONS") {
        const read = await readBody(request, api.maxBodyBytes);
        req.body = read.body;
        req.bodyTooLarge = read.tooLarge;
      }
    } catch (err) {
      return toResponse(api.fail(err));
    }
    return toResponse(await api.handle(req));
  }
  handle.api = api;
  return handle;
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
