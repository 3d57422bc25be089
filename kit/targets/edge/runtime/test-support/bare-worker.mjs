// Run a built worker.js in a bare V8 context holding only web-standard globals (no process,
// Buffer, require: like Fastly Compute or Cloudflare Workers) and print its answers as JSON.
//   node --experimental-vm-modules test-support/bare-worker.mjs OUTDIR/worker.js QUERY
import vm from "node:vm";
import fs from "node:fs";

const [file, query] = process.argv.slice(2);
const ctx = vm.createContext({
  Request, Response, Headers, URL, URLSearchParams, TextEncoder, TextDecoder, atob, btoa, crypto, console,
  performance, ReadableStream, setTimeout, clearTimeout, queueMicrotask, structuredClone,
});
let listener = null;
ctx.addEventListener = (type, fn) => { if (type === "fetch") listener = fn; };
const mod = new vm.SourceTextModule(fs.readFileSync(file, "utf8"), { context: ctx });
await mod.link(() => { throw new Error("worker.js imports a module"); });
await mod.evaluate();
const viaDefault = await mod.namespace.default.fetch(new Request(`http://edge.test/predict?${query}`));
const event = { request: new Request(`http://edge.test/predict?${query}`), respondWith(p) { this.response = p; } };
listener(event);
const viaEvent = await event.response;
console.log(JSON.stringify({
  hasProcess: vm.runInContext("typeof process", ctx) !== "undefined",
  default: { status: viaDefault.status, body: await viaDefault.json() },
  event: { status: viaEvent.status, body: await viaEvent.json() },
}));
