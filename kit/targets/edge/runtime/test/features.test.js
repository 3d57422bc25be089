import test from "node:test";
import assert from "node:assert/strict";
import { compileSpec, parseNumber, RequestError, BundleError } from "../src/index.js";

const spec = (inputs) => ({ format: "kit-feature-spec/1", inputs });
const num = (extra = {}) => ({ name: "x", kind: "numeric", ...extra });
const one = (input, raw, opts) => Array.from(compileSpec(spec([input])).transformRow(raw, opts));

function rejects(fn, field, re) {
  assert.throws(fn, (e) => {
    assert.ok(e instanceof RequestError, `expected RequestError, got ${e}`);
    assert.equal(e.field, field);
    assert.equal(e.status, 400);
    if (re) assert.match(e.message, re);
    return true;
  });
}

test("identity, standardize, minmax", () => {
  assert.deepEqual(one(num({ transform: { type: "identity" } }), { x: 2.5 }), [2.5]);
  assert.deepEqual(one(num(), { x: -3 }), [-3], "no transform means identity");
  assert.deepEqual(one(num({ transform: { type: "standardize", mean: 5.84, std: 0.82 } }), { x: 5.1 }), [(5.1 - 5.84) / 0.82]);
  assert.deepEqual(one(num({ transform: { type: "minmax", min: 4.3, max: 7.9 } }), { x: 5.1 }), [(5.1 - 4.3) / (7.9 - 4.3)]);
  assert.deepEqual(one(num({ transform: { type: "minmax", min: 0, max: 10 } }), { x: 20 }), [2], "minmax does not clip");
});

test("bucketize index and one_hot: bucket = number of boundaries <= x", () => {
  const idx = num({ transform: { type: "bucketize", boundaries: [0, 1, 2], output: "index" } });
  const cases = [[-5, 0], [-0.0001, 0], [0, 1], [0.5, 1], [1, 2], [1.999, 2], [2, 3], [100, 3]];
  for (const [x, want] of cases) assert.deepEqual(one(idx, { x }), [want], `x=${x}`);
  const oh = num({ transform: { type: "bucketize", boundaries: [0, 1, 2], output: "one_hot" } });
  assert.deepEqual(one(oh, { x: -1 }), [1, 0, 0, 0]);
  assert.deepEqual(one(oh, { x: 1 }), [0, 0, 1, 0]);
  assert.deepEqual(one(oh, { x: 2 }), [0, 0, 0, 1]);
  const dup = num({ transform: { type: "bucketize", boundaries: [1, 1, 2], output: "index" } });
  assert.deepEqual(one(dup, { x: 1 }), [2], "repeated boundaries both count");
  const empty = num({ transform: { type: "bucketize", boundaries: [], output: "one_hot" } });
  assert.deepEqual(one(empty, { x: 3 }), [1]);
});

test("bucketize with NaN (strategy nan): index NaN, one_hot all zero", () => {
  const idx = num({ missing: { strategy: "nan" }, transform: { type: "bucketize", boundaries: [0, 1], output: "index" } });
  assert.ok(Number.isNaN(one(idx, {})[0]));
  const oh = num({ missing: { strategy: "nan" }, transform: { type: "bucketize", boundaries: [0, 1], output: "one_hot" } });
  assert.deepEqual(one(oh, { x: null }), [0, 0, 0]);
});

test("numeric missing strategies: fill, nan, error (default); absent, null and empty string are missing", () => {
  const fill = num({ missing: { strategy: "fill", value: 5.8 }, transform: { type: "standardize", mean: 5.8, std: 2 } });
  for (const raw of [{}, { x: null }, { x: "" }, { x: undefined }]) assert.deepEqual(one(fill, raw), [0]);
  const nan = num({ missing: { strategy: "nan" }, transform: { type: "standardize", mean: 1, std: 2 } });
  assert.ok(Number.isNaN(one(nan, {})[0]));
  assert.ok(Number.isNaN(one(nan, { x: "" })[0]));
  rejects(() => one(num({ missing: { strategy: "error" } }), {}), "x", /missing/);
  rejects(() => one(num(), { x: null }), "x", /missing/);
  rejects(() => one(num(), { x: "" }), "x", /missing/);
});

