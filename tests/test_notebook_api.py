"""`kit.track()`: the one call a notebook makes so its plain mlflow calls land in the right run."""

from __future__ import annotations

import subprocess
import sys

SCRIPT = """
import kit, mlflow
run = kit.track()
mlflow.log_metric("m", 1.5)
mlflow.log_text("hi", "a.txt")
print(run.info.run_id, run.info.artifact_uri)
"""


def run_script(project, **env):
    done = subprocess.run([sys.executable, "-c", SCRIPT], cwd=project.root, env={**project.env, **env},
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return done.stdout.split()


def test_by_hand_it_uses_the_project_store_not_a_stray_mlruns(project):
    run_id, artifact_uri = run_script(project)
    assert artifact_uri.startswith((project.root / "mlruns" / "artifacts" / "notebooks").as_uri())
    assert (project.root / "mlruns" / "artifacts" / "notebooks" / run_id / "artifacts" / "a.txt").is_file()
    assert project.client().get_run(run_id).data.metrics["m"] == 1.5


def test_under_the_runner_it_resumes_the_step_run(project):
    client = project.client()
    experiment = client.create_experiment("given", artifact_location=(project.root / "given").as_uri())
    given = client.create_run(experiment).info.run_id
    uri = f"sqlite:///{project.root / 'mlruns' / 'mlflow.db'}"
    run_id, _ = run_script(project, MLFLOW_RUN_ID=given, MLFLOW_TRACKING_URI=uri)
    assert run_id == given
    assert client.get_run(given).data.metrics["m"] == 1.5
