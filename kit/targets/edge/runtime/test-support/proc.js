// Start src/node/server.js as a child process and wait for its "listening on" line.
import { spawn } from "node:child_process";
import { fileURLToPath } from "node:url";
import path from "node:path";

export const SERVER = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../src/node/server.js");

export function startServerProcess(args, { timeoutMs = 15000 } = {}) {
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    const child = spawn(process.execPath, [SERVER, ...args], { stdio: ["ignore", "pipe", "pipe"] });
    let out = "";
    let err = "";
    const timer = setTimeout(() => { child.kill("SIGKILL"); reject(new Error(`server did not start in ${timeoutMs} ms: ${err}`)); }, timeoutMs);
    child.stderr.on("data", (d) => { err += d; });
    child.stdout.on("data", (d) => {
      out += d;
      const m = out.match(/^listening on (http:\/\/\S+)$/m);
      if (m) {
        clearTimeout(timer);
        const exited = new Promise((r) => child.once("exit", (code, signal) => r({ code, signal })));
        resolve({
          child,
          url: m[1],
          startupMs: performance.now() - t0,
          stderr: () => err,
          exited,
          async stop(signal = "SIGTERM") { if (child.exitCode === null) child.kill(signal); return exited; },
        });
      }
    });
    child.on("exit", (code) => { clearTimeout(timer); reject(new Error(`server exited with ${code}: ${err}`)); });
  });
}
