#!/usr/bin/env node
// Node HTTP server for an edge bundle: the API core (api.js) behind node:http through the fast
// adapter (adapter.js), plus the browser page (GET /), the bundle files (GET /bundle/<path>) and
// Prometheus metrics (GET /metrics).
//
//   node src/node/server.js --bundle DIR [--port 8080] [--host 127.0.0.1] [--reject-out-of-range]
//        [--fallback-url URL] [--no-bundle-in-page] [--max-body-bytes N] [--max-batch-rows N]
import { readFile, stat } from "node:fs/promises";
import path from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { jsonResult, loadApi } from "../api.js";
import { createMetrics } from "./metrics.js";
import { createHttpServer, JSON_ERROR_HEADERS, METRICS_HEADERS } from "./adapter.js";
import { fsLoader } from "./fsLoader.js";
import { buildPage, pageHtml, DIST_DIR } from "./pageBuild.js";

const USAGE = `usage: node src/node/server.js --bundle DIR [--port 8080] [--host 127.0.0.1]
       [--reject-out-of-range] [--fallback-url URL] [--no-bundle-in-page]
       [--max-body-bytes 65536] [--max-batch-rows 1000]`;

export function parseArgs(argv) {
  const opts = { bundle: null, port: 8080, host: "127.0.0.1", rejectOutOfRange: false, fallbackUrl: null, bundleInPage: true, maxBodyBytes: 65536, maxBatchRows: 1000 };
  const need = (i, name) => {
    if (i + 1 >= argv.length) throw new Error(`${name} needs a value`);
    return argv[i + 1];
  };
  const int = (v, name, min) => {
    if (!/^\d+$/.test(v) || Number(v) < min) throw new Error(`${name} must be an integer >= ${min}, got ${JSON.stringify(v)}`);
    return Number(v);
  };
  for (let i = 0; i < argv.length; i++) {
    let a = argv[i];
    let inline = null;
    if (a.startsWith("--") && a.includes("=")) { inline = a.slice(a.indexOf("=") + 1); a = a.slice(0, a.indexOf("=")); }
    const value = () => (inline !== null ? inline : need(i++, a));
    switch (a) {
      case "--bundle": opts.bundle = value(); break;
      case "--port": opts.port = int(value(), a, 0); if (opts.port > 65535) throw new Error("--port must be <= 65535"); break;
      case "--host": opts.host = value(); break;
      case "--reject-out-of-range": opts.rejectOutOfRange = true; break;
      case "--fallback-url": opts.fallbackUrl = value(); new URL(opts.fallbackUrl); break;
      case "--no-bundle-in-page": opts.bundleInPage = false; break;
      case "--max-body-bytes": opts.maxBodyBytes = int(value(), a, 1); break;
      case "--max-batch-rows": opts.maxBatchRows = int(value(), a, 1); break;
      case "-h": case "--help": opts.help = true; break;
      default: throw new Error(`unknown argument ${JSON.stringify(argv[i])}`);
    }
  }
  if (!opts.help && !opts.bundle) throw new Error("--bundle DIR is required");
  return opts;
}

const TEXT_TYPES = { ".json": "application/json", ".bin": "application/octet-stream", ".js": "text/javascript; charset=utf-8", ".html": "text/html; charset=utf-8" };
const HTML_HEADERS = Object.freeze({ "content-type": "text/html; charset=utf-8", "cache-control": "no-store" });
const PAGE_JS_HEADERS = Object.freeze({ "content-type": "text/javascript; charset=utf-8", "cache-control": "no-cache" });
const BUNDLE_FILE_HEADERS = Object.fromEntries(Object.entries(TEXT_TYPES).map(([ext, type]) => [ext, Object.freeze({ "content-type": type, "cache-control": "no-cache", "access-control-allow-origin": "*" })]));

