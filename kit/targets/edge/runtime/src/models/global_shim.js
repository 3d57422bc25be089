// tfjs-core looks for its global object as window, global, process or self (not globalThis) when
// it is first imported. Some edge runtimes have none of these; give them `self`.
// Must be imported before @tensorflow/tfjs-core.
if (typeof window === "undefined" && typeof global === "undefined" && typeof process === "undefined" && typeof self === "undefined") {
  globalThis.self = globalThis;
}
