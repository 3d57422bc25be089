// The feature spec of FORMAT.md ("kit-feature-spec/1"): raw request fields -> model input vector.
// Runtime-neutral: no Node, DOM or platform APIs.
import { RequestError, BundleError } from "./errors.js";

export const FEATURE_SPEC_FORMAT = "kit-feature-spec/1";

// Strict decimal / exponent notation only: no hex, no "Infinity", no "NaN", no whitespace, no "".
const NUMBER_RE = /^[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?$/;

const hasOwn = (obj, key) => Object.prototype.hasOwnProperty.call(obj, key);
const isFiniteNumber = (v) => typeof v === "number" && Number.isFinite(v);
const describe = (v) => (typeof v === "string" ? JSON.stringify(v.length > 40 ? v.slice(0, 40) + "…" : v) : Array.isArray(v) ? "an array" : v === null ? "null" : typeof v === "object" ? "an object" : String(v));

/**
 * Parse a numeric raw value. `value` is a JS number, or (when `numericStrings`) a string in
 * strict decimal notation. Returns a finite number or throws RequestError.
 */
export function parseNumber(field, value, { numericStrings = true } = {}) {
  if (typeof value === "number") {
    if (Number.isNaN(value)) throw new RequestError(field, `field "${field}" is NaN; send a finite number`);
    if (!Number.isFinite(value)) throw new RequestError(field, `field "${field}" is infinite; send a finite number`);
    return value;
  }
  if (typeof value === "string" && numericStrings) {
    if (!NUMBER_RE.test(value)) throw new RequestError(field, `field "${field}" must be a number, got ${describe(value)}`);
    const n = Number(value);
    if (!Number.isFinite(n)) throw new RequestError(field, `field "${field}" is out of the range of a double: ${describe(value)}`);
    return n;
  }
  throw new RequestError(field, `field "${field}" must be a number, got ${typeof value === "string" ? "the string " + describe(value) : describe(value)}`);
}

function fail(where, message) {
  throw new BundleError(`feature spec: ${where}: ${message}`);
}

function checkNumber(where, v, what) {
  if (!isFiniteNumber(v)) fail(where, `${what} must be a finite number, got ${JSON.stringify(v)}`);
  return v;
}

function compileMissing(where, kind, missing) {
  const fallback = kind === "numeric" ? { strategy: "error" } : { strategy: "oov" };
  const m = missing == null ? fallback : missing;
  if (typeof m !== "object" || Array.isArray(m)) fail(where, `"missing" must be an object`);
  const allowed = kind === "numeric" ? ["fill", "nan", "error"] : ["oov", "error"];
  if (!allowed.includes(m.strategy)) fail(where, `missing strategy ${JSON.stringify(m.strategy)} is not one of ${allowed.join(", ")}`);
  if (m.strategy === "fill") checkNumber(where, m.value, "missing.value");
  return m;
}

function compileNumericTransform(where, t) {
  const tr = t == null ? { type: "identity" } : t;
  switch (tr.type) {
    case "identity":
      return { columns: 1, write: (x, out, o) => { out[o] = x; } };
    case "standardize": {
      const mean = checkNumber(where, tr.mean, "standardize.mean");
      const std = checkNumber(where, tr.std, "standardize.std");
      if (!(std > 0)) fail(where, `standardize.std must be > 0, got ${std}`);
      return { columns: 1, write: (x, out, o) => { out[o] = (x - mean) / std; } };
    }
    case "minmax": {
      const a = checkNumber(where, tr.min, "minmax.min");
      const b = checkNumber(where, tr.max, "minmax.max");
      if (!(b !== a)) fail(where, `minmax.max must differ from minmax.min (${a})`);
      return { columns: 1, write: (x, out, o) => { out[o] = (x - a) / (b - a); } };
    }
    case "bucketize": {
      const bs = tr.boundaries;
      if (!Array.isArray(bs)) fail(where, `bucketize.boundaries must be an array`);
      bs.forEach((b, i) => {
        checkNumber(where, b, `bucketize.boundaries[${i}]`);
        if (i > 0 && b < bs[i - 1]) fail(where, `bucketize.boundaries must be sorted ascending`);
      });
      const boundaries = Float64Array.from(bs);
      const bucket = (x) => {
        let i = 0; // number of boundaries <= x
        while (i < boundaries.length && boundaries[i] <= x) i++;
        return i;
      };
      if (tr.output === "index") {
        return { columns: 1, write: (x, out, o) => { out[o] = Number.isNaN(x) ? NaN : bucket(x); } };
      }
      if (tr.output === "one_hot") {
        return { columns: boundaries.length + 1, write: (x, out, o) => { if (!Number.isNaN(x)) out[o + bucket(x)] = 1; } };
      }
      return fail(where, `bucketize.output must be "index" or "one_hot", got ${JSON.stringify(tr.output)}`);
    }
    default:
      return fail(where, `unknown numeric transform type ${JSON.stringify(tr.type)}`);
  }
}

function compileCategoricalTransform(where, tr) {
  if (tr == null || tr.type !== "vocabulary") fail(where, `categorical inputs need a transform of type "vocabulary"`);
  if (!Array.isArray(tr.values)) fail(where, `vocabulary.values must be an array`);
  const index = new Map();
  tr.values.forEach((v, i) => {
    if (typeof v !== "string") fail(where, `vocabulary.values[${i}] must be a string, got ${JSON.stringify(v)}`);
    if (index.has(v)) fail(where, `vocabulary.values has ${JSON.stringify(v)} twice`);
    index.set(v, i);
  });
  const oov = tr.values.length;
  const lookup = (s) => (s === null ? oov : index.has(s) ? index.get(s) : oov);
  if (tr.output === "index") return { columns: 1, write: (s, out, o) => { out[o] = lookup(s); } };
  if (tr.output === "one_hot") return { columns: oov + 1, write: (s, out, o) => { out[o + lookup(s)] = 1; } };
  return fail(where, `vocabulary.output must be "index" or "one_hot", got ${JSON.stringify(tr.output)}`);
}

/**
 * Compile a feature spec object. Throws BundleError for an invalid spec.
 * Returns { width, columnNames, inputs, transformRow(raw, opts) -> Float64Array }.
 *
 * transformRow options:
 *   rejectOutOfRange (default false): a present numeric value outside its `range` is an error.
 *   numericStrings (default true): numeric fields may be strings in strict decimal notation
 *     (GET query values). The handler turns this off for JSON bodies, where a numeric field
 *     must be a JSON number.
 */
export function compileSpec(spec) {
  if (spec == null || typeof spec !== "object" || Array.isArray(spec)) fail("root", "must be a JSON object");
  if (spec.format !== FEATURE_SPEC_FORMAT) fail("root", `format must be ${JSON.stringify(FEATURE_SPEC_FORMAT)}, got ${JSON.stringify(spec.format)}`);
  if (!Array.isArray(spec.inputs) || spec.inputs.length === 0) fail("root", `"inputs" must be a non-empty array`);

  const seen = new Set();
  const steps = [];
  const columnNames = [];
  let width = 0;
  spec.inputs.forEach((inp, i) => {
    const where = `inputs[${i}]`;
    if (inp == null || typeof inp !== "object") fail(where, "must be an object");
    const name = inp.name;
    if (typeof name !== "string" || name === "") fail(where, `"name" must be a non-empty string`);
    if (seen.has(name)) fail(where, `input name ${JSON.stringify(name)} appears twice`);
    seen.add(name);
    const w = `${where} (${name})`;
    let step;
    if (inp.kind === "numeric") {
      const missing = compileMissing(w, "numeric", inp.missing);
      let range = null;
      if (inp.range != null) {
        const min = inp.range.min == null ? -Infinity : checkNumber(w, inp.range.min, "range.min");
        const max = inp.range.max == null ? Infinity : checkNumber(w, inp.range.max, "range.max");
        if (min > max) fail(w, `range.min ${min} > range.max ${max}`);
        range = { min, max };
      }
      const t = compileNumericTransform(w, inp.transform);
      step = { name, kind: "numeric", missing, range, ...t };
    } else if (inp.kind === "categorical") {
      const missing = compileMissing(w, "categorical", inp.missing);
      const t = compileCategoricalTransform(w, inp.transform);
      step = { name, kind: "categorical", missing, range: null, ...t };
    } else {
      fail(w, `kind must be "numeric" or "categorical", got ${JSON.stringify(inp.kind)}`);
    }
    step.offset = width;
    width += step.columns;
    if (step.columns === 1) columnNames.push(name);
    else for (let c = 0; c < step.columns; c++) columnNames.push(`${name}[${c}]`);
    steps.push(step);
  });
  const names = new Set(steps.map((s) => s.name));

  function transformRow(raw, { rejectOutOfRange = false, numericStrings = true } = {}) {
    if (raw == null || typeof raw !== "object" || Array.isArray(raw)) {
      throw new RequestError(null, `a row must be a JSON object of field values, got ${describe(raw)}`);
    }
    for (const key of Object.keys(raw)) {
      if (!names.has(key)) throw new RequestError(key, `unknown field "${key}"; expected fields: ${[...names].join(", ")}`);
    }
    const out = new Float64Array(width);
    for (const s of steps) {
      const present = hasOwn(raw, s.name);
      const v = present ? raw[s.name] : undefined;
      const missing = v === undefined || v === null || v === "";
      if (s.kind === "numeric") {
        let x;
        if (missing) {
          if (s.missing.strategy === "fill") x = s.missing.value;
          else if (s.missing.strategy === "nan") x = NaN;
          else throw new RequestError(s.name, `field "${s.name}" is missing`);
        } else {
          x = parseNumber(s.name, v, { numericStrings });
          if (rejectOutOfRange && s.range && (x < s.range.min || x > s.range.max)) {
            throw new RequestError(s.name, `field "${s.name}" = ${x} is out of range [${s.range.min}, ${s.range.max}]`);
          }
        }
        s.write(x, out, s.offset);
      } else {
        let str;
        if (missing) {
          if (s.missing.strategy === "error") throw new RequestError(s.name, `field "${s.name}" is missing`);
          str = null; // out of vocabulary
        } else if (typeof v === "string") {
          str = v;
        } else if (typeof v === "number" && Number.isFinite(v)) {
          str = String(v); // shortest round-trip decimal form: 3 -> "3", 1.5 -> "1.5"
        } else {
          throw new RequestError(s.name, `field "${s.name}" must be a string (or a number used as an id), got ${describe(v)}`);
        }
        s.write(str, out, s.offset);
      }
    }
    return out;
  }

  return {
    width,
    columnNames,
    inputs: steps.map((s) => ({ name: s.name, kind: s.kind })),
    transformRow,
  };
}
