"""Import directions stay as designed (import-linter contracts in pyproject.toml), every module
under kit/ is in them, and no module imports itself back, not even from inside a function."""

import graphlib
import subprocess
import tomllib
from pathlib import Path

import grimp

REPO = Path(__file__).resolve().parents[1]
KIT = REPO / "kit"
TARGETS_SIDE = {"targets", "edge", "cloud"}  # the targets and their public facades


def contracts() -> list[dict]:
    return tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["importlinter"]["contracts"]


def children_of_kit() -> set[str]:
    """Every package and top-level module directly under kit/."""
    packages = {p.parent.name for p in KIT.glob("*/__init__.py")}
    modules = {p.stem for p in KIT.glob("*.py") if p.name != "__init__.py"}
    return packages | modules


def layer_names(layer: str) -> set[str]:
    return {name.strip().strip("()") for name in layer.replace(":", "|").split("|")}


def test_import_contracts_are_kept():
    done = subprocess.run([str(REPO / ".venv/bin/lint-imports")], cwd=REPO, capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr


def test_every_module_under_kit_is_a_layer():
    layers = next(c for c in contracts() if c["type"] == "layers" and c.get("containers") == ["kit"])
    assert layers.get("exhaustive") is True
    named = set().union(*map(layer_names, layers["layers"]))
    missing = children_of_kit() - named
    assert not missing, f"kit.{', kit.'.join(sorted(missing))}: add to the layers contract in pyproject.toml"


def test_the_core_may_not_import_the_targets():
    forbidden = next(c for c in contracts() if c["type"] == "forbidden" and c["forbidden_modules"] == ["kit.targets"])
    core = {f"kit.{name}" for name in children_of_kit() - TARGETS_SIDE}
    missing = core - set(forbidden["source_modules"])
    assert not missing, f"{', '.join(sorted(missing))}: add to the forbidden contract's source_modules"


def test_no_import_cycles_even_through_function_level_imports():
    # grimp reads every import statement, inside functions too; `if TYPE_CHECKING:` imports
    # never run, so they cannot make an import-order cycle.
    graph = grimp.build_graph("kit", exclude_type_checking_imports=True)
    edges = {module: graph.find_modules_directly_imported_by(module) for module in graph.modules}
    try:
        graphlib.TopologicalSorter(edges).prepare()
    except graphlib.CycleError as cycle:
        raise AssertionError(f"import cycle: {' -> '.join(cycle.args[1])}") from None
