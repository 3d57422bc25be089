#!/usr/bin/env node
// Node HTTP server for an edge bundle: node:http <-> Fetch API bridge around the same handler
// used at the edge, plus the browser page (GET /) and the bundle files (GET /bundle/<path>).
//
//   node src/node/server.js --bundle DIR [--port 8080] [--host 127.0.0.1] [--reject-out-of-range]
//        [--fallback-url URL] [--no-bundle-in-page] [--max-body-bytes N] [--max-batch-rows N]
import http from "node:http";
import { readFile, stat } from "node:fs/promises";
import path from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { createHandlerFromLoader } from "../handler.js";
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

function send(res, status, headers, body) {
  if (body !== undefined && body !== null) headers = { ...headers, "content-length": String(Buffer.byteLength(body)) };
  res.writeHead(status, headers);
  res.end(body);
}

function sendJson(res, status, obj, extra = {}) {
  send(res, status, { "content-type": "application/json", "access-control-allow-origin": "*", ...extra }, JSON.stringify(obj));
}

/** Read at most `limit` + 1 bytes of the request body (the handler answers 413 past the limit). */
function readNodeBody(req, limit) {
  return new Promise((resolve, reject) => {
    const chunks = [];
    let total = 0;
    let over = false;
    req.on("data", (chunk) => {
      if (over) return;
      total += chunk.length;
      if (total > limit) {
        over = true;
        chunks.push(chunk.subarray(0, chunk.length - (total - limit - 1)));
        req.pause();
        resolve({ body: Buffer.concat(chunks), over: true });
        return;
      }
      chunks.push(chunk);
    });
    req.on("end", () => { if (!over) resolve({ body: Buffer.concat(chunks), over: false }); });
    req.on("error", reject);
  });
}

export async function startServer(options) {
  const opts = { port: 8080, host: "127.0.0.1", rejectOutOfRange: false, fallbackUrl: null, bundleInPage: true, maxBodyBytes: 65536, maxBatchRows: 1000, log: console.log, ...options };
  const loader = fsLoader(opts.bundle);
  const handler = await createHandlerFromLoader(loader, { rejectOutOfRange: opts.rejectOutOfRange, maxBodyBytes: opts.maxBodyBytes, maxBatchRows: opts.maxBatchRows });
  // Only files the manifest lists (plus the manifest itself) are ever served from the bundle folder.
  const servable = new Set(["manifest.json", ...Object.keys(handler.bundle.manifest.files)]);

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

  async function serveStatic(req, res, url) {
    const p = url.pathname;
    if (p === "/" || p === "/index.html") {
      const html = await pageHtml({ fallbackUrl: opts.fallbackUrl, bundleUrl: "bundle/" });
      send(res, 200, { "content-type": "text/html; charset=utf-8", "cache-control": "no-store" }, req.method === "HEAD" ? undefined : html);
      return true;
    }
    if (p === "/page.js") {
      let js;
      try {
        js = await loadPageJs();
      } catch (e) {
        send(res, 503, { "content-type": "text/plain; charset=utf-8" }, `page.js is not available: run "npm run build" (${e.message})\n`);
        return true;
      }
      send(res, 200, { "content-type": "text/javascript; charset=utf-8", "cache-control": "no-cache" }, req.method === "HEAD" ? undefined : js);
      return true;
    }
    if (p.startsWith("/bundle/")) {
      let rel;
      try { rel = decodeURIComponent(p.slice("/bundle/".length)); } catch { rel = null; }
      if (!opts.bundleInPage || rel === null || !servable.has(rel)) {
        sendJson(res, 404, { error: "not found", field: null });
        return true;
      }
      const bytes = await loader.bytes(rel);
      send(res, 200, { "content-type": TEXT_TYPES[path.extname(rel)] || "application/octet-stream", "cache-control": "no-cache", "access-control-allow-origin": "*" }, req.method === "HEAD" ? undefined : bytes);
      return true;
    }
    return false;
  }

  async function onRequest(req, res) {
    try {
      let url;
      try {
        url = new URL(`http://localhost${req.url.startsWith("/") ? req.url : "/" + req.url}`);
      } catch {
        sendJson(res, 400, { error: "invalid request target", field: null });
        return;
      }
      if ((req.method === "GET" || req.method === "HEAD") && (await serveStatic(req, res, url))) return;

      const headers = new Headers();
      for (let i = 0; i < req.rawHeaders.length; i += 2) {
        try { headers.append(req.rawHeaders[i], req.rawHeaders[i + 1]); } catch { /* skip invalid header */ }
      }
      const init = { method: req.method, headers };
      let over = false;
      if (req.method !== "GET" && req.method !== "HEAD") {
        const r = await readNodeBody(req, opts.maxBodyBytes);
        over = r.over;
        init.body = r.body;
        headers.delete("transfer-encoding");
        headers.set("content-length", String(r.body.length)); // what was actually read (capped)
      }
      const response = await handler(new Request(url.href, init));
      const out = {};
      response.headers.forEach((v, k) => { out[k] = v; });
      if (over) out.connection = "close"; // do not read the rest of an oversized upload
      const body = response.body ? Buffer.from(await response.arrayBuffer()) : undefined;
      send(res, response.status, out, req.method === "HEAD" ? undefined : body);
      if (over) res.on("finish", () => req.destroy());
    } catch (e) {
      console.error("server error:", e);
      if (!res.headersSent) sendJson(res, 500, { error: "internal error", detail: String(e && e.message), field: null });
      else res.destroy();
    }
  }

  const server = http.createServer({ keepAlive: true, requestTimeout: 30000, headersTimeout: 20000 }, onRequest);
  server.keepAliveTimeout = 65000;
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
  return { server, url, port: addr.port, handler, close, warmPage: loadPageJs };
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
    srv = await startServer(opts);
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
}

if (process.argv[1] && import.meta.url === pathToFileURL(path.resolve(process.argv[1])).href) {
  main(process.argv.slice(2));
}
