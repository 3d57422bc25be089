// Loading and verifying an edge bundle ("kit-edge-bundle/1"). Runtime-neutral.
import { BundleError } from "./errors.js";
import { sha256Hex } from "./sha256.js";

export const BUNDLE_FORMAT = "kit-edge-bundle/1";
export const TASKS = ["binary", "multiclass"];

const utf8 = new TextDecoder("utf-8", { fatal: true });

/**
 * A bundle-relative path is safe when it is relative, uses "/" separators and has no
 * empty, "." or ".." segments. Every loader refuses anything else.
 */
export function isSafeBundlePath(path) {
  if (typeof path !== "string" || path === "" || path.length > 1024) return false;
  if (path.startsWith("/") || path.includes("\\") || path.includes("\0") || /^[a-zA-Z]:/.test(path)) return false;
  return path.split("/").every((seg) => seg !== "" && seg !== "." && seg !== "..");
}

function checkPath(path) {
  if (!isSafeBundlePath(path)) throw new BundleError(`unsafe bundle path ${JSON.stringify(path)}`);
}

function parseJson(path, bytes) {
  let text;
  try {
    text = utf8.decode(bytes);
  } catch {
    throw new BundleError(`bundle file "${path}" is not valid UTF-8`);
  }
  try {
    return JSON.parse(text);
  } catch (e) {
    throw new BundleError(`bundle file "${path}" is not valid JSON: ${e.message}`);
  }
}

function validateManifest(m) {
  const bad = (msg) => { throw new BundleError(`manifest.json: ${msg}`); };
  if (m == null || typeof m !== "object" || Array.isArray(m)) bad("must be a JSON object");
  if (m.format !== BUNDLE_FORMAT) bad(`format must be ${JSON.stringify(BUNDLE_FORMAT)}, got ${JSON.stringify(m.format)}`);
  if (m.model == null || typeof m.model !== "object" || typeof m.model.name !== "string") bad(`"model" must be {"name", "version"}`);
  if (typeof m.model.version !== "string" && typeof m.model.version !== "number") bad(`"model.version" must be a string`);
  if (typeof m.kind !== "string" || m.kind === "") bad(`"kind" must be a non-empty string`);
  if (!TASKS.includes(m.task)) bad(`"task" must be one of ${TASKS.join(", ")}, got ${JSON.stringify(m.task)}`);
  if (!Array.isArray(m.labels) || m.labels.length < 2 || !m.labels.every((l) => typeof l === "string")) bad(`"labels" must be an array of at least 2 strings`);
  if (new Set(m.labels).size !== m.labels.length) bad(`"labels" has duplicates`);
  if (m.task === "binary" && m.labels.length !== 2) bad(`a binary task needs exactly 2 labels, got ${m.labels.length}`);
  if (!Array.isArray(m.inputs)) bad(`"inputs" must be an array`);
  if (m.files == null || typeof m.files !== "object" || Array.isArray(m.files)) bad(`"files" must be an object {path: sha256}`);
  if (!("feature_spec.json" in m.files)) bad(`"files" must list feature_spec.json`);
  for (const [path, hash] of Object.entries(m.files)) {
    if (!isSafeBundlePath(path) || path === "manifest.json") bad(`"files" has an invalid path ${JSON.stringify(path)}`);
    if (typeof hash !== "string" || !/^[0-9a-fA-F]{64}$/.test(hash)) bad(`"files"["${path}"] is not a sha256 hex digest`);
  }
}

/**
 * Load a bundle through `loader` ({ json(path), bytes(path) }): read manifest.json, check the
 * format, fetch every file listed in manifest.files and verify its sha256. A bundle whose files
 * do not match is refused with an Error naming the file.
 *
 * Returns { manifest, spec, modelFiles } where modelFiles maps each path under model/
 * (relative to the bundle root, e.g. "model/model.json") to its verified bytes.
 */
export async function loadBundle(loader) {
  let manifest;
  try {
    manifest = await loader.json("manifest.json");
  } catch (e) {
    throw new BundleError(`cannot read bundle file "manifest.json": ${e.message}`);
  }
  validateManifest(manifest);

  const entries = Object.entries(manifest.files);
  const verified = new Map();
  await Promise.all(entries.map(async ([path, expected]) => {
    let bytes;
    try {
      bytes = await loader.bytes(path);
    } catch (e) {
      throw new BundleError(`cannot read bundle file "${path}": ${e.message}`);
    }
    const actual = await sha256Hex(bytes);
    if (actual !== expected.toLowerCase()) {
      throw new BundleError(`bundle file "${path}" does not match its sha256 in manifest.json (expected ${expected.toLowerCase()}, got ${actual}); refusing to load the bundle`);
    }
    verified.set(path, bytes);
  }));

  const spec = parseJson("feature_spec.json", verified.get("feature_spec.json"));
  const modelFiles = new Map();
  for (const [path] of entries) if (path.startsWith("model/")) modelFiles.set(path, verified.get(path));
  return { manifest, spec, modelFiles, files: verified };
}

/** Parse a verified JSON file of a loaded bundle. */
export function bundleJson(bundle, path) {
  const bytes = bundle.files?.get(path) ?? bundle.modelFiles.get(path);
  if (!bytes) throw new BundleError(`bundle file "${path}" is not listed in manifest.json files`);
  return parseJson(path, bytes);
}

function toBytes(value, path) {
  if (value instanceof Uint8Array) return value;
  if (value instanceof ArrayBuffer) return new Uint8Array(value);
  if (ArrayBuffer.isView(value)) return new Uint8Array(value.buffer, value.byteOffset, value.byteLength);
  if (typeof value === "string") return new TextEncoder().encode(value);
  throw new BundleError(`bundle file "${path}" has an unsupported in-memory value`);
}

/**
 * A loader over files held in memory: `files` is a Map or an object path -> Uint8Array |
 * ArrayBuffer | string (UTF-8 text). Used by the single-file deployables.
 */
export function memoryLoader(files) {
  const map = files instanceof Map ? files : new Map(Object.entries(files));
  const get = (path) => {
    checkPath(path);
    if (!map.has(path)) throw new BundleError(`bundle file "${path}" not found`);
    return toBytes(map.get(path), path);
  };
  return {
    async bytes(path) { return get(path); },
    async json(path) { return parseJson(path, get(path)); },
  };
}

/**
 * A loader that fetches files under `baseUrl` (absolute, or relative to the page in a browser).
 * Options: { fetch } to use another fetch function.
 */
export function fetchLoader(baseUrl, { fetch: fetchFn = globalThis.fetch } = {}) {
  let base = String(baseUrl);
  if (!base.endsWith("/")) base += "/";
  const here = globalThis.location && globalThis.location.href;
  const root = here ? new URL(base, here) : new URL(base);
  const get = async (path) => {
    checkPath(path);
    const url = new URL(path, root);
    const res = await fetchFn(url.href);
    if (!res.ok) throw new BundleError(`bundle file "${path}" could not be fetched from ${url.href}: HTTP ${res.status}`);
    return new Uint8Array(await res.arrayBuffer());
  };
  return {
    async bytes(path) { return get(path); },
    async json(path) { return parseJson(path, await get(path)); },
  };
}
