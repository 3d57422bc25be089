// The browser page: loads the edge bundle from /bundle/ and runs the same handler and
// predictor code as the edge, entirely in the page. If the model cannot load, it calls a
// cloud endpoint that speaks the same /predict API (GET with query parameters).
import { fetchLoader, createHandlerFromLoader } from "../index.js";

const $ = (id) => document.getElementById(id);

function readConfig() {
  const el = document.getElementById("kit-config");
  let injected = {};
  if (el) {
    try { injected = JSON.parse(el.textContent) || {}; } catch { injected = {}; }
  }
  const q = new URLSearchParams(location.search);
  return {
    bundleUrl: q.get("bundle") || injected.bundleUrl || "bundle/",
    fallbackUrl: q.get("fallback") || injected.fallbackUrl || null,
  };
}

/** The fallback URL may name the service root or its /predict endpoint. */
function fallbackEndpoints(raw) {
  const u = new URL(raw, location.href);
  const base = u.pathname.replace(/\/+$/, "").replace(/\/predict$/, "");
  return { predict: `${u.origin}${base}/predict`, metadata: `${u.origin}${base}/metadata`, shown: u.href };
}

async function getJson(url) {
  const res = await fetch(url, { headers: { accept: "application/json" } });
  if (!res.ok) throw new Error(`${url}: HTTP ${res.status}`);
  return res.json();
}

function defaultValue(input, specInput) {
  const s = specInput || {};
  if (s.kind === "categorical") {
    const values = s.transform && s.transform.values;
    return values && values.length ? values[0] : "";
  }
  if (input.type === "string") return "";
  if (s.missing && s.missing.strategy === "fill" && Number.isFinite(s.missing.value)) return s.missing.value;
  const r = input.range || s.range;
  if (r && Number.isFinite(r.min) && Number.isFinite(r.max)) return +((r.min + r.max) / 2).toPrecision(6);
  const t = s.transform || {};
  if (t.type === "standardize" && Number.isFinite(t.mean)) return t.mean;
  if (t.type === "minmax") return (t.min + t.max) / 2;
  return 0;
}

function renderForm(inputs, spec, onChange) {
  const form = $("inputs");
  form.textContent = "";
  const specByName = new Map(((spec && spec.inputs) || []).map((i) => [i.name, i]));
  for (const input of inputs) {
    const s = specByName.get(input.name);
    const label = document.createElement("label");
    label.htmlFor = `input-${input.name}`;
    label.textContent = input.name;
    const el = document.createElement("input");
    el.id = `input-${input.name}`;
    el.name = input.name;
    const numeric = input.type !== "string" && !(s && s.kind === "categorical");
    if (numeric) {
      el.type = "number";
      el.step = "any";
      if (input.range && Number.isFinite(input.range.min)) el.min = input.range.min;
      if (input.range && Number.isFinite(input.range.max)) el.max = input.range.max;
    } else {
      el.type = "text";
      const values = s && s.transform && s.transform.values;
      if (values) {
        const list = document.createElement("datalist");
        list.id = `values-${input.name}`;
        for (const v of values) { const o = document.createElement("option"); o.value = v; list.append(o); }
        form.append(list);
        el.setAttribute("list", list.id);
      }
    }
    el.value = String(defaultValue(input, s));
    el.addEventListener("input", onChange);
    const hint = document.createElement("span");
    hint.className = "hint";
    hint.textContent = input.range ? `${input.range.min} – ${input.range.max}` : "";
    form.append(label, el, hint);
  }
}

function currentQuery(inputs) {
  const q = new URLSearchParams();
  for (const input of inputs) {
    const el = document.getElementById(`input-${input.name}`);
    if (el && el.value !== "") q.append(input.name, el.value);
  }
  return q.toString();
}

function showAnswer(answer, query, source, detail) {
  const pred = $("prediction");
  pred.textContent = answer.prediction;
  pred.dataset.query = query;
  const table = $("probabilities");
  table.textContent = "";
  table.dataset.probabilities = JSON.stringify(answer.probabilities);
  for (const [label, p] of Object.entries(answer.probabilities)) {
    const tr = document.createElement("tr");
    const name = document.createElement("td");
    name.textContent = label;
    const num = document.createElement("td");
    num.className = "num";
    num.textContent = p.toFixed(4);
    const barCell = document.createElement("td");
    const bar = document.createElement("div");
    bar.className = "bar";
    bar.style.width = `${Math.max(0, Math.min(1, p)) * 100}%`;
    barCell.append(bar);
    tr.append(name, num, barCell);
    table.append(tr);
  }
  showSource(source, detail);
  $("error").textContent = "";
}

