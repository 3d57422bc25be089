"""`kit run --junit FILE`: the JUnit XML a CI system reads, parsed back with the standard library."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET

import pytest

pytestmark = pytest.mark.e2e

CONTRACT = {"expectations": [
    {"type": "expect_column_values_to_be_between", "kwargs": {"column": "x", "min_value": 0, "max_value": 10}}]}


def cases(path) -> dict[str, ET.Element]:
    root = ET.parse(path).getroot()  # must be well-formed XML
    assert root.tag == "testsuites"
    return {f"{c.get('classname')}/{c.get('name')}": c for c in root.iter("testcase")}


def outcome(case: ET.Element) -> str:
    found = [child.tag for child in case if child.tag in ("failure", "error", "skipped")]
    return found[0] if found else "passed"


def pipeline(project, x: int, fail: bool = False):
    project.notebook("make.ipynb", f'out_path = "t.csv"\nx = {x}',
                     "import mlflow, pandas as pd", "pd.DataFrame({'x': [x, 1, 2]}).to_csv(out_path, index=False)",
                     "mlflow.log_metric('score', 0.9)")
    project.notebook("use.ipynb", 'in_path = "t.csv"\nfail = False',
                     "if fail: raise RuntimeError('\x1b[31mred\x1b[0m: the step broke')")
    project.notebook("last.ipynb", 'n = 1', "print(n)")
    (project.root / "data_contracts").mkdir(exist_ok=True)
    (project.root / "data_contracts" / "t.json").write_text(json.dumps(CONTRACT))
    return project.pipeline(f"""
        name: junit
        model: junit-model
        steps:
          - name: make
            notebook: notebooks/make.ipynb
            outputs: {{out_path: t.csv}}
            contracts: {{out_path: data_contracts/t.json}}
          - name: use
            notebook: notebooks/use.ipynb
            inputs: {{in_path: make.out_path}}
            parameters: {{fail: {str(fail).lower()}}}
          - name: last
            notebook: notebooks/last.ipynb
            needs: [use]
        gates:
          - {{type: metric_threshold, step: make, metric: score, min: 0.95}}
    """)


def test_a_failing_gate_is_a_failure_with_its_figures_and_every_step_a_case(project):
    junit = project.root / "reports" / "junit.xml"
    done = project.kit("run", str(pipeline(project, x=5)), "--junit", str(junit))
    assert done.returncode == 3, done.stderr  # exit codes as documented
    found = cases(junit)
    assert {k: outcome(v) for k, v in found.items()} == {
        "junit.steps/make": "passed", "junit.steps/use": "passed", "junit.steps/last": "passed",
        "junit.contracts/make.out_path (t.json)": "passed",
        "junit.gates/make.score": "failure"}
    failure = found["junit.gates/make.score"].find("failure")
    assert "figure 0.9, threshold >= 0.95" in failure.get("message")
    assert float(found["junit.steps/make"].get("time")) > 0


def test_a_failed_contract_and_step_fail_their_cases_and_skip_the_rest(project):
    junit = project.root / "junit.xml"
    done = project.kit("run", str(pipeline(project, x=50)), "--junit", str(junit))
    assert done.returncode == 3, done.stderr
    found = cases(junit)
    contract = found["junit.contracts/make.out_path (t.json)"]
    assert outcome(contract) == "failure" and "1 of 1 expectations failed (columns x)" in contract.find("failure").get("message")
    assert outcome(found["junit.steps/use"]) == "skipped"
    assert "needs 'make'" in found["junit.steps/use"].find("skipped").get("message")
    assert outcome(found["junit.gates/make.score"]) == "skipped"

    crashed = project.kit("run", str(pipeline(project, x=5, fail=True)), "--junit", str(junit))
    assert crashed.returncode == 1, crashed.stderr
    found = cases(junit)
    failure = found["junit.steps/use"].find("failure")
    assert "RuntimeError: red: the step broke" in failure.text  # terminal colours removed: valid XML
    assert outcome(found["junit.steps/last"]) == "skipped"


def test_a_bad_pipeline_file_is_one_failing_case(project):
    path = project.pipeline("name: broken\nsteps: 3\n", name="broken.yaml")
    junit = project.root / "junit.xml"
    done = project.kit("run", str(path), "--junit", str(junit))
    assert done.returncode == 2
    (case,) = cases(junit).values()
    assert case.get("classname") == "broken.run" and outcome(case) == "error"
