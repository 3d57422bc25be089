"""The prediction log: one JSON line per row, written off the request path, readable as a DataFrame."""

from __future__ import annotations

import json
import time

import pytest

from kit.targets.cloud.predlog import PredictionLog, input_hash, read_predictions, split_outputs, split_rows

ROWS = [{"x": 1.0, "device": "mobile"}, {"x": None, "device": "tablet"}]
ANSWER = json.dumps({"predictions": [{"probability": 0.7, "prediction": "yes"},
                                     {"probability": 0.2, "prediction": "no"}]}).encode()


@pytest.mark.parametrize("body", [
    {"dataframe_records": ROWS},
    {"dataframe_split": {"columns": ["x", "device"], "data": [[1.0, "mobile"], [None, "tablet"]]}},
    {"dataframe_split": {"index": [0, 1], "columns": ["x", "device"], "data": [[1.0, "mobile"], [None, "tablet"]]}},
    {"inputs": ROWS},
    {"instances": ROWS},
    {"inputs": {"x": [1.0, None], "device": ["mobile", "tablet"]}},
])
def test_every_request_format_splits_into_the_same_rows(body):
    assert split_rows(json.dumps(body).encode()) == ROWS


@pytest.mark.parametrize("body", [b"{not json", b"[1, 2]", b'{"something": 1}', b""])
def test_unreadable_bodies_have_no_rows(body):
    assert split_rows(body) is None


def test_outputs_split_per_row_or_stay_whole():
    assert split_outputs(ANSWER) == [{"probability": 0.7, "prediction": "yes"}, {"probability": 0.2, "prediction": "no"}]
    assert split_outputs(b'{"predictions": {"p": [0.1, 0.2]}}') == [{"p": 0.1}, {"p": 0.2}]
    error = {"error_code": "INVALID_PARAMETER_VALUE", "message": "bad"}
    assert split_outputs(json.dumps(error).encode()) == error


def test_hash_is_canonical():
    assert input_hash({"a": 1, "b": "x"}) == input_hash({"b": "x", "a": 1})
    assert input_hash({"a": 1}) != input_hash({"a": 2})


def test_full_log_has_one_record_per_row_and_reads_back(tmp_path):
    log = PredictionLog(tmp_path, "full")
    now = time.time()
    log.submit(now, "m", "3", "req-1", 4.25, 200, json.dumps({"dataframe_records": ROWS}).encode(), ANSWER)
    log.submit(now, "m", "3", "req-2", 1.5, 400, b"{not json", b'{"error_code": "BAD_REQUEST", "message": "no"}')
    log.close()
    files = list(tmp_path.glob("predictions-*.jsonl"))
    assert [f.name for f in files] == [time.strftime("predictions-%Y-%m-%d.jsonl", time.gmtime(now))]
    frame = read_predictions(tmp_path)
    assert len(frame) == 3
    first = frame.iloc[0]
    assert (first["model"], first["version"], first["request_id"], first["status"], first["row"]) == ("m", "3", "req-1", 200, 0)
    assert first["latency_ms"] == 4.25
    assert first["input"] == ROWS[0] and first["input_sha256"] == input_hash(ROWS[0])
    assert first["output"] == {"probability": 0.7, "prediction": "yes"}
    assert frame.iloc[1]["input"] == ROWS[1] and frame.iloc[1]["row"] == 1
    bad = frame.iloc[2]
    assert bad["status"] == 400 and bad["input"] == "{not json" and bad["output"]["error_code"] == "BAD_REQUEST"
    assert str(frame["time"].dtype).startswith("datetime64") and frame["time"].dt.tz is not None


def test_hash_mode_keeps_no_inputs(tmp_path):
    log = PredictionLog(tmp_path, "hash")
    log.submit(time.time(), "m", "1", "r", 1.0, 200, json.dumps({"dataframe_records": ROWS}).encode(), ANSWER)
    log.close()
    frame = read_predictions(tmp_path)
    assert "input" not in frame.columns
    assert frame["input_sha256"].tolist() == [input_hash(r) for r in ROWS]
    assert "mobile" not in (tmp_path / next(tmp_path.glob("*.jsonl")).name).read_text()


def test_records_are_on_disk_within_a_second_without_closing(tmp_path):
    log = PredictionLog(tmp_path, "full")
    try:
        log.submit(time.time(), "m", "1", "r", 1.0, 200, json.dumps({"dataframe_records": ROWS[:1]}).encode(), ANSWER)
        deadline = time.monotonic() + 1.0
        while time.monotonic() < deadline and len(read_predictions(tmp_path)) == 0:
            time.sleep(0.05)
        assert len(read_predictions(tmp_path)) == 1
    finally:
        log.close()


def test_a_full_queue_drops_instead_of_blocking(tmp_path):
    log = PredictionLog(tmp_path, "hash", flush_every=60, max_pending=3)
    body = json.dumps({"dataframe_records": ROWS[:1]}).encode()
    started = time.perf_counter()
    for i in range(10):
        log.submit(time.time(), "m", "1", str(i), 1.0, 200, body, ANSWER)
    assert time.perf_counter() - started < 0.05
    assert log.dropped == 7
    log.close()
    assert len(read_predictions(tmp_path)) == 3


def test_days_go_to_their_own_files_and_a_cut_line_is_skipped(tmp_path):
    log = PredictionLog(tmp_path, "hash")
    body = json.dumps({"dataframe_records": ROWS[:1]}).encode()
    log.submit(1_700_000_000.0, "m", "1", "a", 1.0, 200, body, ANSWER)  # 2023-11-14 UTC
    log.submit(1_700_100_000.0, "m", "1", "b", 1.0, 200, body, ANSWER)  # 2023-11-16 UTC
    log.close()
    assert sorted(f.name for f in tmp_path.glob("*.jsonl")) == ["predictions-2023-11-14.jsonl",
                                                                 "predictions-2023-11-16.jsonl"]
    with open(tmp_path / "predictions-2023-11-16.jsonl", "a") as handle:
        handle.write('{"time": "2023-11-16T')  # a crash mid-line
    assert read_predictions(tmp_path)["request_id"].tolist() == ["a", "b"]
    assert read_predictions(tmp_path / "empty").empty


def test_requests_the_log_cannot_keep_are_counted_and_reported_never_lost_silently(tmp_path, capsys):
    body = json.dumps({"dataframe_records": ROWS}).encode()
    log = PredictionLog(tmp_path / "behind", "hash", flush_every=60, max_pending=2)  # the writer sleeps meanwhile
    for i in range(5):
        log.submit(time.time(), "m", "1", f"req-{i}", 1.0, 200, body, ANSWER)
    log.close()
    assert (log.dropped, log.written) == (3, 4)  # 2 requests kept, 2 rows each
    assert "prediction log: 3 requests not logged" in capsys.readouterr().err

    refusing = PredictionLog(tmp_path / "refusing", "hash", flush_every=60)
    (tmp_path / "refusing").rmdir()
    (tmp_path / "refusing").write_text("a file where the log folder was")  # every write now fails
    refusing.submit(time.time(), "m", "1", "req-x", 1.0, 200, body, ANSWER)
    refusing.close()
    assert (refusing.dropped, refusing.written) == (1, 0)
    err = capsys.readouterr().err
    assert "cannot write to" in err and "1 requests not logged" in err
