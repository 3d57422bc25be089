// The Node adapter of the API core (api.js): node:http straight to api.handle, without Fetch
// Request/Response objects, plus JSON answers for requests Node's parser refuses.
import http from "node:http";
import { ROUTES } from "../api.js";
import { RequestError } from "../errors.js";

const hasOwn = (obj, key) => Object.prototype.hasOwnProperty.call(obj, key);

export const JSON_ERROR_HEADERS = Object.freeze({ "content-type": "application/json", "cache-control": "no-store", "access-control-allow-origin": "*" });
export const METRICS_HEADERS = Object.freeze({ "content-type": "text/plain; version=0.0.4; charset=utf-8", "cache-control": "no-store" });

// Routes the server answers itself (not through the API core), as metrics labels.
const SERVER_ROUTES = new Set(["/", "/index.html", "/page.js", "/metrics"]);
const routeLabel = (path) => (hasOwn(ROUTES, path) || SERVER_ROUTES.has(path) ? path : path.startsWith("/bundle/") ? "/bundle/" : "other");

// Header objects -> flat [name, value, ...] arrays, built once per (shared, frozen) header
// object. writeHead reads the array synchronously, so one array per header object serves every
// response: content-length is pushed for the call and popped after it.
const flatHeaders = new WeakMap();
function headerArray(headers) {
  let flat = flatHeaders.get(headers);
  if (flat === undefined) {
    flat = [];
    for (const k of Object.keys(headers)) flat.push(k, headers[k]);
    flatHeaders.set(headers, flat);
  }
  return flat;
}

/** Write a whole answer: headers (+ content-length when there is a body) and body. */
function send(res, status, headers, body) {
  const flat = headerArray(headers);
  if (body != null) {
    flat.push("content-length", typeof body === "string" ? Buffer.byteLength(body) : body.length);
    try {
      res.writeHead(status, flat);
    } finally {
      flat.length -= 2;
    }
  } else {
    res.writeHead(status, flat);
  }
  res.end(body == null ? undefined : body);
}

/** Read at most `limit` + 1 bytes of the request body: { body: Buffer, over }. */
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
        req.pause();
        resolve({ body: null, over: true });
        return;
      }
      chunks.push(chunk);
    });
    req.on("end", () => { if (!over) resolve({ body: chunks.length === 1 ? chunks[0] : Buffer.concat(chunks), over: false }); });
    // A client that goes away mid-upload is its own problem, not a server error (no 500, no log).
    req.on("error", () => reject(new RequestError(null, "the request body was not received completely")));
  });
}

/**
 * The JSON error a malformed or oversized request head gets (Node's own answer is an empty 431
 * or 400), as the raw response for the socket.
 */
export function clientErrorResponse(err, maxHeaderSize) {
  let status = 400;
  let message = `malformed HTTP request (${err.code || "parse error"}: ${err.reason || err.message})`;
  if (err.code === "HPE_HEADER_OVERFLOW") {
    status = 431;
    message = `the request line and headers are larger than the limit of ${maxHeaderSize} bytes; send a shorter URL or fewer headers (POST the row as JSON)`;
  } else if (err.code === "ERR_HTTP_REQUEST_TIMEOUT") {
    status = 408;
    message = "the request was not received in time";
  }
  const body = JSON.stringify({ error: message, field: null });
  return { status, text: `HTTP/1.1 ${status} ${http.STATUS_CODES[status]}\r\ncontent-type: application/json\r\ncache-control: no-store\r\naccess-control-allow-origin: *\r\ncontent-length: ${Buffer.byteLength(body)}\r\nconnection: close\r\n\r\n${body}` };
}

/**
 * An http.Server answering through `api`. Options: metrics ({observe}), serveOwn(method, path) ->
 * a result or null (the server's own GET routes: page, bundle files, /metrics), maxBodyBytes,
 * maxHeaderSize (request line + headers; past it: 431 with a JSON body).
 */
export function createHttpServer(api, { metrics = null, serveOwn = null, maxBodyBytes = api.maxBodyBytes, maxHeaderSize = 16384 } = {}) {
  async function onRequest(req, res) {
    const t0 = performance.now();
    const method = req.method;
    let route = "other";
    let result = null;
    let over = false;
    try {
      const target = req.url;
      const q = target.indexOf("?");
      let p = q < 0 ? target : target.slice(0, q);
      let query = q < 0 ? "" : target.slice(q + 1);
      if (!hasOwn(ROUTES, p) || target.includes("#")) {
        // Not a plain route: normalise as the Fetch adapter's URL does ("/a/../predict", "%2e"...).
        const url = new URL(`http://localhost${target.startsWith("/") ? target : "/" + target}`);
        p = url.pathname;
        query = url.search.slice(1);
      }
      route = routeLabel(p);
      if (serveOwn && (method === "GET" || method === "HEAD") && !hasOwn(ROUTES, p)) result = await serveOwn(method, p);
      if (!result) {
        let body = null;
        if (method !== "GET" && method !== "HEAD" && method !== "OPTIONS") ({ body, over } = await readNodeBody(req, maxBodyBytes));
        result = await api.handle({ method, path: p, query, body, bodyTooLarge: over, headers: req.headers, remote: req.socket.remoteAddress });
      }
    } catch (e) {
      result = api.fail(e);
    }
    try {
      if (over) res.shouldKeepAlive = false; // do not read the rest of an oversized upload
      send(res, result.status, result.headers, result.body);
      if (over) res.on("finish", () => req.destroy());
    } catch (e) {
      console.error("server error:", e);
      res.destroy();
    }
    if (metrics) metrics.observe(route, method, result.status, (performance.now() - t0) / 1000, result.status === 200 ? result.rows : 0);
  }

  const server = http.createServer({ keepAlive: true, requestTimeout: 30000, headersTimeout: 20000, maxHeaderSize }, onRequest);
  server.keepAliveTimeout = 65000;
  server.on("clientError", (err, socket) => {
    // A request already in the handler (e.g. a client gone mid-upload) is answered and counted
    // there; a reset or closed socket gets nothing.
    if (err.code === "ECONNRESET" || !socket.writable || socket._httpMessage) {
      socket.destroy();
      return;
    }
    const { status, text } = clientErrorResponse(err, maxHeaderSize);
    socket.end(text);
    if (metrics) metrics.observe("other", "-", status, 0, 0);
  });
  return server;
}
