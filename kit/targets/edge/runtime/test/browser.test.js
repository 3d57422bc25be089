// Browser smoke check of the page (headless Chromium via playwright-core, no browser download).
// Skipped unless KIT_TEST_BUNDLE=DIR is set and /usr/bin/chromium (or $KIT_CHROMIUM) exists.
import test from "node:test";
import assert from "node:assert/strict";
import { existsSync, cpSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { startServerProcess } from "../test-support/proc.js";

const DIR = process.env.KIT_TEST_BUNDLE;
const CHROMIUM = process.env.KIT_CHROMIUM || "/usr/bin/chromium";
const skip = !DIR ? "set KIT_TEST_BUNDLE=DIR to run the browser check" : !existsSync(CHROMIUM) ? `${CHROMIUM} not found` : false;

const ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic"];

async function launch() {
  const { chromium } = await import("playwright-core");
  return chromium.launch({ executablePath: CHROMIUM, args: ARGS, headless: true });
}

/** Read what the page shows once it has answered for its current inputs. */
async function pageAnswer(page) {
  await page.waitForFunction(() => document.body.dataset.state === "ready" && document.body.dataset.pending === "0", null, { timeout: 20000 });
  return page.evaluate(() => {
    const inputs = [...document.querySelectorAll("#inputs input")];
    const q = new URLSearchParams();
    for (const el of inputs) if (el.value !== "") q.append(el.name, el.value);
    const pred = document.querySelector("#prediction");
    return {
      query: q.toString(),
      answeredQuery: pred.dataset.query,
      prediction: pred.textContent,
      probabilities: JSON.parse(document.querySelector("#probabilities").dataset.probabilities || "null"),
      source: document.querySelector("#source").textContent,
      error: document.querySelector("#error").textContent,
    };
  });
}

function assertClose(got, want, what) {
  assert.deepEqual(Object.keys(got), Object.keys(want), what);
  for (const k of Object.keys(want)) assert.ok(Math.abs(got[k] - want[k]) < 1e-6, `${what} ${k}: ${got[k]} vs ${want[k]}`);
}

async function serverAnswer(url, query) {
  const res = await fetch(`${url}/predict?${query}`);
  assert.equal(res.status, 200);
  return res.json();
}

async function editFirstInput(page) {
  const first = page.locator("#inputs input").first();
  const value = Number(await first.inputValue());
  await first.fill(String(+(value * 1.1 + 0.05).toFixed(3)));
  await page.waitForFunction(() => {
    const q = new URLSearchParams();
    for (const el of document.querySelectorAll("#inputs input")) if (el.value !== "") q.append(el.name, el.value);
    return document.querySelector("#prediction").dataset.query === q.toString() && document.body.dataset.pending === "0";
  }, null, { timeout: 10000 });
}

test("browser page: in-page model, then cloud fallback", { skip, timeout: 90000 }, async (t) => {
  const browser = await launch();
  t.after(() => browser.close());
  const external = [];

  // 1. The page loads the bundle and predicts in the page.
  const good = await startServerProcess(["--bundle", DIR, "--port", "0"]);
  t.after(() => good.stop("SIGKILL"));
  const page = await browser.newPage();
  page.on("request", (r) => { if (!r.url().startsWith(good.url) && !r.url().startsWith("data:")) external.push(r.url()); });
  const consoleErrors = [];
  page.on("pageerror", (e) => consoleErrors.push(String(e)));
  await page.goto(`${good.url}/`);
  let a = await pageAnswer(page);
  assert.equal(a.error, "");
  assert.equal(a.source, "local");
  assert.equal(a.answeredQuery, a.query);
  let want = await serverAnswer(good.url, a.query);
  assert.equal(a.prediction, want.prediction);
  assertClose(a.probabilities, want.probabilities, "local default inputs");
  await editFirstInput(page);
  a = await pageAnswer(page);
  want = await serverAnswer(good.url, a.query);
  assert.equal(a.source, "local");
  assert.equal(a.prediction, want.prediction);
  assertClose(a.probabilities, want.probabilities, "local edited inputs");
  assert.deepEqual(consoleErrors, []);

  // 2. The bundle is hidden from the page (404): it falls back to the good server.
  const hidden = await startServerProcess(["--bundle", DIR, "--port", "0", "--no-bundle-in-page", "--fallback-url", `${good.url}/predict`]);
  t.after(() => hidden.stop("SIGKILL"));
  const page2 = await browser.newPage();
  await page2.goto(`${hidden.url}/`);
  a = await pageAnswer(page2);
  assert.equal(a.source, "fallback");
  assert.equal(a.error, "");
  want = await serverAnswer(good.url, a.query);
  assert.equal(a.prediction, want.prediction);
  assertClose(a.probabilities, want.probabilities, "fallback");
  await editFirstInput(page2);
  a = await pageAnswer(page2);
  want = await serverAnswer(good.url, a.query);
  assert.equal(a.source, "fallback");
  assertClose(a.probabilities, want.probabilities, "fallback edited");

  // 3. A corrupt bundle (hash mismatch) served to the page, fallback given as ?fallback=.
  //    The server refuses corrupt bundles, so serve a good copy and corrupt the page's view of it
  //    by routing: the browser receives a flipped byte in the weights.
  const page3 = await browser.newPage();
  const manifest = JSON.parse(readFileSync(path.join(DIR, "manifest.json"), "utf8"));
  const shard = Object.keys(manifest.files).find((p) => p.endsWith(".bin"));
  await page3.route(`**/bundle/${shard}`, async (route) => {
    const res = await route.fetch();
    const body = Buffer.from(await res.body());
    body[0] ^= 0xff;
    await route.fulfill({ response: res, body });
  });
  await page3.goto(`${good.url}/?fallback=${encodeURIComponent(hidden.url)}`);
  a = await pageAnswer(page3);
  assert.equal(a.source, "fallback");
  const detail = await page3.textContent("#source-detail");
  assert.match(detail, /does not match its sha256/);
  want = await serverAnswer(hidden.url, a.query);
  assertClose(a.probabilities, want.probabilities, "fallback after hash mismatch");

  assert.deepEqual(external, [], "the page must not load anything from elsewhere");
});
