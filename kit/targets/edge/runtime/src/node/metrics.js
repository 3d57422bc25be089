// Prometheus text exposition (format 0.0.4) for the Node server, written by hand: a few counters
// and two histograms do not need a library, and recording must cost next to nothing per request.

const LATENCY_BUCKETS = [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5];
const ROWS_BUCKETS = [1, 2, 5, 10, 20, 50, 100, 200, 500, 1000];

const escape = (v) => String(v).replace(/\\/g, "\\\\").replace(/"/g, '\\"').replace(/\n/g, "\\n");
const labels = (obj) => "{" + Object.entries(obj).map(([k, v]) => `${k}="${escape(v)}"`).join(",") + "}";
const fmt = (x) => (Number.isFinite(x) ? String(x) : x > 0 ? "+Inf" : x < 0 ? "-Inf" : "NaN");

class Histogram {
  constructor(bounds) {
    this.bounds = bounds;
    this.counts = new Float64Array(bounds.length + 1); // last: above every bound
    this.sum = 0;
    this.count = 0;
  }

  observe(x) {
    const b = this.bounds;
    let i = 0;
    while (i < b.length && x > b[i]) i++;
    this.counts[i]++;
    this.sum += x;
    this.count++;
  }

  render(name) {
    const lines = [];
    let cumulative = 0;
    this.bounds.forEach((le, i) => {
      cumulative += this.counts[i];
      lines.push(`${name}_bucket{le="${fmt(le)}"} ${cumulative}`);
    });
    lines.push(`${name}_bucket{le="+Inf"} ${this.count}`, `${name}_sum ${fmt(this.sum)}`, `${name}_count ${this.count}`);
    return lines;
  }
}

/**
 * Metrics of one server process. observe(route, method, status, seconds, rows) after each answer;
 * render() -> the text of GET /metrics. `model`: { name, version, kind }.
 */
export function createMetrics(model) {
  const requests = new Map(); // route -> method -> status -> count (no per-request key strings)
  const errors = new Map(); // status -> count
  const latency = new Histogram(LATENCY_BUCKETS);
  const batchRows = new Histogram(ROWS_BUCKETS);
  const started = Date.now() / 1000;

  function observe(route, method, status, seconds, rows) {
    let byMethod = requests.get(route);
    if (byMethod === undefined) requests.set(route, (byMethod = new Map()));
    let byStatus = byMethod.get(method);
    if (byStatus === undefined) byMethod.set(method, (byStatus = new Map()));
    byStatus.set(status, (byStatus.get(status) || 0) + 1);
    if (status >= 400) errors.set(status, (errors.get(status) || 0) + 1);
    latency.observe(seconds);
    if (rows > 0) batchRows.observe(rows);
  }

  function render() {
    const out = [
      "# HELP kit_edge_model_info The model this server serves (value is always 1).",
      "# TYPE kit_edge_model_info gauge",
      `kit_edge_model_info${labels({ name: model.name, version: model.version, kind: model.kind })} 1`,
      "# HELP kit_edge_start_time_seconds Start time of the server since the Unix epoch.",
      "# TYPE kit_edge_start_time_seconds gauge",
      `kit_edge_start_time_seconds ${started}`,
      "# HELP kit_edge_requests_total HTTP requests answered, by route, method and status.",
      "# TYPE kit_edge_requests_total counter",
    ];
    for (const [route, byMethod] of [...requests].sort()) {
      for (const [method, byStatus] of [...byMethod].sort()) {
        for (const [status, n] of [...byStatus].sort((a, b) => a[0] - b[0])) out.push(`kit_edge_requests_total${labels({ route, method, status })} ${n}`);
      }
    }
    out.push("# HELP kit_edge_request_errors_total HTTP answers with a 4xx or 5xx status, by status.", "# TYPE kit_edge_request_errors_total counter");
    for (const [status, n] of [...errors].sort((a, b) => a[0] - b[0])) out.push(`kit_edge_request_errors_total${labels({ status })} ${n}`);
    out.push("# HELP kit_edge_request_duration_seconds Time from the request's arrival to its answer.", "# TYPE kit_edge_request_duration_seconds histogram");
    out.push(...latency.render("kit_edge_request_duration_seconds"));
    out.push("# HELP kit_edge_batch_rows Rows per answered /predict request (1 for a single row).", "# TYPE kit_edge_batch_rows histogram");
    out.push(...batchRows.render("kit_edge_batch_rows"));
    return out.join("\n") + "\n";
  }

  /** After a reload: the model the server now serves. */
  function setModel(next) {
    model = next;
  }

  return { observe, render, setModel };
}
