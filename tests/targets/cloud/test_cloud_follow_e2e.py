"""`kit serve cloud --follow-interval`: the front follows its alias on a real MLflow tracking
server without a signal. Another process promotes and rolls back; the served version follows
within the interval, through the same zero-drop switch as SIGHUP, with no failed request."""

from __future__ import annotations

import http.client
import json
import threading
import time

import numpy as np
import pandas as pd
import pytest


pytestmark = [pytest.mark.e2e, pytest.mark.timeout(900)]

INTERVAL = 1.0
ROW = {"a": 0.5, "b": 1.0}


@pytest.fixture
def two_versions(tracking_server, tmp_path, monkeypatch):
    """`linear` v1 and v2 on the server (different fits, so their answers differ), v1 the champion."""
    import mlflow.sklearn
    from mlflow import MlflowClient
    from sklearn.linear_model import LinearRegression

    from kit.registry import Registry, versions

    monkeypatch.setenv("MLFLOW_TRACKING_URI", tracking_server)
    client = MlflowClient(tracking_server)
    run = client.create_run(client.create_experiment("follow"))
    rng = np.random.default_rng(1)
    frame = pd.DataFrame({"a": rng.normal(size=50), "b": rng.normal(size=50)})
    for slope in (1.0, -1.0):
        folder = tmp_path / f"model-{slope}"
        mlflow.sklearn.save_model(LinearRegression().fit(frame, slope * frame.a), str(folder), pip_requirements=[])
        client.log_artifacts(run.info.run_id, str(folder), f"model-{slope}")
        versions.register(client, "linear", f"runs:/{run.info.run_id}/model-{slope}", run.info.run_id,
                          {"kit.gates": "passed"})
    registry = Registry(tmp_path, client)
    registry.promote("linear", "1", "champion")
    return registry


def test_the_front_follows_promotion_and_rollback_without_a_signal(two_versions, tmp_path):
    from kit.targets.cloud.front import Front, InThread

    registry = two_versions
    front = Front(tmp_path, "linear", "champion", port=0, log_dir=tmp_path / "log", workers=1,
                  follow_interval=INTERVAL)
    answers: list[tuple] = []
    stop = threading.Event()

    def client(port: int):
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        while not stop.is_set():
            try:
                connection.request("POST", "/invocations", json.dumps({"dataframe_records": [ROW]}),
                                   {"Content-Type": "application/json"})
                answer = connection.getresponse()
                answers.append((answer.status, answer.headers.get("x-model-version"), answer.read()))
            except Exception as exc:  # a dropped connection is a failed request too
                answers.append((repr(exc), None, b""))
                connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
            time.sleep(0.01)

    def served_after(moved_at: int, version: str, timeout: float = 400) -> float:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if any(v == version for _, v, _ in answers[moved_at:]):
                return time.monotonic()
            time.sleep(0.1)
        raise AssertionError(f"still not serving v{version} after {timeout} s")

    with InThread(front) as url:
        threads = [threading.Thread(target=client, args=(int(url.rsplit(":", 1)[1]),)) for _ in range(4)]
        for thread in threads:
            thread.start()
        try:
            time.sleep(1)
            moved = time.monotonic()
            assert registry.promote("linear", "2", "champion").from_version == "1"  # as a CI job elsewhere would
            promoted = served_after(len(answers), "2") - moved
            moved = time.monotonic()
            assert registry.rollback("linear", "champion").to_version == "1"
            rolled_back = served_after(len(answers), "1") - moved
            time.sleep(0.5)
        finally:
            stop.set()
            for thread in threads:
                thread.join()
    failed = [a for a in answers if a[0] != 200]
    assert not failed, failed[:3]
    served = [v for _, v, _ in answers]
    first_two, back = served.index("2"), len(served) - served[::-1].index("2")
    assert set(served[:first_two]) == {"1"} and set(served[first_two:back]) == {"2"} and set(served[back:]) == {"1"}
    predictions = {v: json.loads(p)["predictions"][0] for _, v, p in answers}
    assert predictions["1"] != predictions["2"]
    print(f"\nfollowed: promotion served after {promoted:.1f} s, rollback after {rolled_back:.1f} s "
          f"(interval {INTERVAL} s + starting a worker, under load); {len(answers)} requests, 0 failed")
