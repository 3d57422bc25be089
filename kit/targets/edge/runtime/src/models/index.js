// Model kinds: manifest.kind -> an async factory building a predictor from a loaded bundle.
//
// A predictor is { kind, outputWidth, predict(rows: Float64Array[], width) -> Promise<number[][]> }:
// one array of model outputs per row (multiclass: one probability per label; binary: [P(label[1])]
// or, if the model emits two columns, [P(label[0]), P(label[1])]).
//
// To add a kind (e.g. "lightgbm-json"), write src/models/<kind>.js exporting an async factory
// `(bundle) => predictor` and add it to FACTORIES below (or call registerModelKind at start-up).
import { BundleError } from "../errors.js";

const FACTORIES = new Map([
  // Loaded lazily so that a bundle of another kind never pays for TF.js.
  ["tfjs-graph", async (bundle) => (await import("./tfjs.js")).createTfjsPredictor(bundle)],
  ["lightgbm-json", async (bundle) => (await import("./lightgbm.js")).createLightgbmPredictor(bundle)],
]);

export function registerModelKind(kind, factory) {
  FACTORIES.set(kind, factory);
}

export function modelKinds() {
  return [...FACTORIES.keys()];
}

export async function createPredictor(bundle) {
  const kind = bundle.manifest.kind;
  const factory = FACTORIES.get(kind);
  if (!factory) {
    throw new BundleError(`unknown model kind ${JSON.stringify(kind)} in manifest.json; this runtime supports: ${modelKinds().join(", ")}`);
  }
  return factory(bundle);
}
