"""Load from `wrk` (Debian's native HTTP load generator, installed by scripts/setup-system): the
one way the cloud_latency gate and benchmarks/serving.py measure a server, so their figures agree.
A Python load generator on the same 2 cores as the server distorts the figures; wrk does not
(much).

One wrk thread, `connections` keep-alive connections, POSTs cycling through `bodies`, either for
`seconds` or for exactly `requests` requests (a Lua `delay` hook stops each connection once
the total is reserved; the thread stops when the last answer arrives). The latency histogram
comes back at wrk's 1 µs resolution, so percentiles are computed here, with kit.stats
(nearest rank), not by wrk.
"""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path

from kit.stats import percentile

MARKER = "KIT-WRK "
_SCRIPT = r"""
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
local bodies = {%(bodies)s}
local limit = %(limit)d          -- 0: no limit (wrk's -d decides)
local reserved, sent, answered = 0, 0, 0
first_error = ""  -- a global: done() runs in another Lua state and reads it through thread:get
local threads = {}
setup = function(thread) threads[#threads + 1] = thread end
request = function()
  sent = sent + 1
  return wrk.format(nil, nil, nil, bodies[(sent - 1) %% #bodies + 1])
end
delay = function()
  if limit > 0 and reserved >= limit then return 100000000 end
  reserved = reserved + 1
  return 0
end
response = function(status, headers, body)
  answered = answered + 1
  if status ~= 200 and first_error == "" then first_error = "HTTP " .. status .. ": " .. string.sub(body, 1, 200) end
  if limit > 0 and answered == limit then  -- wrk runs for its -d anyway: ask run() for a SIGINT
    io.write("%(marker)sSTOP\n")
    io.stdout:flush()
  end
end
done = function(summary, latency, requests)
  local e = summary.errors
  local first = ""
  for _, thread in ipairs(threads) do
    if first == "" then first = thread:get("first_error") or "" end
  end
  local hist = {}
  for i = 1, #latency do
    local value, count = latency(i)
    hist[#hist + 1] = string.format("[%%d,%%d]", value, count)
  end
  io.write(string.format('%(marker)s{"requests":%%d,"duration_us":%%d,"errors":%%d,"status_errors":%%d,' ..
    '"first_error":%%q,"latency_us":[%%s]}\n', summary.requests, summary.duration,
    e.connect + e.read + e.write + e.status + e.timeout, e.status, first, table.concat(hist, ",")))
end
"""


def installed() -> str | None:
    return shutil.which("wrk")


def run(url: str, bodies: list[bytes], connections: int, *, requests: int | None = None,
        seconds: float | None = None, timeout_s: float = 10) -> dict:
    """One wrk run against POST `url`. Returns requests, errors, first_error, seconds,
    throughput_rps, latencies_ms (one per answered request), p50_ms, p99_ms (nearest rank)."""
    wrk = installed()
    if wrk is None:
        raise FileNotFoundError("wrk is not installed (scripts/setup-system installs it)")
    if (requests is None) == (seconds is None):
        raise ValueError("give requests or seconds")
    lua = _SCRIPT % {"bodies": ",".join(_lua_string(b) for b in bodies), "limit": requests or 0, "marker": MARKER}
    duration = seconds if seconds is not None else 600  # a cap: the script stops at `requests`
    with tempfile.TemporaryDirectory(prefix="kit-wrk-") as folder:
        script = Path(folder) / "post.lua"
        script.write_text(lua)
        started = time.perf_counter()
        process = subprocess.Popen([wrk, "-t1", f"-c{connections}", f"-d{max(1, round(duration))}s",
                                    f"--timeout={max(1, round(timeout_s))}s", "-s", str(script), url],
                                   stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        lines = []
        try:
            for output in process.stdout:
                if output.startswith(MARKER + "STOP"):
                    process.send_signal(signal.SIGINT)  # wrk then stops and reports, as after its -d
                    elapsed = time.perf_counter() - started
                else:
                    lines.append(output)
            process.wait(timeout=30)
        finally:
            if process.poll() is None:
                process.kill()
                process.wait()
    line = next((line for line in lines if line.startswith(MARKER)), None)
    if line is None:
        raise RuntimeError(f"wrk failed (exit {process.returncode}): {(process.stderr.read() or ''.join(lines))[-500:]}")
    result = json.loads(line[len(MARKER):])
    latencies = [value / 1000 for value, count in result["latency_us"] for _ in range(count)]
    # wrk's own duration is right for a timed run; a counted run is timed here, to its last
    # answer (wrk's start-up, a few ms, included).
    if seconds is not None:
        elapsed = result["duration_us"] / 1e6
    return {"requests": result["requests"], "errors": result["errors"], "first_error": result["first_error"],
            "seconds": elapsed, "throughput_rps": result["requests"] / elapsed if elapsed else 0.0,
            "latencies_ms": latencies, "p50_ms": percentile(latencies, 50), "p99_ms": percentile(latencies, 99)}


def _lua_string(body: bytes) -> str:
    text = body.decode("utf-8")
    level = "="
    while f"]{level}]" in text:
        level += "="
    return f"[{level}[{text}]{level}]"
