"""The `kit` command starts without the heavy libraries: they are imported only by the
commands that use them (a `kit run` imports MLflow while its first kernels start)."""

from __future__ import annotations

import json
import subprocess
import sys

HEAVY = {"mlflow", "tensorflow", "pandas", "great_expectations", "nbconvert", "sqlalchemy"}

LOADED = """
import json, sys
from kit.cli import main
code = main(sys.argv[1:])
print(json.dumps({"code": code, "loaded": sorted({name.split(".")[0] for name in sys.modules})}))
"""


def loaded_by(project, *args: str) -> set[str]:
    done = subprocess.run([sys.executable, "-c", LOADED, *args], cwd=project.root, env=project.env,
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    answer = json.loads(done.stdout.splitlines()[-1])
    assert answer["code"] == 0
    return set(answer["loaded"])


def test_kit_help_imports_no_heavy_library(project):
    code = "import json, sys; from kit.cli import build_parser; build_parser(); print(json.dumps(sorted(sys.modules)))"
    done = subprocess.run([sys.executable, "-c", code], cwd=project.root, env=project.env, capture_output=True,
                          text=True, check=True)
    assert not HEAVY & {name.split(".")[0] for name in json.loads(done.stdout)}


def test_kit_validate_imports_no_heavy_library(project):
    project.notebook("n.ipynb", "x = 1", "print(x)")
    path = project.pipeline("""
        name: light
        model: m
        steps:
          - {name: a, notebook: notebooks/n.ipynb, parameters: {x: 2}}
    """)
    assert not HEAVY & loaded_by(project, "validate", str(path))


FROZEN = """
import gc, json, sys
from kit.cli import main
argv = sys.argv[1:]
sys.argv = ["kit", *argv]
in_process = main(argv)
frozen_in_process = gc.get_freeze_count()
as_program = main()
print(json.dumps({"codes": [in_process, as_program], "in_process": frozen_in_process, "as_program": gc.get_freeze_count()}))
"""


def test_the_program_skips_the_final_collection_and_an_in_process_call_does_not(project):
    """`kit` as a program freezes what it imported before the interpreter exits (its final
    collection cost ~1.1 s after a 5-step run); main(argv) called in-process (tests, tools)
    leaves the caller's garbage collector alone."""
    project.notebook("n.ipynb", "x = 1", "print(x)")
    path = project.pipeline("""
        name: light
        model: m
        steps:
          - {name: a, notebook: notebooks/n.ipynb}
    """)
    done = subprocess.run([sys.executable, "-c", FROZEN, "validate", str(path)], cwd=project.root, env=project.env,
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    answer = json.loads(done.stdout.splitlines()[-1])
    assert answer["codes"] == [0, 0]
    assert answer["in_process"] == 0 and answer["as_program"] > 1000


def test_a_contract_is_checked_with_great_expectations_once_then_remembered_until_it_changes(project):
    """Checking a contract imports Great Expectations (~3 s before a run's first kernel); an
    unchanged, already checked contract is not checked again, a changed one is."""
    project.notebook("n.ipynb", 'out_path = "out.csv"', "open(out_path, 'w').write('a\\n1\\n')")
    contract = project.root / "data_contracts" / "out.json"
    contract.parent.mkdir()
    contract.write_text(json.dumps({"expectations": [{"type": "expect_column_to_exist", "kwargs": {"column": "a"}}]}))
    path = project.pipeline("""
        name: contracted
        model: m
        steps:
          - {name: a, notebook: notebooks/n.ipynb, outputs: {out_path: out.csv}, contracts: {out_path: data_contracts/out.json}}
    """)
    assert "great_expectations" in loaded_by(project, "validate", str(path))
    assert "great_expectations" not in loaded_by(project, "validate", str(path))
    contract.write_text(json.dumps({"expectations": [{"type": "expect_column_to_be_wonderful", "kwargs": {}}]}))
    refused = project.kit("validate", str(path))
    assert refused.returncode == 2 and "expect_column_to_be_wonderful" in refused.stderr
