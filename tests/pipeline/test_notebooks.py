"""A step's notebook as a Jupytext percent-format `.py`: read, checked and validated like an `.ipynb`."""

from __future__ import annotations

import textwrap
from pathlib import Path

import nbformat
import pytest

from kit.errors import SpecError
from kit.pipeline import load, notebooks

SCRIPT = '''
# ---
# jupyter:
#   kernelspec:
#     display_name: Python (kit)
#     language: python
#     name: kit
# ---

# %% [markdown]
# # Make a table

# %% tags=["parameters"]
rows = 3  # how many
out_path = "table.csv"

# %%
import pandas as pd
pd.DataFrame({"x": range(rows)}).to_csv(out_path, index=False)
'''

PIPELINE = """
name: demo
model: demo-model
steps:
  - name: make
    notebook: notebooks/make.py
    parameters: {PARAMETERS}
    outputs: {out_path: table.csv}
"""


@pytest.fixture
def script(project):
    path = project.root / "notebooks" / "make.py"
    path.parent.mkdir(parents=True)
    path.write_text(textwrap.dedent(SCRIPT).lstrip())
    return path


def test_a_py_notebook_reads_as_cells_with_its_parameters_tag(script):
    cells = notebooks.cells(script)
    assert [c["cell_type"] for c in cells] == ["markdown", "code", "code"]
    assert cells[1]["metadata"]["tags"] == ["parameters"] and cells[1]["source"].startswith("rows = 3")
    assert notebooks.read(script).metadata.kernelspec.name == "kit"
    assert notebooks.executed_name(script) == "make.ipynb"


def test_a_py_step_validates_and_its_values_are_checked_against_its_parameters_cell(project, script):
    pipeline = load(project.pipeline(PIPELINE.replace("{PARAMETERS}", "{rows: 10}")))
    assert pipeline.steps["make"].parameters == {"rows": 10}

    with pytest.raises(SpecError) as wrong:
        load(project.pipeline(PIPELINE.replace("{PARAMETERS}", "{rowz: 10}")))
    assert "notebooks/make.py has no such parameter" in str(wrong.value) and "did you mean 'rows'?" in str(wrong.value)
    with pytest.raises(SpecError) as typed:
        load(project.pipeline(PIPELINE.replace("{PARAMETERS}", "{rows: many}")))
    assert "expected int like the default 3, got str 'many'" in str(typed.value)


def test_a_py_step_without_a_parameters_cell_is_refused(project, script):
    script.write_text(script.read_text().replace(' tags=["parameters"]', ""))
    with pytest.raises(SpecError) as caught:
        load(project.pipeline(PIPELINE.replace("{PARAMETERS}", "{}")))
    assert "notebooks/make.py has no cell tagged 'parameters'" in str(caught.value)


def test_writing_a_paired_notebook_writes_both_files_of_the_pair(tmp_path, script):
    nb = notebooks.read(script)
    nb.metadata["jupytext"] = {"formats": "ipynb,py:percent"}
    nb.cells.append(nbformat.v4.new_code_cell("print('edited')"))
    written = notebooks.write(nb, tmp_path / "make.py")
    assert sorted(p.name for p in written) == ["make.ipynb", "make.py"]
    assert "print('edited')" in (tmp_path / "make.py").read_text()
    assert nbformat.read(tmp_path / "make.ipynb", as_version=4).cells[-1].source == "print('edited')"


REPO = Path(__file__).resolve().parents[2]
PAIRED = [p for p in sorted((REPO / "notebooks").glob("*.ipynb"))
          if "jupytext" in nbformat.read(p, as_version=4).metadata]


def test_the_example_keeps_a_paired_py_and_the_pipeline_runs_it():
    assert [p.name for p in PAIRED] == ["40_evaluate.ipynb"]
    assert "notebook: notebooks/40_evaluate.py" in (REPO / "pipelines/iris.yaml").read_text()


@pytest.mark.parametrize("notebook", PAIRED, ids=lambda p: p.name)
def test_each_jupytext_pair_in_the_repo_holds_the_same_cells(notebook):
    script = notebook.with_suffix(".py")
    assert script.is_file(), f"{notebook.name} is paired but {script.name} is missing"

    def cells(path):
        return [(c["cell_type"], c["source"], c["metadata"].get("tags", [])) for c in notebooks.cells(path)]

    assert cells(notebook) == cells(script), (f"{notebook.name} and {script.name} differ: save one in JupyterLab, "
                                              f"or run `.venv/bin/jupytext --sync {notebook.relative_to(REPO)}`")
