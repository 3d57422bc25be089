import test from "node:test";
import assert from "node:assert/strict";
import http from "node:http";
import net from "node:net";
import { spawnSync } from "node:child_process";
import { bundleFiles, writeBundle } from "../test-support/fixtures.js";
import { startServerProcess, SERVER } from "../test-support/proc.js";

const dir = writeBundle(bundleFiles());

/** A raw HTTP request (no URL normalisation, unlike fetch). */
function raw(url, { method = "GET", path = "/", headers = {}, body } = {}) {
  const u = new URL(url);
  return new Promise((resolve, reject) => {
    const req = http.request({ host: u.hostname, port: u.port, method, path, headers, agent: false }, (res) => {
      const chunks = [];
      res.on("data", (c) => chunks.push(c));
      res.on("end", () => resolve({ status: res.statusCode, headers: res.headers, text: Buffer.concat(chunks).toString() }));
    });
    req.on("error", reject);
    if (body) req.write(body);
    req.end();
  });
}

test("server.js: predict, metadata, page, bundle files, limits, shutdown", async (t) => {
  const srv = await startServerProcess(["--bundle", dir, "--port", "0", "--fallback-url", "https://cloud.test/predict</script>", "--max-body-bytes", "2000"]);
  t.after(() => srv.stop("SIGKILL"));
  assert.match(srv.url, /^http:\/\/127\.0\.0\.1:\d+$/);
  assert.ok(!srv.url.endsWith(":0"));

  const r = await fetch(`${srv.url}/predict?a=1&b=0&c=2&d=x`);
  assert.equal(r.status, 200);
  assert.equal(r.headers.get("access-control-allow-origin"), "*");
  const body = await r.json();
  assert.equal(body.model.name, "fixture-multiclass");
  assert.ok(["red", "green", "blue"].includes(body.prediction));

  const p = await fetch(`${srv.url}/predict`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ rows: [{ b: 0 }, { b: 1, d: "z" }] }) });
  assert.equal((await p.json()).predictions.length, 2);
  const bad = await fetch(`${srv.url}/predict?b=zz`);
  assert.deepEqual([bad.status, (await bad.json()).field], [400, "b"]);
  assert.equal((await fetch(`${srv.url}/metadata`)).status, 200);
  assert.equal((await fetch(`${srv.url}/nothing`)).status, 404);

  // Oversized body: 413, connection closed, server still fine.
  const big = await raw(srv.url, { method: "POST", path: "/predict", headers: { "content-type": "application/json" }, body: "[" + " ".repeat(100000) + "]" });
  assert.equal(big.status, 413);
  assert.equal((await fetch(`${srv.url}/health`)).status, 200);

  // The page, with the fallback URL injected safely.
  const page = await fetch(`${srv.url}/`);
  assert.match(page.headers.get("content-type"), /text\/html/);
  const html = await page.text();
  assert.match(html, /<script id="kit-config" type="application\/json">\{"fallbackUrl":"https:\/\/cloud\.test\/predict\\u003c\/script>"/);
  assert.ok(!html.includes("cloud.test/predict</script>"));

  // Bundle files: only what the manifest lists, never anything else.
  const mj = await fetch(`${srv.url}/bundle/model/model.json`);
  assert.equal(mj.status, 200);
  assert.equal((await fetch(`${srv.url}/bundle/manifest.json`)).status, 200);
  for (const path of ["/bundle/../package.json", "/bundle/..%2fpackage.json", "/bundle/%2e%2e/%2e%2e/etc/passwd", "/bundle//etc/passwd", "/bundle/model/", "/bundle/model%2fmodel.json/..", "/bundle/nothing.json"]) {
    const res = await raw(srv.url, { path });
    assert.equal(res.status, 404, path);
    assert.ok(!res.text.includes('"name": "kit-edge-runtime"'));
  }

  // Junk request targets do not crash the server.
  assert.equal((await raw(srv.url, { method: "OPTIONS", path: "*" })).status >= 400, true);
  assert.equal((await fetch(`${srv.url}/health`)).status, 200);

  // Clean shutdown on SIGTERM.
  const exit = await srv.stop("SIGTERM");
  assert.deepEqual(exit, { code: 0, signal: null });
});

test("server.js: --no-bundle-in-page hides the bundle files", async (t) => {
  const srv = await startServerProcess(["--bundle", dir, "--port", "0", "--no-bundle-in-page"]);
  t.after(() => srv.stop("SIGKILL"));
  assert.equal((await fetch(`${srv.url}/bundle/manifest.json`)).status, 404);
  assert.equal((await fetch(`${srv.url}/predict?b=0`)).status, 200);
  assert.deepEqual(await srv.stop("SIGINT"), { code: 0, signal: null });
});

test("server.js: --reject-out-of-range", async (t) => {
  const srv = await startServerProcess(["--bundle", dir, "--port", "0", "--reject-out-of-range"]);
  t.after(() => srv.stop("SIGKILL"));
  const res = await fetch(`${srv.url}/predict?b=5`);
  assert.deepEqual([res.status, (await res.json()).field], [400, "b"]);
});

