// "tfjs-graph" model kind: a TF.js graph model (tensorflowjs convert_tf_saved_model output),
// loaded from verified in-memory bytes: no network, no file system.
import { tf, tfReady } from "./tfjs_env.js"; // first: sets up globals before any TF.js module loads
import { loadGraphModel } from "@tensorflow/tfjs-converter";
import { BundleError } from "../errors.js";
import { bundleJson } from "../bundle.js";

const MODEL_JSON = "model/model.json";

function normalizeShardPath(p) {
  const parts = [];
  for (const seg of String(p).split("/")) {
    if (seg === "" || seg === ".") continue;
    if (seg === "..") throw new BundleError(`${MODEL_JSON}: weight path ${JSON.stringify(p)} leaves the model folder`);
    parts.push(seg);
  }
  return "model/" + parts.join("/");
}

/** Build tf.io ModelArtifacts from model/model.json and its shards (concatenated in manifest order). */
export function modelArtifacts(bundle) {
  const mj = bundleJson(bundle, MODEL_JSON);
  if (mj == null || typeof mj !== "object" || mj.modelTopology == null) {
    throw new BundleError(`${MODEL_JSON} is not a TF.js graph model (no modelTopology)`);
  }
  const groups = Array.isArray(mj.weightsManifest) ? mj.weightsManifest : [];
  const weightSpecs = [];
  const shards = [];
  for (const group of groups) {
    for (const p of group.paths || []) {
      const path = normalizeShardPath(p);
      const bytes = bundle.modelFiles.get(path);
      if (!bytes) throw new BundleError(`${MODEL_JSON} needs weight shard "${path}", which is not listed in manifest.json files`);
      shards.push(bytes);
    }
    weightSpecs.push(...(group.weights || []));
  }
  const total = shards.reduce((n, b) => n + b.byteLength, 0);
  const weightData = new Uint8Array(total);
  let off = 0;
  for (const b of shards) { weightData.set(b, off); off += b.byteLength; }

  const artifacts = { modelTopology: mj.modelTopology, weightSpecs, weightData: weightData.buffer };
  for (const key of ["format", "generatedBy", "convertedBy", "signature", "userDefinedMetadata", "modelInitializer", "initializerSignature", "trainingConfig"]) {
    if (mj[key] !== undefined) artifacts[key] = mj[key];
  }
  return artifacts;
}

/** Input width from the signature, if it says (-1 / unknown -> null). */
function signatureTensor(signature, side, name) {
  const tensors = signature?.[side];
  if (tensors == null || typeof tensors !== "object") return undefined;
  return Object.prototype.hasOwnProperty.call(tensors, name) ? tensors[name] : Object.values(tensors).find((t) => t && (t.name === name || t.name === `${name}:0`));
}

function signatureWidth(signature, input) {
  const info = signatureTensor(signature, "inputs", input);
  const dims = info?.tensorShape?.dim;
  if (!Array.isArray(dims) || dims.length !== 2) return null;
  const w = Number(dims[1].size);
  return Number.isInteger(w) && w > 0 ? w : null;
}

export async function createTfjsPredictor(bundle) {
  const { manifest } = bundle;
  const io = manifest.tfjs;
  if (io == null || typeof io.input !== "string" || typeof io.output !== "string") {
    throw new BundleError(`manifest.json: a tfjs-graph bundle needs "tfjs": {"input": ..., "output": ...}`);
  }
  await tfReady();
  const artifacts = modelArtifacts(bundle);
  let model;
  try {
    model = await loadGraphModel(tf.io.fromMemory(artifacts));
  } catch (e) {
    throw new BundleError(`cannot load ${MODEL_JSON} as a TF.js graph model: ${e.message}`);
  }
  const signature = model.signature ?? artifacts.signature;
  for (const [side, name] of [["inputs", io.input], ["outputs", io.output]]) {
    if (signature && !signatureTensor(signature, side, name)) {
      throw new BundleError(`manifest.json: tfjs.${side.slice(0, -1)} ${JSON.stringify(name)} is not one of the ${side} of ${MODEL_JSON} (${Object.keys(signature[side] || {}).join(", ")})`);
    }
  }
  const expectedWidth = signatureWidth(signature, io.input);
  let useAsync = false;

  async function run(data, n, width) {
    const input = tf.tensor2d(data, [n, width], "float32");
    let out;
    try {
      if (!useAsync) {
        try {
          out = model.execute({ [io.input]: input }, io.output);
        } catch (e) {
          // Graphs with control flow / dynamic ops can only run asynchronously.
          if (!/executeAsync/.test(String(e && e.message))) throw e;
          useAsync = true;
        }
      }
      if (useAsync) out = await model.executeAsync({ [io.input]: input }, io.output);
      if (Array.isArray(out)) throw new BundleError(`tfjs output ${JSON.stringify(io.output)} names more than one tensor`);
      const shape = out.shape;
      const k = shape.length === 1 ? 1 : shape.length === 2 ? shape[1] : -1;
      if (k < 1 || shape[0] !== n) throw new BundleError(`model output has shape [${shape}], expected [${n}, k]`);
      const values = out.dataSync(); // Float32Array
      const result = new Array(n);
      for (let i = 0; i < n; i++) {
        const row = new Array(k);
        for (let j = 0; j < k; j++) row[j] = values[i * k + j];
        result[i] = row;
      }
      return result;
    } finally {
      input.dispose();
      if (out && !Array.isArray(out)) out.dispose();
      else if (Array.isArray(out)) out.forEach((t) => t.dispose());
    }
  }

  const predictor = {
    kind: "tfjs-graph",
    inputWidth: expectedWidth,
    outputWidth: null,
    /** rows: array of Float64Array(width) -> Promise<number[][]> (float32 outputs as JS numbers). */
    async predict(rows, width) {
      const n = rows.length;
      if (n === 0) return [];
      if (expectedWidth != null && width !== expectedWidth) {
        throw new BundleError(`the feature spec yields ${width} columns but the model expects ${expectedWidth}`);
      }
      const data = new Float32Array(n * width);
      for (let i = 0; i < n; i++) data.set(rows[i], i * width);
      return run(data, n, width);
    },
    dispose() { model.dispose(); },
    model,
  };

  // Warm up once (first execution compiles kernels and checks the graph) and learn the output width.
  if (expectedWidth != null) {
    let probe;
    try {
      probe = await predictor.predict([new Float64Array(expectedWidth)], expectedWidth);
    } catch (e) {
      throw new BundleError(`${MODEL_JSON} does not run with the inputs manifest.json names (tfjs ${JSON.stringify(io)}): ${e.message}`);
    }
    predictor.outputWidth = probe[0].length;
  }
  return predictor;
}
