#!/usr/bin/env node
// npm run build: dist/index.html + dist/page.js (the browser page, self-contained; it loads the
// bundle from bundle/ next to it, or ?bundle=URL, and falls back to ?fallback=URL).
import { mkdir, writeFile } from "node:fs/promises";
import path from "node:path";
import { buildPage, pageHtml, DIST_DIR } from "../src/node/pageBuild.js";

const outdir = process.argv[2] ? path.resolve(process.argv[2]) : DIST_DIR;
await mkdir(outdir, { recursive: true });
await buildPage({ outdir });
await writeFile(path.join(outdir, "index.html"), await pageHtml({}));
console.log(`wrote ${path.join(outdir, "index.html")} and page.js`);