test("fill values are not range-checked and out-of-range passes unless rejecting", () => {
  const r = num({ missing: { strategy: "fill", value: 100 }, range: { min: 0, max: 10 } });
  assert.deepEqual(one(r, {}, { rejectOutOfRange: true }), [100]);
  assert.deepEqual(one(r, { x: 11 }), [11]);
  rejects(() => one(r, { x: 11 }, { rejectOutOfRange: true }), "x", /out of range/);
  rejects(() => one(r, { x: -0.5 }, { rejectOutOfRange: true }), "x", /out of range/);
  assert.deepEqual(one(r, { x: 0 }, { rejectOutOfRange: true }), [0], "inclusive min");
  assert.deepEqual(one(r, { x: 10 }, { rejectOutOfRange: true }), [10], "inclusive max");
  const half = num({ range: { min: 0 } });
  assert.deepEqual(one(half, { x: 1e300 }, { rejectOutOfRange: true }), [1e300]);
  rejects(() => one(half, { x: -1 }, { rejectOutOfRange: true }), "x");
});

test("strict number parsing of strings (GET query values)", () => {
  const ok = { "5.1": 5.1, "-3": -3, "+2": 2, "0": 0, "1e3": 1000, "1E-2": 0.01, ".5": 0.5, "5.": 5, "-0.0": -0, "007": 7, "1e-999": 0 };
  for (const [s, want] of Object.entries(ok)) assert.equal(parseNumber("x", s), want, s);
  for (const s of ["abc", "NaN", "Infinity", "-Infinity", "1e999", "-1e999", "0x10", "0b1", "0o7", " 5", "5 ", "1,5", "1_000", "5e", "e5", ".", "-", "+", "1.2.3", "١٢"]) {
    assert.throws(() => parseNumber("x", s), RequestError, JSON.stringify(s));
  }
  rejects(() => one(num(), { x: "1e999" }), "x", /range of a double/);
  rejects(() => one(num(), { x: "0x10" }), "x", /must be a number/);
  assert.deepEqual(one(num(), { x: "5.1" }), [5.1]);
});

test("JS numbers: NaN and ±Infinity are errors; other types are errors", () => {
  rejects(() => one(num(), { x: NaN }), "x", /NaN/);
  rejects(() => one(num(), { x: Infinity }), "x", /infinite/);
  rejects(() => one(num(), { x: -Infinity }), "x", /infinite/);
  for (const bad of [true, false, [], [1], {}, { v: 1 }]) rejects(() => one(num(), { x: bad }), "x", /must be a number/);
});

test("numericStrings: false (JSON bodies) refuses numeric strings", () => {
  rejects(() => one(num(), { x: "5.1" }, { numericStrings: false }), "x", /string/);
  assert.deepEqual(one(num(), { x: 5.1 }, { numericStrings: false }), [5.1]);
  const fill = num({ missing: { strategy: "fill", value: 1 } });
  assert.deepEqual(one(fill, { x: "" }, { numericStrings: false }), [1], "empty string is still missing");
});

test("categorical vocabulary: index, one_hot, OOV bucket, numbers as ids", () => {
  const values = ["desktop", "mobile", "tablet"];
  const idx = { name: "x", kind: "categorical", transform: { type: "vocabulary", values, output: "index" } };
  assert.deepEqual(one(idx, { x: "mobile" }), [1]);
  assert.deepEqual(one(idx, { x: "tv" }), [3]);
  assert.deepEqual(one(idx, { x: "Mobile" }), [3], "case-sensitive");
  assert.deepEqual(one(idx, {}), [3], "missing -> OOV by default");
  assert.deepEqual(one(idx, { x: null }), [3]);
  assert.deepEqual(one(idx, { x: "" }), [3]);
  const oh = { name: "x", kind: "categorical", transform: { type: "vocabulary", values, output: "one_hot" } };
  assert.deepEqual(one(oh, { x: "tablet" }), [0, 0, 1, 0]);
  assert.deepEqual(one(oh, { x: "other" }), [0, 0, 0, 1]);
  const ids = { name: "x", kind: "categorical", transform: { type: "vocabulary", values: ["3", "1.5", "10"], output: "index" } };
  assert.deepEqual(one(ids, { x: 3 }), [0], "3 -> \"3\"");
  assert.deepEqual(one(ids, { x: 3.0 }), [0], "3.0 is the same JS number");
  assert.deepEqual(one(ids, { x: 1.5 }), [1]);
  assert.deepEqual(one(ids, { x: 1e1 }), [2]);
  assert.deepEqual(one(ids, { x: "3.0" }), [3], "strings are not normalised");
  const err = { ...idx, missing: { strategy: "error" } };
  rejects(() => one(err, {}), "x", /missing/);
  rejects(() => one(err, { x: "" }), "x", /missing/);
  assert.deepEqual(one(err, { x: "nope" }), [3], "unknown values are OOV, not errors");
  for (const bad of [true, {}, [], NaN, Infinity]) rejects(() => one(idx, { x: bad }), "x", /string/);
});

