// Building the browser page with esbuild (Node only; esbuild is a dev dependency).
import { readFile } from "node:fs/promises";
import { fileURLToPath } from "node:url";
import path from "node:path";

export const RUNTIME_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
export const PAGE_ENTRY = path.join(RUNTIME_ROOT, "src/browser/page.js");
export const PAGE_HTML = path.join(RUNTIME_ROOT, "src/browser/index.html");
export const DIST_DIR = path.join(RUNTIME_ROOT, "dist");

export const pageBuildOptions = {
  entryPoints: [PAGE_ENTRY],
  bundle: true,
  format: "esm",
  platform: "browser",
  target: ["es2020"],
  minify: true,
  legalComments: "none",
  logLevel: "silent",
};

/** Build page.js. With { outdir } writes files; otherwise returns the JS text. */
export async function buildPage({ outdir = null } = {}) {
  const esbuild = await import("esbuild");
  if (outdir) {
    await esbuild.build({ ...pageBuildOptions, outfile: path.join(outdir, "page.js") });
    return null;
  }
  const result = await esbuild.build({ ...pageBuildOptions, write: false, outfile: "page.js" });
  return result.outputFiles[0].text;
}

/** The page HTML with a config block injected (JSON, safe inside a <script> element). */
export async function pageHtml(config = {}) {
  const html = await readFile(PAGE_HTML, "utf8");
  const json = JSON.stringify(config).replace(/</g, "\\u003c").replace(/\u2028/g, "\\u2028").replace(/\u2029/g, "\\u2029");
  return html.replace("<!--KIT_CONFIG-->", `<script id="kit-config" type="application/json">${json}</script>`);
}
