// Public API of the runtime-neutral core (Node, browsers, Fastly Compute, Cloudflare Workers).
export { compileSpec, parseNumber, FEATURE_SPEC_FORMAT } from "./features.js";
export { RequestError, BundleError } from "./errors.js";
export { loadBundle, fetchLoader, memoryLoader, isSafeBundlePath, BUNDLE_FORMAT } from "./bundle.js";
export { sha256Hex } from "./sha256.js";
export { createPredictor, registerModelKind, modelKinds } from "./models/index.js";
export { createHandler, createHandlerFromLoader } from "./handler.js";