test("multiple inputs concatenate in order; width and column names", () => {
  const c = compileSpec(spec([
    { name: "a", kind: "numeric", transform: { type: "identity" } },
    { name: "dev", kind: "categorical", transform: { type: "vocabulary", values: ["p", "q"], output: "one_hot" } },
    { name: "b", kind: "numeric", transform: { type: "bucketize", boundaries: [1], output: "one_hot" } },
  ]));
  assert.equal(c.width, 6);
  assert.deepEqual(c.columnNames, ["a", "dev[0]", "dev[1]", "dev[2]", "b[0]", "b[1]"]);
  assert.deepEqual(Array.from(c.transformRow({ a: 7, dev: "q", b: 3 })), [7, 0, 1, 0, 0, 1]);
  assert.ok(c.transformRow({ a: 1, b: 1 }) instanceof Float64Array);
});

test("unknown fields are errors, including prototype names", () => {
  const c = compileSpec(spec([num({ missing: { strategy: "fill", value: 0 } })]));
  rejects(() => c.transformRow({ x: 1, y: 2 }), "y", /unknown field/);
  rejects(() => c.transformRow(JSON.parse('{"__proto__": 1}')), "__proto__", /unknown/);
  rejects(() => c.transformRow({ constructor: 1 }), "constructor", /unknown/);
  assert.deepEqual(Array.from(c.transformRow({})), [0], "inherited properties are not fields");
  assert.throws(() => c.transformRow(null), RequestError);
  assert.throws(() => c.transformRow([1]), RequestError);
  assert.throws(() => c.transformRow("x"), RequestError);
});

test("the first failing field is reported in spec order", () => {
  const c = compileSpec(spec([num({ name: "a" }), num({ name: "b" })]));
  rejects(() => c.transformRow({ b: "bad" }), "a", /missing/);
});

test("invalid specs are BundleErrors", () => {
  const bad = [
    null,
    { format: "other", inputs: [num()] },
    { format: "kit-feature-spec/1", inputs: [] },
    spec([num(), num()]),
    spec([{ name: "x", kind: "text" }]),
    spec([num({ transform: { type: "log" } })]),
    spec([num({ transform: { type: "standardize", mean: 0, std: 0 } })]),
    spec([num({ transform: { type: "standardize", mean: "1", std: 1 } })]),
    spec([num({ transform: { type: "minmax", min: 1, max: 1 } })]),
    spec([num({ transform: { type: "bucketize", boundaries: [2, 1], output: "index" } })]),
    spec([num({ transform: { type: "bucketize", boundaries: [1], output: "ordinal" } })]),
    spec([num({ missing: { strategy: "oov" } })]),
    spec([num({ missing: { strategy: "fill" } })]),
    spec([num({ range: { min: 2, max: 1 } })]),
    spec([{ name: "x", kind: "categorical" }]),
    spec([{ name: "x", kind: "categorical", transform: { type: "vocabulary", values: ["a", "a"], output: "index" } }]),
    spec([{ name: "x", kind: "categorical", transform: { type: "vocabulary", values: [1], output: "index" } }]),
    spec([{ name: "x", kind: "categorical", missing: { strategy: "fill", value: 0 }, transform: { type: "vocabulary", values: [], output: "index" } }]),
  ];
  for (const s of bad) assert.throws(() => compileSpec(s), BundleError, JSON.stringify(s));
});

test("the FORMAT.md example spec", () => {
  const c = compileSpec({
    format: "kit-feature-spec/1",
    inputs: [
      { name: "sepal_length", kind: "numeric", missing: { strategy: "fill", value: 5.8 }, range: { min: 4.3, max: 7.9 }, transform: { type: "standardize", mean: 5.84, std: 0.82 } },
      { name: "device", kind: "categorical", missing: { strategy: "oov" }, transform: { type: "vocabulary", values: ["desktop", "mobile", "tablet"], output: "one_hot" } },
    ],
  });
  assert.equal(c.width, 5);
  assert.deepEqual(Array.from(c.transformRow({ sepal_length: "5.84", device: "tablet" })), [0, 0, 0, 1, 0]);
  assert.deepEqual(Array.from(c.transformRow({})), [(5.8 - 5.84) / 0.82, 0, 0, 0, 1]);
});