function showSource(source, detail) {
  const el = $("source");
  el.textContent = source;
  el.className = source;
  $("source-detail").textContent = detail;
}

function showError(message, query) {
  $("error").textContent = message;
  const pred = $("prediction");
  pred.textContent = "";
  pred.dataset.query = query ?? "";
  $("probabilities").textContent = "";
}

async function main() {
  const config = readConfig();
  const fallback = config.fallbackUrl ? fallbackEndpoints(config.fallbackUrl) : null;

  let local = null;
  let localError = null;
  try {
    local = await createHandlerFromLoader(fetchLoader(config.bundleUrl));
  } catch (e) {
    localError = e;
    console.warn("in-page model did not load:", e);
  }

  let manifest = null;
  let spec = null;
  if (local) {
    manifest = local.bundle.manifest;
    spec = local.bundle.spec;
  } else {
    if (!fallback) {
      document.body.dataset.state = "error";
      $("model").textContent = "no model";
      showSource("none", "");
      showError(`The model could not be loaded in the page (${localError.message}) and no cloud fallback is configured (?fallback=URL).`);
      return;
    }
    // Describe the inputs: from the fallback service's /metadata, else from the (unverified) bundle files.
    try {
      manifest = await getJson(fallback.metadata);
    } catch {
      try {
        manifest = await getJson(new URL("manifest.json", new URL(config.bundleUrl.replace(/\/?$/, "/"), location.href)).href);
      } catch { manifest = null; }
    }
    if (!manifest || !Array.isArray(manifest.inputs)) {
      document.body.dataset.state = "error";
      showSource("fallback", `cloud fallback: ${fallback.shown}`);
      showError(`The model could not be loaded in the page (${localError.message}) and the fallback ${fallback.shown} did not describe its inputs.`);
      return;
    }
  }

  const model = manifest.model || {};
  $("model").textContent = `${model.name ?? "model"} v${model.version ?? "?"} · ${manifest.task ?? ""} · ${local ? "running in this page" : "running in the cloud"}`;
  const inputs = manifest.inputs;
  const localDetail = "in-page model";
  const fallbackDetail = `cloud fallback: ${fallback ? fallback.shown : ""}${localError ? ` (in-page model unavailable: ${localError.message})` : ""}`;

  let seq = 0;
  async function predict() {
    const mine = ++seq;
    const query = currentQuery(inputs);
    document.body.dataset.pending = "1";
    let source = local ? "local" : "fallback";
    let status;
    let body;
    try {
      if (local) {
        const res = await local(new Request(`http://in-page/predict?${query}`));
        status = res.status;
        body = await res.json();
        if (status >= 500 && fallback) source = "fallback"; // the in-page model failed: ask the cloud
      }
      if (source === "fallback") {
        const res = await fetch(`${fallback.predict}?${query}`, { headers: { accept: "application/json" } });
        status = res.status;
        body = await res.json();
      }
    } catch (e) {
      status = 0;
      body = { error: `${source === "local" ? "in-page model" : "cloud fallback"} failed: ${e.message}` };
    }
    if (mine !== seq) return; // a newer edit is in flight
    document.body.dataset.pending = "0";
    if (status === 200) showAnswer(body, query, source, source === "local" ? localDetail : fallbackDetail);
    else {
      showSource(source, source === "local" ? localDetail : fallbackDetail);
      showError(body && body.error ? `${body.error}${body.field ? ` (field: ${body.field})` : ""}` : `HTTP ${status}`, query);
    }
    document.body.dataset.state = "ready";
  }

  let timer = null;
  const onChange = () => {
    clearTimeout(timer);
    timer = setTimeout(predict, 60);
  };
  renderForm(inputs, spec, onChange);
  showSource(local ? "local" : "fallback", local ? localDetail : fallbackDetail);
  await predict();
}

main().catch((e) => {
  document.body.dataset.state = "error";
  showError(`page error: ${e.message}`);
});
