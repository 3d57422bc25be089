// A bundle loader over a folder on disk (Node only).
import { readFile } from "node:fs/promises";
import path from "node:path";
import { isSafeBundlePath } from "../bundle.js";
import { BundleError } from "../errors.js";

export function fsLoader(dir) {
  const root = path.resolve(dir);
  const resolve = (p) => {
    if (!isSafeBundlePath(p)) throw new BundleError(`unsafe bundle path ${JSON.stringify(p)}`);
    const full = path.resolve(root, ...p.split("/"));
    if (full !== root && !full.startsWith(root + path.sep)) throw new BundleError(`bundle path ${JSON.stringify(p)} leaves the bundle folder`);
    return full;
  };
  const bytes = async (p) => {
    const full = resolve(p);
    try {
      const buf = await readFile(full);
      return new Uint8Array(buf.buffer, buf.byteOffset, buf.byteLength);
    } catch (e) {
      throw new BundleError(`bundle file "${p}" cannot be read from ${root}: ${e.code || e.message}`);
    }
  };
  return {
    root,
    bytes,
    async json(p) {
      const b = await bytes(p);
      try {
        return JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(b));
      } catch (e) {
        throw new BundleError(`bundle file "${p}" is not valid JSON: ${e.message}`);
      }
    },
  };
}
