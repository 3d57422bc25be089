"""Notebooks use only the public API: the code cells of every notebook under notebooks/ import
nothing from kit but the four public modules (`kit`, `kit.features`, `kit.edge`, `kit.cloud`)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from kit.pipeline import notebooks

REPO = Path(__file__).resolve().parents[1]
PUBLIC = {"kit", "kit.features", "kit.edge", "kit.cloud"}
# Jupyter notebooks and Jupytext percent-format scripts (a step's notebook may be either)
NOTEBOOKS = sorted([*(REPO / "notebooks").rglob("*.ipynb"), *(REPO / "notebooks").rglob("*.py")])


def private_imports(source: str) -> list[str]:
    """Each kit module the code imports that is not public, as `line N: module`."""
    lines = [line for line in source.splitlines() if not line.lstrip().startswith(("%", "!"))]  # IPython magics
    found = []
    for node in ast.walk(ast.parse("\n".join(lines))):
        if isinstance(node, ast.Import):
            modules = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            # `from kit import features` names a module too: kit.features is public, kit.run is not
            modules = [node.module] + [f"{node.module}.{alias.name}" for alias in node.names
                                       if node.module.split(".")[0] == "kit" and _is_module(f"{node.module}.{alias.name}")]
        elif isinstance(node, ast.Call) and getattr(node.func, "attr", getattr(node.func, "id", "")) in (
                "import_module", "__import__") and node.args and isinstance(node.args[0], ast.Constant):
            modules = [str(node.args[0].value)]
        else:
            continue
        found += [f"line {node.lineno}: {m}" for m in modules if m.split(".")[0] == "kit" and m not in PUBLIC]
    return found


def _is_module(name: str) -> bool:
    import importlib.util

    try:
        return importlib.util.find_spec(name) is not None
    except ModuleNotFoundError:
        return False


def code_cells(notebook: Path) -> list[str]:
    return notebooks.code_sources(notebook)


def test_there_are_notebooks_to_check():
    assert len(NOTEBOOKS) >= 10
    assert any(notebook.suffix == ".py" for notebook in NOTEBOOKS)


def test_a_py_notebook_is_read_cell_by_cell(tmp_path):
    script = tmp_path / "step.py"
    script.write_text('# %% tags=["parameters"]\nx = 1\n\n# %% [markdown]\n# import kit.run\n\n'
                      "# %%\nimport kit.registry\n")
    problems = [private_imports(source) for source in code_cells(script)]
    assert problems == [[], ["line 1: kit.registry"]]  # the markdown cell is not code


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_imports_only_the_public_api(notebook):
    problems = [f"cell {index}, {problem}" for index, source in enumerate(code_cells(notebook), start=1)
                for problem in private_imports(source)]
    assert not problems, (f"{notebook.relative_to(REPO)} imports private kit modules ({'; '.join(problems)}); "
                          f"use only {sorted(PUBLIC)}")


@pytest.mark.parametrize("source, private", [
    ("import kit\nimport kit.features\nimport kit.edge, kit.cloud", []),
    ("from kit.features import load_spec\nfrom kit import track, edge, cloud", []),
    ("import kit.targets.edge.bundle", ["kit.targets.edge.bundle"]),
    ("import kit.run as r", ["kit.run"]),
    ("from kit.targets.cloud.pyfunc import CloudModel", ["kit.targets.cloud.pyfunc"]),
    ("from kit import examples", ["kit.examples"]),
    ("from kit.targets import edge", ["kit.targets", "kit.targets.edge"]),
    ("def f():\n    from kit.store import file_lock", ["kit.store"]),
    ("import importlib\nimportlib.import_module('kit.gates')", ["kit.gates"]),
    ("%matplotlib inline\nimport kit.registry", ["kit.registry"]),
    ("import kitchen\nfrom mlflow import pyfunc", []),
])
def test_the_check_catches_every_way_of_importing_a_private_module(source, private):
    assert [problem.split(": ", 1)[1] for problem in private_imports(source)] == private