test("server.js: bad arguments and a corrupt bundle fail fast with a clear message", () => {
  const noBundle = spawnSync(process.execPath, [SERVER], { encoding: "utf8" });
  assert.equal(noBundle.status, 2);
  assert.match(noBundle.stderr, /--bundle DIR is required/);
  const files = bundleFiles();
  const shard = Buffer.from(files.get("model/group1-shard1of2.bin"));
  shard[3] ^= 0xff;
  files.set("model/group1-shard1of2.bin", shard);
  const corrupt = spawnSync(process.execPath, [SERVER, "--bundle", writeBundle(files), "--port", "0"], { encoding: "utf8" });
  assert.equal(corrupt.status, 1);
  assert.match(corrupt.stderr, /"model\/group1-shard1of2\.bin" does not match its sha256/);
});

/** Write raw bytes on a fresh socket and read the whole answer (the server closes it). */
function rawSocket(url, bytes) {
  const u = new URL(url);
  return new Promise((resolve, reject) => {
    const socket = net.connect(Number(u.port), u.hostname, () => socket.write(bytes));
    const chunks = [];
    socket.on("data", (c) => chunks.push(c));
    socket.on("end", () => resolve(Buffer.concat(chunks).toString()));
    socket.on("error", reject);
  });
}

function parseRaw(text) {
  const [head, body] = text.split("\r\n\r\n");
  return { status: Number(head.split(" ")[1]), head: head.toLowerCase(), body: JSON.parse(body) };
}

test("server.js: an oversized request line or header is a 431 with a JSON body naming the limit", async (t) => {
  const srv = await startServerProcess(["--bundle", dir, "--port", "0"]);
  t.after(() => srv.stop("SIGKILL"));
  const longUrl = parseRaw(await rawSocket(srv.url, `GET /predict?b=${"1".repeat(20000)} HTTP/1.1\r\nHost: x\r\n\r\n`));
  assert.equal(longUrl.status, 431);
  assert.match(longUrl.head, /content-type: application\/json/);
  assert.match(longUrl.body.error, /larger than the limit of 16384 bytes/);
  assert.equal(longUrl.body.field, null);
  const bigHeader = parseRaw(await rawSocket(srv.url, `GET /health HTTP/1.1\r\nHost: x\r\nX-Big: ${"a".repeat(17000)}\r\n\r\n`));
  assert.equal(bigHeader.status, 431);
  assert.match(bigHeader.body.error, /16384 bytes/);
  const junk = parseRaw(await rawSocket(srv.url, "GET /health HTTP/1.1\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"));
  assert.equal(junk.status, 400);
  assert.match(junk.body.error, /malformed HTTP request/);
  assert.equal((await fetch(`${srv.url}/health`)).status, 200);
});

test("server.js: GET /metrics counts what was sent, in Prometheus text format", async (t) => {
  const srv = await startServerProcess(["--bundle", dir, "--port", "0"]);
  t.after(() => srv.stop("SIGKILL"));
  for (let i = 0; i < 5; i++) await (await fetch(`${srv.url}/predict?b=0`)).text();
  for (let i = 0; i < 3; i++) await (await fetch(`${srv.url}/predict?b=zz`)).text();
  await (await fetch(`${srv.url}/predict`, { method: "POST", body: JSON.stringify([{ b: 0 }, { b: 1 }, { b: 0.5 }]) })).text();
  await (await fetch(`${srv.url}/nothing`)).text();
  const res = await fetch(`${srv.url}/metrics`);
  assert.match(res.headers.get("content-type"), /^text\/plain; version=0\.0\.4/);
  const text = await res.text();
  const value = (series) => {
    const line = text.split("\n").find((l) => l.startsWith(series + " "));
    return line === undefined ? undefined : Number(line.slice(series.length + 1));
  };
  assert.equal(value('kit_edge_requests_total{route="/predict",method="GET",status="200"}'), 5);
  assert.equal(value('kit_edge_requests_total{route="/predict",method="GET",status="400"}'), 3);
  assert.equal(value('kit_edge_requests_total{route="/predict",method="POST",status="200"}'), 1);
  assert.equal(value('kit_edge_requests_total{route="other",method="GET",status="404"}'), 1);
  assert.equal(value('kit_edge_request_errors_total{status="400"}'), 3);
  assert.equal(value("kit_edge_request_duration_seconds_count"), 10);
  assert.equal(value('kit_edge_batch_rows_bucket{le="1"}'), 5);
  assert.equal(value("kit_edge_batch_rows_count"), 6);
  assert.equal(value("kit_edge_batch_rows_sum"), 8);
  assert.equal(value('kit_edge_model_info{name="fixture-multiclass",version="7",kind="tfjs-graph"}'), 1);
  for (const line of text.split("\n").filter((l) => l && !l.startsWith("#"))) assert.match(line, /^[a-z_]+(\{[^}]*\})? [-+0-9.eInfa]+$/, line);
});

test("server.js: a client gone mid-upload is counted once as a 400, never a 500, and logs nothing", async (t) => {
  const srv = await startServerProcess(["--bundle", dir, "--port", "0"]);
  t.after(() => srv.stop("SIGKILL"));
  const u = new URL(srv.url);
  await new Promise((resolve) => {
    const socket = net.connect(Number(u.port), u.hostname, () => {
      socket.write('POST /predict HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n[{"b":');
      setTimeout(() => { socket.destroy(); resolve(); }, 200);
    });
  });
  await new Promise((resolve) => setTimeout(resolve, 200));
  const series = (await (await fetch(`${srv.url}/metrics`)).text()).split("\n").filter((l) => l.startsWith("kit_edge_requests_total"));
  assert.deepEqual(series, ['kit_edge_requests_total{route="/predict",method="POST",status="400"} 1']);
  assert.equal(srv.stderr(), "");
});
