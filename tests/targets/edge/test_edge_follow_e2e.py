"""`kit serve edge --follow-interval | --follow-webhook`: the Node edge server follows its alias on
the team stack (PostgreSQL + MLflow with basic-auth, `team_server`) without a signal. An admin
promotes and rolls back through the server; the served version follows, through the same zero-drop
switch as SIGHUP, with no failed request: polling every second as a user with READ only, or on
MLflow's signed registry webhook (as the admin, the only user MLflow lets create one) with the
fallback poll too slow to be what moved it; the webhook is deleted when the server stops."""

from __future__ import annotations

import json
import os
import signal
import sys
import time
import urllib.error
import urllib.request

import pytest

from conftest import KIT, Load, Project, free_port, serving, two_versions_on_the_server, wait_for_webhook, webhooks_of

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(900)]

INTERVAL = 1.0
ROW = {"a": 0.5, "b": 1.0}


def write_bundle_for(folder, sign: float, model: str):
    """A JSON-trees LightGBM bundle of `(sign * (a + b) > 0)` on 200 rows: two signs, two answers."""
    import lightgbm as lgb
    import numpy as np
    import pandas as pd

    from kit.features import FeatureSpec, numeric
    from kit.targets.edge import write_bundle
    from kit.targets.edge.lightgbm import export_booster

    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"a": rng.normal(size=200), "b": rng.normal(size=200)})
    spec = FeatureSpec.of(numeric("a", frame["a"], transform="identity", missing="nan"),
                          numeric("b", frame["b"], transform="identity", missing="nan"))
    booster = lgb.train({"objective": "binary", "num_leaves": 4, "verbose": -1, "num_threads": 1},
                        lgb.Dataset(spec.transform(frame), (sign * (frame.a + frame.b) > 0).astype(int)),
                        num_boost_round=5)
    exported = export_booster(booster, folder / "json")
    return write_bundle(folder / "bundle", model_dir=exported.parent, kind="lightgbm-json", task="binary",
                        labels=["no", "yes"], feature_spec=spec, model_name=model)


@pytest.fixture
def two_bundles(team_server, tmp_path, monkeypatch, request):
    """MODEL v1 and v2 (opposite models) on the server, v1 the champion; the admin's registry."""
    model = f"edge-follow-{request.node.callspec.params['how']}"
    bundles = [write_bundle_for(tmp_path / f"v{version}", sign, model) for version, sign in (("1", 1.0), ("2", -1.0))]
    registry = two_versions_on_the_server(team_server, monkeypatch, tmp_path, model, bundles)
    return model, registry


@pytest.mark.parametrize("how", ["poll", "webhook"])
def test_kit_serve_edge_follows_promotion_and_rollback_without_a_signal(two_bundles, team_server, tmp_path, how):
    model, registry = two_bundles
    port, hook_port = free_port(), free_port()
    command = [*KIT, "serve", "edge", model, "--alias", "champion", "--port", str(port)]
    if how == "poll":
        team_server.auth().create_user("edge-server", "edge-server-password-1")
        team_server.auth().grant_user_permission("edge-server", "registered_model", model, "READ")
        tracking = team_server.as_user("edge-server", "edge-server-password-1")
        command += ["--follow-interval", str(INTERVAL)]
    else:
        tracking = team_server.env
        command += ["--follow-webhook", f"http://127.0.0.1:{hook_port}/kit/webhook", "--follow-interval", "600"]
    (tmp_path / "server").mkdir()
    server = Project(tmp_path / "server", tracking=tracking)
    with serving(command, f"http://127.0.0.1:{port}/health", server.root, server.env, name="kit-serve-edge") as process:
        if how == "webhook":
            hooks = wait_for_webhook(registry.client, model)
            assert len(hooks) == 1 and hooks[0].url.endswith(f":{hook_port}/kit/webhook")
            forged = urllib.request.Request(f"http://127.0.0.1:{hook_port}/kit/webhook", b"{}", {
                "X-MLflow-Signature": "v1,AAAA", "X-MLflow-Timestamp": str(int(time.time())), "X-MLflow-Delivery-Id": "x"})
            with pytest.raises(urllib.error.HTTPError) as refused:
                urllib.request.urlopen(forged, timeout=10)
            assert refused.value.code == 401
        with Load(port, "POST", "/predict", json.dumps(ROW).encode(), {"Content-Type": "application/json"},
                  lambda _, body: json.loads(body)["model"]["version"]) as load:
            promoted = load.served_after(lambda: registry.promote(model, "2", "champion"), "2", timeout=60)
            rolled_back = load.served_after(lambda: registry.rollback(model, "champion"), "1", timeout=60)
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as answer:
            metrics = answer.read().decode()
        os.kill(process.pid, signal.SIGTERM)  # the Python process passes it on to Node
        assert process.wait(30) == 0
    load.assert_followed("1", "2", "1")
    answers = {v: json.loads(body)["probabilities"] for _, v, body in load.answers}
    assert answers["1"] != answers["2"]
    assert f'kit_edge_model_info{{name="{model}",version="1",kind="lightgbm-json"}} 1' in metrics
    log = (server.root / "kit-serve-edge.log").read_text()
    assert f"reloaded {model} v1 -> v2" in log and f"reloaded {model} v2 -> v1" in log, log
    if how == "webhook":
        assert not webhooks_of(registry.client, model)
    print(f"\n{how}: promotion served after {promoted:.1f} s, rollback after {rolled_back:.1f} s "
          f"(under load); {len(load.answers)} requests, 0 failed", file=sys.stderr)
