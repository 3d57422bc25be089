// Node-only helpers.
export { fsLoader } from "./fsLoader.js";
export { startServer } from "./server.js";
export { percentile } from "./stats.js";