/** One loaded bundle: its loader, predictor, API core and the files GET /bundle/ may serve. */
async function loadServed(dir, opts) {
  const loader = fsLoader(dir);
  const { bundle, predictor, api } = await loadApi(loader, { rejectOutOfRange: opts.rejectOutOfRange, maxBodyBytes: opts.maxBodyBytes, maxBatchRows: opts.maxBatchRows, onError: (e) => console.error("kit-edge handler error:", e) });
  // Only files the manifest lists (plus the manifest itself) are ever served from the bundle folder.
  const servable = new Set(["manifest.json", ...Object.keys(bundle.manifest.files)]);
  return { loader, bundle, predictor, api, servable, inFlight: 0, retired: false };
}

const LOCAL = new Set(["127.0.0.1", "::1", "::ffff:127.0.0.1"]);

export async function startServer(options) {
  const opts = { port: 8080, host: "127.0.0.1", rejectOutOfRange: false, fallbackUrl: null, bundleInPage: true, maxBodyBytes: 65536, maxBatchRows: 1000, maxHeaderSize: 16384, adminToken: null, log: console.log, ...options };
  // `served` is swapped whole by reload(): a request reads it once and is answered wholly by one bundle.
  let served = await loadServed(opts.bundle, opts);
  const { bundle, predictor } = served;
  const metrics = createMetrics({ ...served.api.modelInfo, kind: bundle.manifest.kind });

  /** Load `dir` beside the served bundle, switch to it, free the old one once its requests are answered. */
  async function reload(dir) {
    const next = await loadServed(dir, opts); // throws (BundleError...) with the old bundle still serving
    const old = served;
    served = next;
    metrics.setModel({ ...next.api.modelInfo, kind: next.bundle.manifest.kind });
    old.retired = true;
    if (old.inFlight === 0) old.predictor.dispose();
    return { reloaded: true, from: old.api.modelInfo.version, to: next.api.modelInfo.version };
  }

  // POST /admin/reload {"bundle": DIR}: from loopback with the token `kit serve edge` gave (no token: no route).
  async function admin(request) {
    const refuse = (status, error) => jsonResult(status, { error, field: null });
    if (!LOCAL.has(request.remote) || request.headers["x-kit-admin-token"] !== opts.adminToken) return refuse(403, "reload is allowed from 127.0.0.1 with the server's token only");
    if (request.method !== "POST") return refuse(405, "POST /admin/reload");
    let dir;
    try { dir = JSON.parse(request.body.toString("utf8")).bundle; } catch { dir = null; }
    if (typeof dir !== "string") return refuse(400, 'body must be {"bundle": "DIR"}');
    try {
      return jsonResult(200, await reload(dir));
    } catch (e) {
      console.error(`reload from ${dir} failed, still serving v${served.api.modelInfo.version}: ${e.message}`);
      return jsonResult(500, { reloaded: false, version: served.api.modelInfo.version, error: e.message });
    }
  }

  // What the HTTP adapter calls: the served bundle's API core, plus the admin route.
  const api = {
    maxBodyBytes: opts.maxBodyBytes,
    fail: (e) => served.api.fail(e),
    async handle(request) {
      if (opts.adminToken && request.path === "/admin/reload") return admin(request);
      const current = served;
      current.inFlight++;
      try {
        return await current.api.handle(request);
      } finally {
        if (--current.inFlight === 0 && current.retired) current.predictor.dispose();
      }
    },
  };

  let pageJs = null;
  const loadPageJs = () => {
    if (!pageJs) {
      pageJs = buildPage().catch(async (e) => {
        // esbuild not installed (e.g. npm ci --omit=dev): serve a prebuilt dist/page.js if any.
        try { return await readFile(path.join(DIST_DIR, "page.js"), "utf8"); } catch { throw e; }
      });
      pageJs.catch(() => { pageJs = null; });
    }
    return pageJs;
  };

  /** GET/HEAD of the page, page.js, bundle files and /metrics; null when `p` is none of them. */
  async function serveOwn(method, p) {
    const head = method === "HEAD";
    if (p === "/metrics") return { status: 200, headers: METRICS_HEADERS, body: head ? null : metrics.render() };
    if (p === "/" || p === "/index.html") {
      const html = await pageHtml({ fallbackUrl: opts.fallbackUrl, bundleUrl: "bundle/" });
      return { status: 200, headers: HTML_HEADERS, body: head ? null : html };
    }
    if (p === "/page.js") {
      let js;
      try {
        js = await loadPageJs();
      } catch (e) {
        return { status: 503, headers: JSON_ERROR_HEADERS, body: JSON.stringify({ error: `page.js is not available: run "npm run build" (${e.message})`, field: null }) };
      }
      return { status: 200, headers: PAGE_JS_HEADERS, body: head ? null : js };
    }
    if (p.startsWith("/bundle/")) {
      let rel;
      try { rel = decodeURIComponent(p.slice("/bundle/".length)); } catch { rel = null; }
      const { loader, servable } = served;
      if (!opts.bundleInPage || rel === null || !servable.has(rel)) return { status: 404, headers: JSON_ERROR_HEADERS, body: JSON.stringify({ error: "not found", field: null }) };
      const bytes = Buffer.from(await loader.bytes(rel));
      return { status: 200, headers: BUNDLE_FILE_HEADERS[path.extname(rel)] || BUNDLE_FILE_HEADERS[".bin"], body: head ? null : bytes };
    }
    return null;
  }

  const server = createHttpServer(api, { metrics, serveOwn, maxBodyBytes: opts.maxBodyBytes, maxHeaderSize: opts.maxHeaderSize });
  await new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen(opts.port, opts.host, () => { server.off("error", reject); resolve(); });
  });
  const addr = server.address();
  const hostForUrl = addr.family === "IPv6" || addr.address.includes(":") ? `[${addr.address}]` : addr.address;
  const url = `http://${hostForUrl}:${addr.port}`;

  async function close() {
    await new Promise((resolve) => {
      server.close(() => resolve());
      server.closeIdleConnections();
      setTimeout(() => { server.closeAllConnections(); }, 2000).unref();
    });
  }
  return { server, url, port: addr.port, api, bundle, predictor, metrics, close, reload, warmPage: loadPageJs };
}

