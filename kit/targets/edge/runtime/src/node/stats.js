// The one latency percentile the kit reports (kit/stats.py has the Python twin of this rule).
//
// Nearest rank, no interpolation: the q-th percentile of n values is the ceil(q/100 * n)-th
// smallest (p99 of 2000 values is the 1980th), always a value that was measured -- the
// definition wrk's latency distribution reports.
export const DEFINITION = "nearest-rank percentile (no interpolation)";

export function percentile(values, q) {
  if (!(q >= 0 && q <= 100)) throw new RangeError(`percentile: q must be within [0, 100], got ${q}`);
  if (values.length === 0) return NaN;
  const sorted = Float64Array.from(values).sort();
  const rank = Math.max(1, Math.ceil((q / 100) * sorted.length));
  return sorted[rank - 1];
}
