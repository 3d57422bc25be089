"""Promotion is a compare-and-set: two runs of the same pipeline promoting the same alias at once.
A gate plug-in (installed the way a team would: an entry point on the path) holds both runs at
the gates until both arrived, so both are judged against the same champion; the one that moves
second must be judged again against the first one's version."""

from __future__ import annotations

import json
import re
import textwrap

import pytest

pytestmark = pytest.mark.e2e

BARRIER = '''
import os, time
from pathlib import Path
from kit.gates import Gate

class Barrier(Gate):
    """Passes once `parties` runs reached the gates (each leaves a file in `folder`)."""
    type = "barrier"
    folder: str
    parties: int = 2

    def evaluate(self, context):
        folder = Path(self.folder)
        folder.mkdir(exist_ok=True)
        (folder / str(os.getpid())).touch()
        deadline = time.monotonic() + 300
        while len(list(folder.iterdir())) < self.parties and time.monotonic() < deadline:
            time.sleep(0.1)
        return self.result(True, None, f"{self.parties} runs", "every run reached the gates")
'''


@pytest.fixture
def racing(project):
    plugins = project.root / "plugins"
    (plugins / "barrier_gate-0.1.dist-info").mkdir(parents=True)
    (plugins / "barrier_gate.py").write_text(textwrap.dedent(BARRIER))
    (plugins / "barrier_gate-0.1.dist-info" / "METADATA").write_text("Metadata-Version: 2.1\nName: barrier-gate\nVersion: 0.1\n")
    (plugins / "barrier_gate-0.1.dist-info" / "entry_points.txt").write_text("[kit.gates]\nbarrier = barrier_gate:Barrier\n")
    project.notebook("score.ipynb", 'auc = 0.9\nmodel_path = "m.bin"',
                     "import kit, mlflow; kit.track()",
                     'mlflow.log_metric("auc", auc)\nopen(model_path, "w").write(str(auc))')
    path = project.pipeline(f"""
        name: scored
        model: scorer
        steps:
          - name: score
            notebook: notebooks/score.ipynb
            outputs: {{model_path: m.bin}}
        gates:
          - {{type: barrier, folder: "{project.root / 'arrived'}", parties: PARTIES}}
          - {{type: no_regression, step: score, metric: auc, direction: higher_is_better, allowed_change: 0.05}}
        promote:
          alias: champion
          source: {{step: score, output: model_path}}
    """)
    import os

    env = {"PYTHONPATH": f"{plugins}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    return project, path, env


def launch(project, path, env, auc):
    import subprocess

    from conftest import KIT

    return subprocess.Popen([*KIT, "run", str(path), "-p", f"score.auc={auc}"], cwd=project.root,
                            env={**project.env, **env}, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def gates_json(project, run_id) -> list:
    return json.loads(open(project.client().download_artifacts(run_id, "gates/gates.json")).read())


def test_the_second_to_move_is_judged_against_the_first(racing):
    project, path, env = racing
    text = path.read_text()
    path.write_text(text.replace("PARTIES", "1"))
    first = launch(project, path, env, 0.9)
    assert first.wait(600) == 0, first.communicate()
    (project.root / "arrived").rename(project.root / "arrived-v1")
    path.write_text(text.replace("PARTIES", "2"))

    runs = {auc: launch(project, path, env, auc) for auc in (0.95, 0.93)}
    outputs = {}
    for auc, process in runs.items():
        out, err = process.communicate(timeout=600)
        assert process.returncode == 0, err
        outputs[re.search(r"registered scorer v(\d+)", out).group(1)] = out

    from kit.registry import Registry

    events = Registry(project.root, project.client()).audit.events("scorer")
    chain = [(e.from_version, e.to_version) for e in events]
    assert chain[0] == (None, "1") and chain[1][0] == "1" and chain[2][0] == chain[1][1]  # v1 -> first -> second
    winner, second = chain[1][1], chain[2][1]
    assert f"champion moved v1 -> v{winner} while this run was judged: judged again against v{winner}" in outputs[second]
    assert f"champion moved v{winner} -> v{second}" in outputs[second]
    assert f"champion moved v1 -> v{winner}" in outputs[winner] and "judged again" not in outputs[winner]

    pipelines = {r.data.tags["kit.model_version.champion"]: r.info.run_id for r in project.runs("scored")
                 if r.data.tags.get("kit.kind") == "pipeline"}
    judged = {v: next(g for g in gates_json(project, pipelines[v]) if g["type"] == "no_regression")
              for v in (winner, second)}
    assert judged[winner]["baseline_version"] == "1" and judged[second]["baseline_version"] == winner
    version = project.client().get_model_version("scorer", second)
    assert version.tags["kit.promotion.from"] == winner
    assert json.loads(version.tags["kit.gate.no_regression.score.auc.baseline_version"]) == winner

    listing = project.kit("models", "scorer").stdout
    assert re.search(rf"champion[\s│]+promote[\s│]+v1 -> v{winner}\b", listing)
    assert re.search(rf"champion[\s│]+promote[\s│]+v{winner} -> v{second}\b", listing)
