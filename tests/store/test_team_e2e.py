"""The kit against a real team stack: PostgreSQL and an MLflow server with basic-auth, started by
`kit server up` (the session fixture `team_server`): the Iris pipeline, the JUnit file, promotion and
rollback, a READ user refused, a restart that loses nothing."""

from __future__ import annotations

import subprocess
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from conftest import Project, tiny_edge_pipeline

pytestmark = pytest.mark.e2e

MODEL = "iris-classifier"


@pytest.fixture(scope="module")
def iris(tmp_path_factory, team_server):
    root = tmp_path_factory.mktemp("team-iris")
    project = Project.linked(root, tracking=team_server.env)
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@t"]
    subprocess.run(["git", "init", "-q"], cwd=root, check=True)
    subprocess.run([*git, "add", "-A"], cwd=root, check=True)
    subprocess.run([*git, "commit", "-qm", "fixture"], cwd=root, check=True)
    done = project.kit("run", "pipelines/iris.yaml", "-p", "train.epochs=30", "--junit", "reports/junit.xml",
                       timeout=900)
    return project, done


@pytest.fixture
def admin(monkeypatch, team_server):
    """This process signed in as the admin (for MlflowClient and the auth API)."""
    for key, value in team_server.env.items():
        monkeypatch.setenv(key, value)
    return team_server


def test_the_iris_pipeline_runs_registers_and_promotes_on_the_server(iris, admin):
    project, done = iris
    assert done.returncode == 0, done.stderr
    assert f"registered {MODEL} v1; champion moved (none) -> v1" in done.stdout
    assert f"in {admin.uri}" in done.stdout and "View run" not in done.stdout
    assert not (project.root / "mlruns" / "mlflow.db").exists()  # nothing went to a local store

    client = project.client()
    experiment = client.get_experiment_by_name("iris")
    runs = {r.info.run_name: r for r in client.search_runs([experiment.experiment_id])}
    assert set(runs) == {"iris", "features", "train", "evaluate"}
    assert all(r.info.status == "FINISHED" for r in runs.values())
    assert runs["features"].data.tags["kit.contract.raw_path"] == "passed"
    # Artifacts went through the server's proxy into its folder, and come back through it.
    assert runs["train"].info.artifact_uri.startswith("mlflow-artifacts:")
    assert list((admin.folder / "artifacts").rglob("saved_model.pb"))
    saved = client.download_artifacts(runs["train"].info.run_id, "outputs/saved_model_dir")
    assert (Path(saved) / "saved_model.pb").is_file()
    assert client.get_model_version_by_alias(MODEL, "champion").version == "1"


def test_the_junit_file_parses_back_with_every_step_contract_and_gate(iris):
    project, done = iris
    assert done.returncode == 0, done.stderr
    cases = {f"{c.get('classname')}/{c.get('name')}": c
             for c in ET.parse(project.root / "reports" / "junit.xml").getroot().iter("testcase")}
    assert {n for n in cases if n.startswith("iris.steps/")} == {"iris.steps/features", "iris.steps/train",
                                                                 "iris.steps/evaluate"}
    assert len([n for n in cases if n.startswith("iris.contracts/")]) >= 2
    assert "iris.gates/evaluate.accuracy" in cases
    assert all(len(c) == 0 for c in cases.values())  # no failure, error or skipped element


def test_a_read_user_cannot_promote_or_roll_back_an_editor_can(iris, admin):
    project, done = iris
    assert done.returncode == 0, done.stderr
    client = project.client()
    v1 = client.get_model_version(MODEL, "1")
    v2 = client.create_model_version(MODEL, v1.source, v1.run_id, tags={"kit.gates": "passed"}).version
    auth = admin.auth()
    auth.create_user("viewer", "viewer-password-1")
    auth.create_user("editor", "editor-password-1")
    auth.grant_user_permission("viewer", "registered_model", MODEL, "READ")
    auth.grant_user_permission("editor", "registered_model", MODEL, "EDIT")
    auth.grant_user_permission("editor", "registered_model", f"{MODEL}.kit-audit", "EDIT")  # the audit log
    for experiment in client.search_experiments():  # the editor may write the audit events, wherever kept
        auth.grant_user_permission("editor", "experiment", experiment.experiment_id, "EDIT")

    editor = Project(project.root, admin.as_user("editor", "editor-password-1"))
    promoted = editor.kit("promote", MODEL, v2, "--alias", "champion")
    assert promoted.returncode == 0, promoted.stderr
    assert client.get_model_version_by_alias(MODEL, "champion").version == v2

    viewer = Project(project.root, admin.as_user("viewer", "viewer-password-1"))
    for args in (["promote", MODEL, "1", "--alias", "champion"], ["rollback", MODEL, "--alias", "champion"]):
        refused = viewer.kit(*args)
        assert refused.returncode == 2, refused.stderr
        assert refused.stderr.count("\n") == 1 and "Traceback" not in refused.stderr, refused.stderr
        assert f"{admin.uri} refused user 'viewer': permission denied" in refused.stderr
        assert client.get_model_version_by_alias(MODEL, "champion").version == v2
    wrong = Project(project.root, admin.as_user("editor", "not-the-password"))
    denied = wrong.kit("models", MODEL)
    assert denied.returncode == 2 and "did not accept the credentials of user 'editor'" in denied.stderr

    rolled = editor.kit("rollback", MODEL, "--alias", "champion")
    assert rolled.returncode == 0, rolled.stderr
    assert f"rolled back v{v2} -> v1" in rolled.stdout
    assert client.get_model_version_by_alias(MODEL, "champion").version == "1"


def test_an_edge_model_registers_and_deploys_from_the_server(tmp_path, team_server):
    project = Project(tmp_path, tracking=team_server.env)
    done = project.kit("run", str(tiny_edge_pipeline(project)))
    assert done.returncode == 0, done.stderr
    deployed = project.kit("deploy", "edge", "tiny-model", "--alias", "champion", "--out", str(tmp_path / "out"))
    assert deployed.returncode == 0, deployed.stderr
    assert (tmp_path / "out" / "worker.js").is_file() and (tmp_path / "out" / "manifest.json").is_file()
    assert not (tmp_path / "mlruns" / "mlflow.db").exists()


def test_a_restart_finds_every_run_model_user_and_artifact(iris, admin):
    project, done = iris
    assert done.returncode == 0, done.stderr
    client = project.client()
    experiment = client.get_experiment_by_name("iris")
    before = {r.info.run_id for r in client.search_runs([experiment.experiment_id])}
    versions = {v.version for v in client.search_model_versions(f"name = '{MODEL}'")}
    history = project.kit("models", MODEL).stdout

    admin.restart()
    for key, value in admin.env.items():  # the same port when it is still free; follow it if not
        project.tracking[key] = value
    client = project.client()
    assert {r.info.run_id for r in client.search_runs([experiment.experiment_id])} == before
    assert {v.version for v in client.search_model_versions(f"name = '{MODEL}'")} == versions
    assert project.kit("models", MODEL).stdout == history
    train = next(r for r in client.search_runs([experiment.experiment_id]) if r.info.run_name == "train")
    assert "outputs/saved_model_dir" in {a.path for a in client.list_artifacts(train.info.run_id, "outputs")}
    assert admin.auth().get_user("admin").username == "admin"
