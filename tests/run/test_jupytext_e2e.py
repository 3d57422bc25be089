"""A Jupytext `.py` step that fails: the error names the cell as the script numbers its `# %%`
cells, and the executed notebook (an `.ipynb`) keeps the traceback."""

from __future__ import annotations

import textwrap

import nbformat
import pytest

pytestmark = pytest.mark.e2e

SCRIPT = '''
# %% [markdown]
# A step that breaks in its third cell.

# %% tags=["parameters"]
rows = 3

# %%
import mlflow

# %%
raise ValueError(f"bad rows: {rows}")
'''


def test_a_failing_py_step_names_its_cell_and_keeps_the_executed_ipynb(project):
    (project.root / "notebooks").mkdir()
    (project.root / "notebooks" / "broken.py").write_text(textwrap.dedent(SCRIPT).lstrip())
    pipeline = project.pipeline("""
        name: broken
        model: broken-model
        steps:
          - name: broken
            notebook: notebooks/broken.py
            parameters: {rows: 7}
    """)
    done = project.kit("run", str(pipeline))
    assert done.returncode == 1, done.stderr
    assert "step 'broken' (notebooks/broken.py) failed in cell 4 of the notebook" in done.stderr
    assert "ValueError: bad rows: 7" in done.stderr
    executed = next((project.root / "workspaces" / "broken").glob("*/broken/broken.ipynb"))
    assert str(executed) in done.stderr
    assert "bad rows: 7" in str(nbformat.read(executed, as_version=4).cells[-1].outputs)
    run = next(r for r in project.runs("broken") if r.data.tags["kit.kind"] == "step")
    assert {a.path for a in project.client().list_artifacts(run.info.run_id, "notebook")} >= {"notebook/broken.ipynb"}
