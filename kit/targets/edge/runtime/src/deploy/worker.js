// Entry of the single-file deployable (built by scripts/build-deploy.mjs, which provides the
// virtual module "kit:bundle" with the bundle files inlined and the handler options).
//
// Cloudflare Workers: `export default { fetch }` (ES module worker).
// Fastly Compute (JS): addEventListener("fetch", ...) service-worker style.
import { FILES, OPTIONS } from "kit:bundle";
import { memoryLoader } from "../bundle.js";
import { createHandlerFromLoader } from "../handler.js";

function decodeBase64(b64) {
  const bin = atob(b64);
  const out = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
  return out;
}

function decodeFiles() {
  const files = new Map();
  for (const [path, f] of Object.entries(FILES)) files.set(path, f.text !== undefined ? f.text : decodeBase64(f.base64));
  return files;
}

let ready = null;

/** The handler, created on first use (model load and hash checks happen once per instance). */
export function getHandler() {
  if (!ready) {
    ready = createHandlerFromLoader(memoryLoader(decodeFiles()), OPTIONS);
    ready.catch(() => { ready = null; }); // retry on the next request
  }
  return ready;
}

export async function handle(request) {
  let handler;
  try {
    handler = await getHandler();
  } catch (e) {
    return new Response(JSON.stringify({ error: "the model could not be loaded", detail: String(e && e.message), field: null }), {
      status: 503,
      headers: { "content-type": "application/json", "access-control-allow-origin": "*" },
    });
  }
  return handler(request);
}

export default {
  fetch(request) {
    return handle(request);
  },
};

// Fastly Compute's JS runtime dispatches fetch events to addEventListener. Cloudflare module
// workers and browser pages must not register one.
const isCloudflare = typeof navigator !== "undefined" && navigator.userAgent === "Cloudflare-Workers";
const isPage = typeof document !== "undefined";
if (typeof addEventListener === "function" && !isCloudflare && !isPage) {
  try {
    addEventListener("fetch", (event) => event.respondWith(handle(event.request)));
    // Fastly pre-initialises the top level at build time (Wizer snapshot): start loading the model
    // now so that as much of it as possible is done before the first request.
    getHandler().catch(() => {});
  } catch {
    // not a service-worker style runtime
  }
}
