"""The one latency percentile the kit reports, in gates and benchmarks alike.

Nearest rank, no interpolation: the p-th percentile of n values is the ceil(p/100 * n)-th
smallest (p99 of 2000 values is the 1980th). It is always a value that was measured, and it
is the definition wrk's latency distribution reports. The edge runtime's JavaScript uses the
same rule (`percentile` in kit/targets/edge/runtime/src/node/stats.js). Every report that
prints a percentile names this definition (`DEFINITION`).
"""

from __future__ import annotations

import math
from collections.abc import Iterable

DEFINITION = "nearest-rank percentile (no interpolation)"


def percentile(values: Iterable[float], q: float) -> float:
    """Nearest-rank percentile of `values` (any order), `q` in [0, 100]; NaN for no values."""
    if not 0 <= q <= 100:
        raise ValueError(f"percentile: q must be within [0, 100], got {q}")
    ordered = sorted(values)
    if not ordered:
        return math.nan
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return float(ordered[rank - 1])
