// Seeded mutations of a bundle's manifest.json and feature_spec.json for the start-up fuzz test:
// truncated files, wrong types, missing keys, bad hashes, huge numbers, odd strings.
import { createHash } from "node:crypto";

export function rng(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const sha = (b) => createHash("sha256").update(b).digest("hex");
const HUGE = "__HUGE__";
const ODD_VALUES = [null, true, false, 0, -1, 1.5, 2 ** 53 + 1, -1e308, 1e308, HUGE, "", "x", "1", "é\u0000\u202e", "a".repeat(5000), [], [null], {}, { a: 1 }, [[[[[]]]]]];

/** Every [parent, key] pair in a JSON value (objects and arrays), depth first. */
function slots(value, out = []) {
  if (value && typeof value === "object") {
    for (const key of Object.keys(value)) {
      out.push([value, key]);
      slots(value[key], out);
    }
  }
  return out;
}

function mutateJson(doc, rand) {
  const pick = (arr) => arr[Math.floor(rand() * arr.length)];
  const all = slots(doc);
  if (all.length === 0) return { doc: pick(ODD_VALUES), what: "replaced the document" };
  const [parent, key] = pick(all);
  const op = Math.floor(rand() * 4);
  if (op === 0) {
    if (Array.isArray(parent)) parent.splice(Number(key), 1);
    else delete parent[key];
    return { doc, what: `removed ${key}` };
  }
  if (op === 1) {
    parent[key] = pick(ODD_VALUES);
    return { doc, what: `set ${key} to ${JSON.stringify(parent[key])?.slice(0, 30)}` };
  }
  if (op === 2 && typeof parent[key] === "number") {
    parent[key] = pick([HUGE, -parent[key], parent[key] * 1e300, 0, Number.MAX_SAFE_INTEGER * 4]);
    return { doc, what: `changed number ${key}` };
  }
  if (op === 3 && typeof parent[key] === "string") {
    parent[key] = pick([parent[key].toUpperCase(), parent[key] + "x", "", parent[key].slice(1), parent[key].repeat(100)]);
    return { doc, what: `changed string ${key}` };
  }
  parent[`extra_${Math.floor(rand() * 100)}`] = pick(ODD_VALUES);
  return { doc, what: "added a key" };
}

const text = (doc) => JSON.stringify(doc, null, 2).replaceAll(`"${HUGE}"`, "1e999");

/**
 * Mutate `files` (Map path -> Buffer, from bundleFiles / lightgbmBundleFiles) in place.
 * Returns a description. Mutated feature specs are usually re-hashed into the manifest, so the
 * mutation reaches the spec's own checks instead of stopping at the hash.
 */
export function mutateBundle(files, rand) {
  const target = rand() < 0.5 ? "manifest.json" : "feature_spec.json";
  const original = files.get(target);
  let bytes;
  let what;
  const r = rand();
  if (r < 0.15) {
    const cut = Math.floor(rand() * original.length);
    bytes = original.subarray(0, cut);
    what = `truncated to ${cut} bytes`;
  } else if (r < 0.25 && target === "manifest.json") {
    const m = JSON.parse(original);
    const keys = Object.keys(m.files);
    const key = keys[Math.floor(rand() * keys.length)];
    m.files[key] = rand() < 0.5 ? sha(Buffer.from("other")) : "zz";
    bytes = Buffer.from(text(m));
    what = `bad hash for ${key}`;
  } else {
    const m = mutateJson(JSON.parse(original), rand);
    bytes = Buffer.from(text(m.doc));
    what = m.what;
  }
  files.set(target, bytes);
  if (target === "feature_spec.json" && rand() < 0.85) {
    const manifest = JSON.parse(files.get("manifest.json"));
    manifest.files["feature_spec.json"] = sha(bytes);
    files.set("manifest.json", Buffer.from(JSON.stringify(manifest, null, 2)));
  }
  return `${target}: ${what}`;
}
