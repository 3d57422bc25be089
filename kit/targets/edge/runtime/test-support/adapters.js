// The two adapters of the API core, behind one test interface: make(options) -> { h(Request) ->
// Response, close() }. "fetch" calls the Fetch handler (browsers, Fastly, Cloudflare); "node"
// sends the same request over HTTP to the Node fast path (node:http, no Request/Response inside).
import { createHandler } from "../src/handler.js";
import { createApi } from "../src/api.js";
import { createHttpServer } from "../src/node/adapter.js";

async function fetchAdapter(options) {
  const h = createHandler(options);
  return { h, close: async () => {} };
}

async function nodeAdapter(options, serverOptions = {}) {
  const api = createApi(options);
  const server = createHttpServer(api, serverOptions);
  await new Promise((resolve) => server.listen(0, "127.0.0.1", resolve));
  const origin = `http://127.0.0.1:${server.address().port}`;
  /** Replay `request` against the server; { stream: true } sends its body chunked. */
  async function h(request, { stream = false } = {}) {
    const u = new URL(request.url);
    const init = { method: request.method, headers: request.headers };
    if (request.method !== "GET" && request.method !== "HEAD" && request.body) {
      if (stream) Object.assign(init, { body: request.body, duplex: "half" });
      else init.body = await request.arrayBuffer();
    }
    return fetch(origin + u.pathname + u.search, init);
  }
  async function close() {
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  }
  return { h, close, server, origin };
}

export const ADAPTERS = { fetch: fetchAdapter, node: nodeAdapter };