async function main(argv) {
  let opts;
  try {
    opts = parseArgs(argv);
  } catch (e) {
    console.error(`error: ${e.message}\n${USAGE}`);
    process.exit(2);
  }
  if (opts.help) {
    console.log(USAGE);
    return;
  }
  try {
    await stat(opts.bundle);
  } catch {
    console.error(`error: bundle folder ${opts.bundle} does not exist`);
    process.exit(2);
  }
  let srv;
  try {
    // `kit serve edge` passes a token: it then reloads through POST /admin/reload, and SIGHUP
    // (sent to the whole process group by a closing terminal) is its to handle, not a stop.
    srv = await startServer({ ...opts, adminToken: process.env.KIT_EDGE_ADMIN_TOKEN || null });
  } catch (e) {
    console.error(`error: cannot start: ${e.message}`);
    process.exit(1);
  }
  console.log(`listening on ${srv.url}`);
  // Build the page in the background so the first browser visit is quick.
  srv.warmPage().catch(() => {});
  let stopping = false;
  const stop = async (signal) => {
    if (stopping) return;
    stopping = true;
    console.error(`${signal}: shutting down`);
    await srv.close();
    process.exit(0);
  };
  process.on("SIGTERM", () => stop("SIGTERM"));
  process.on("SIGINT", () => stop("SIGINT"));
  if (process.env.KIT_EDGE_ADMIN_TOKEN) process.on("SIGHUP", () => {});
}

if (process.argv[1] && import.meta.url === pathToFileURL(path.resolve(process.argv[1])).href) {
  main(process.argv.slice(2));
}
