// Model kinds: manifest.kind -> an async factory building a predictor from a loaded bundle.
// Two kinds ship: "tfjs-graph" (tfjs.js) and "lightgbm-json" (lightgbm.js).
//
// A predictor is { kind, inputWidth, outputWidth, predict(rows: Float64Array[], width) ->
// Promise<number[][]>, dispose() }: one array of model outputs per row (multiclass: one
// probability per label; binary: [P(label[1])] or, if the model emits two columns,
// [P(label[0]), P(label[1])]). The handler refuses a bundle whose feature spec width is not the
// predictor's inputWidth (null: unknown).
//
// To add a kind, write src/models/<kind>.js exporting an async factory `(bundle) => predictor`
// and add it to FACTORIES below (or call registerModelKind at start-up).
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
