"""The prediction log, for A/B analysis: one JSON line per predicted row, in
DIR/predictions-YYYY-MM-DD.jsonl (UTC dates).

A request only appends its raw bytes to a deque (no JSON parsing, no I/O, never a lock wait);
a writer thread turns them into one record per row and writes them, flushing at least every
`flush_every` seconds and on close. If the writer falls `max_pending` requests behind, newer
requests are dropped from the log (counted, and reported on stderr) rather than slowing
serving or growing memory without bound. Nothing is lost silently: every request not recorded
(writer behind, or the disk refusing a write) is counted in `dropped`, said on stderr (the
server's own log) and exposed in the cloud server's /metrics.

    df = read_predictions("mlruns/predictions/iris-classifier-champion")
    df.groupby("version")["latency_ms"].describe()
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import sys
import threading
import time
from collections import deque
from pathlib import Path
from typing import Any, Literal

FILE_PATTERN = "predictions-*.jsonl"
INPUT_MODES = ("full", "hash")


class PredictionLog:
    def __init__(self, folder: Path, inputs: Literal["full", "hash"] = "full", flush_every: float = 0.5,
                 max_pending: int = 100_000):
        if inputs not in INPUT_MODES:
            raise ValueError(f"inputs={inputs!r}; use one of {INPUT_MODES}")
        self.folder, self.inputs, self.flush_every, self.max_pending = Path(folder), inputs, flush_every, max_pending
        self.folder.mkdir(parents=True, exist_ok=True)
        self.dropped = 0
        self.written = 0
        self._pending: deque[tuple] = deque()
        self._wake = threading.Event()
        self._closed = False
        self._file = None
        self._day = ""
        self._thread = threading.Thread(target=self._run, name="kit-prediction-log", daemon=True)
        self._thread.start()

    def submit(self, when: float, model: str, version: str, request_id: str, latency_ms: float, status: int,
               body: bytes, answer: bytes) -> None:
        """Queue one answered request (`when`: Unix time it arrived). Never blocks."""
        if len(self._pending) >= self.max_pending:
            self.dropped += 1
            return
        self._pending.append((when, model, version, request_id, latency_ms, status, body, answer))

    def close(self) -> None:
        """Write everything queued, then stop the writer."""
        self._closed = True
        self._wake.set()
        self._thread.join()

    def _run(self) -> None:
        reported = 0
        while True:
            self._wake.wait(self.flush_every)
            closing = self._closed
            try:
                self._drain()
            except Exception as exc:  # a full disk must not stop serving; say so and keep trying
                print(f"prediction log: cannot write to {self.folder}: {exc}", file=sys.stderr, flush=True)
            if self.dropped > reported:
                print(f"prediction log: {self.dropped - reported} requests not logged (the writer fell behind or "
                      f"could not write; {self.dropped} in all, see kit_cloud_prediction_log_requests_dropped in /metrics)",
                      file=sys.stderr, flush=True)
                reported = self.dropped
            if closing:
                if self._file:
                    self._file.close()
                return

    def _drain(self) -> None:
        pending = self._pending
        while pending:
            item = pending.popleft()
            try:
                lines = list(self._records(*item))
                handle = self._handle(item[0])
                for line in lines:
                    handle.write(line)
            except Exception:
                self.dropped += 1  # counted, then reported by _run with the reason
                raise
            self.written += len(lines)
            # Hand the GIL to the event loop between requests: otherwise a drained backlog
            # would hold it for up to the 5 ms switch interval at a time, straight into p99.
            time.sleep(0)
        if self._file:
            self._file.flush()

    def _handle(self, when: float):
        day = dt.datetime.fromtimestamp(when, dt.timezone.utc).strftime("%Y-%m-%d")
        if day != self._day:
            if self._file:
                self._file.close()
            self._file = open(self.folder / f"predictions-{day}.jsonl", "a", encoding="utf-8")
            self._day = day
        return self._file

    def _records(self, when, model, version, request_id, latency_ms, status, body, answer):
        rows, outputs = split_rows(body), split_outputs(answer)
        common = {"time": dt.datetime.fromtimestamp(when, dt.timezone.utc).isoformat(timespec="microseconds"),
                  "model": model, "version": version, "request_id": request_id,
                  "latency_ms": round(latency_ms, 3), "status": status}
        if rows is None:  # not a table we can read: the whole body is the input
            rows = [body.decode("utf-8", errors="replace")]
        for index, row in enumerate(rows):
            record = dict(common, row=index, rows=len(rows), input_sha256=input_hash(row))
            if self.inputs == "full":
                record["input"] = row
            record["output"] = outputs[index] if isinstance(outputs, list) and len(outputs) == len(rows) else outputs
            yield json.dumps(record, ensure_ascii=False, default=str) + "\n"


def input_hash(row: Any) -> str:
    """sha256 of the row as canonical JSON (sorted keys, no spaces): equal rows, equal hashes."""
    text = row if isinstance(row, str) else json.dumps(row, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def split_rows(body: bytes) -> list | None:
    """The rows of a scoring-server request (dataframe_records, dataframe_split, instances,
    inputs), each a dict of field -> raw value where the format names the fields; None if the
    body is not one of those."""
    try:
        data = json.loads(body)
    except ValueError:
        return None
    if not isinstance(data, dict):
        return None
    if isinstance(data.get("dataframe_records"), list):
        return data["dataframe_records"]
    split = data.get("dataframe_split")
    if isinstance(split, dict) and isinstance(split.get("data"), list):
        columns = split.get("columns")
        if isinstance(columns, list):
            return [dict(zip(columns, r)) if isinstance(r, list) else r for r in split["data"]]
        return split["data"]
    for key in ("instances", "inputs"):
        value = data.get(key)
        if isinstance(value, list):
            return value
        if isinstance(value, dict) and value and all(isinstance(v, list) for v in value.values()):
            return _columns_to_rows(value)
    return None


def split_outputs(answer: bytes) -> Any:
    """The per-row outputs of a scoring-server answer (a list), or the whole answer (an error)."""
    try:
        data = json.loads(answer)
    except ValueError:
        return answer.decode("utf-8", errors="replace")
    if isinstance(data, dict) and "predictions" in data:
        predictions = data["predictions"]
        if isinstance(predictions, dict) and predictions and all(isinstance(v, list) for v in predictions.values()):
            return _columns_to_rows(predictions)
        return predictions
    return data


def _columns_to_rows(columns: dict[str, list]) -> list[dict]:
    lengths = {len(v) for v in columns.values()}
    if len(lengths) != 1:
        return [columns]
    return [dict(zip(columns, values)) for values in zip(*columns.values())]


def read_predictions(log_dir: str | Path):
    """Every record under `log_dir` as a DataFrame, oldest file first: time (UTC datetime),
    model, version, request_id, latency_ms, status, row, rows, input_sha256, input (with
    --log-inputs full), output. A line cut short by a crash is skipped."""
    import pandas as pd

    records = []
    for path in sorted(Path(log_dir).glob(FILE_PATTERN)):
        with open(path, encoding="utf-8") as handle:
            for line in handle:
                try:
                    records.append(json.loads(line))
                except ValueError:
                    continue
    columns = ["time", "model", "version", "request_id", "latency_ms", "status", "row", "rows", "input_sha256",
               "input", "output"]
    frame = pd.DataFrame.from_records(records) if records else pd.DataFrame(columns=columns)
    if "time" in frame:
        frame["time"] = pd.to_datetime(frame["time"], utc=True, format="ISO8601")
    return frame
