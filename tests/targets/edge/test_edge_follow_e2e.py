"""`kit serve edge --follow-interval`: the Node edge server follows its alias on the team stack
(PostgreSQL + MLflow with basic-auth, `team_server`) without a signal. The server runs as a user
with READ only; an admin promotes and rolls back through the server; the served version follows
within the interval, through the same zero-drop switch as SIGHUP, with no failed request."""

from __future__ import annotations

import json
import os
import signal
import sys
import urllib.request

import pytest

from conftest import KIT, Load, Project, free_port, serving

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(900)]

INTERVAL = 1.0
MODEL = "edge-follow"
ROW = {"a": 0.5, "b": 1.0}


def write_bundle_for(folder, sign: float):
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
                        labels=["no", "yes"], feature_spec=spec, model_name=MODEL)


@pytest.fixture
def two_bundles(team_server, tmp_path, monkeypatch):
    """`edge-follow` v1 and v2 (opposite models) on the server, v1 the champion; the admin's registry."""
    from mlflow import MlflowClient

    from kit.registry import Registry, versions

    for key, value in team_server.env.items():  # this process promotes as the admin
        monkeypatch.setenv(key, value)
    client = MlflowClient(team_server.uri)
    run = client.create_run(client.create_experiment("edge-follow"))
    for version, sign in (("1", 1.0), ("2", -1.0)):
        client.log_artifacts(run.info.run_id, str(write_bundle_for(tmp_path / f"v{version}", sign)), f"bundle-{version}")
        versions.register(client, MODEL, f"runs:/{run.info.run_id}/bundle-{version}", run.info.run_id,
                          {"kit.gates": "passed"})
    registry = Registry(tmp_path, client)
    registry.promote(MODEL, "1", "champion")
    team_server.auth().create_user("edge-server", "edge-server-password-1")
    team_server.auth().grant_user_permission("edge-server", "registered_model", MODEL, "READ")
    return registry


def test_kit_serve_edge_follows_promotion_and_rollback_without_a_signal(two_bundles, team_server, tmp_path):
    registry = two_bundles
    (tmp_path / "server").mkdir()
    server = Project(tmp_path / "server", tracking=team_server.as_user("edge-server", "edge-server-password-1"))
    port = free_port()
    command = [*KIT, "serve", "edge", MODEL, "--alias", "champion", "--port", str(port),
               "--follow-interval", str(INTERVAL)]
    with serving(command, f"http://127.0.0.1:{port}/health", server.root, server.env, name="kit-serve-edge") as process:
        with Load(port, "POST", "/predict", json.dumps(ROW).encode(), {"Content-Type": "application/json"},
                  lambda _, body: json.loads(body)["model"]["version"]) as load:
            promoted = load.served_after(lambda: registry.promote(MODEL, "2", "champion"), "2")
            rolled_back = load.served_after(lambda: registry.rollback(MODEL, "champion"), "1")
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as answer:
            metrics = answer.read().decode()
        os.kill(process.pid, signal.SIGTERM)  # the Python process passes it on to Node
        assert process.wait(30) == 0
    load.assert_followed("1", "2", "1")
    answers = {v: json.loads(body)["probabilities"] for _, v, body in load.answers}
    assert answers["1"] != answers["2"]
    assert f'kit_edge_model_info{{name="{MODEL}",version="1",kind="lightgbm-json"}} 1' in metrics
    log = (server.root / "kit-serve-edge.log").read_text()
    assert f"reloaded {MODEL} v1 -> v2" in log and f"reloaded {MODEL} v2 -> v1" in log, log
    print(f"\nfollowed: promotion served after {promoted:.1f} s, rollback after {rolled_back:.1f} s "
          f"(interval {INTERVAL} s + fetching the bundle, under load); {len(load.answers)} requests, 0 failed",
          file=sys.stderr)
