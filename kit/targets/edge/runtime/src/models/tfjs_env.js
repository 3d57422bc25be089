// TF.js set-up shared by every runtime: tfjs-core + the CPU backend, nothing else.
import "./global_shim.js"; // first: tfjs-core needs a global object when it loads
import * as tf from "@tensorflow/tfjs-core";
import "@tensorflow/tfjs-backend-cpu";

// tfjs-core registers a platform (fetch, clock, text codecs) only in browsers and Node.
// Fetch-API edge runtimes (Fastly Compute, Cloudflare Workers) are neither, so give them a
// neutral one built from web-standard globals.
class NeutralPlatform {
  fetch(path, init) { return globalThis.fetch(path, init); }
  now() { return globalThis.performance && typeof globalThis.performance.now === "function" ? globalThis.performance.now() : Date.now(); }
  encode(text, encoding) {
    if (encoding !== "utf-8" && encoding !== "utf8") throw new Error(`only utf-8 is supported, got ${encoding}`);
    return new TextEncoder().encode(text);
  }
  decode(bytes, encoding) { return new TextDecoder(encoding).decode(bytes); }
  isTypedArray(a) {
    return a instanceof Float32Array || a instanceof Int32Array || a instanceof Uint8Array || a instanceof Uint8ClampedArray;
  }
}

if (tf.env().platform == null) tf.env().setPlatform("kit-neutral", new NeutralPlatform());

// Production mode: no debug checks, and no "install tfjs-node" banner in Node (tfjs-node needs a
// native add-on, which this runtime deliberately avoids).
tf.enableProdMode();

let ready = null;

/** Resolve to the tfjs-core namespace once the CPU backend is active. */
export function tfReady() {
  if (!ready) {
    ready = (async () => {
      const ok = await tf.setBackend("cpu");
      if (!ok) throw new Error("could not initialise the TF.js CPU backend");
      await tf.ready();
      return tf;
    })();
    ready.catch(() => { ready = null; });
  }
  return ready;
}

export { tf };
