"""`kit serve cloud --follow-interval | --follow-webhook`: the front follows its alias on the team
stack (PostgreSQL + MLflow with basic-auth, `team_server`) without a signal. A promotion and a
rollback made through the server move the served version, through the same zero-drop switch as
SIGHUP, with no failed request: polling every second, or on MLflow's signed registry webhook with
the fallback poll too slow to be what moved it (the webhook is gone once the front stops)."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from conftest import Load, free_port, two_versions_on_the_server, wait_for_webhook, webhooks_of

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(900)]

INTERVAL = 1.0
ROW = {"a": 0.5, "b": 1.0}


@pytest.fixture
def two_versions(team_server, tmp_path, monkeypatch, request):
    """`linear-HOW` v1 and v2 on the server (different fits, so their answers differ), v1 the champion."""
    import mlflow.sklearn
    from sklearn.linear_model import LinearRegression

    model = f"linear-{request.node.callspec.params['how']}"
    rng = np.random.default_rng(1)
    frame = pd.DataFrame({"a": rng.normal(size=50), "b": rng.normal(size=50)})
    folders = []
    for slope in (1.0, -1.0):
        folders.append(tmp_path / f"model-{slope}")
        mlflow.sklearn.save_model(LinearRegression().fit(frame, slope * frame.a), str(folders[-1]), pip_requirements=[])
    # this process is the admin (front and promoter)
    registry = two_versions_on_the_server(team_server, monkeypatch, tmp_path, model, folders)
    return model, registry


@pytest.mark.parametrize("how", ["poll", "webhook"])
def test_the_front_follows_promotion_and_rollback_without_a_signal(two_versions, tmp_path, how):
    from kit.targets.cloud.front import Front, InThread

    model, registry = two_versions
    hook = f"http://127.0.0.1:{free_port()}/kit/webhook"
    front = Front(tmp_path, model, "champion", port=0, log_dir=tmp_path / "log", workers=1,
                  **({"follow_interval": INTERVAL} if how == "poll" else {"follow_interval": 600, "follow_webhook": hook}))
    with InThread(front) as url:
        body = json.dumps({"dataframe_records": [ROW]}).encode()
        with Load(int(url.rsplit(":", 1)[1]), "POST", "/invocations", body, {"Content-Type": "application/json"},
                  lambda headers, _: headers.get("x-model-version")) as load:
            if how == "webhook":
                assert len(wait_for_webhook(registry.client, model)) == 1
            # as a CI job elsewhere would
            promoted = load.served_after(lambda: registry.promote(model, "2", "champion"), "2")
            rolled_back = load.served_after(lambda: registry.rollback(model, "champion"), "1")
    load.assert_followed("1", "2", "1")
    predictions = {v: json.loads(p)["predictions"][0] for _, v, p in load.answers}
    assert predictions["1"] != predictions["2"]
    assert not webhooks_of(registry.client, model)
    print(f"\n{how}: promotion served after {promoted:.1f} s, rollback after {rolled_back:.1f} s "
          f"(+ starting a worker, under load); {len(load.answers)} requests, 0 failed")
