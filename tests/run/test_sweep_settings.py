"""`kit sweep` settings without running anything: --grid values read as -p values are, ranges,
variants chosen by the grid, a seeded sample and Optuna, flags over the `sweep:` block."""

from __future__ import annotations

import pytest

from kit.errors import SpecError
from kit.pipeline import load
from kit.run.sweep import search
from kit.run.sweep.settings import Range, parse_grid_option, settings

PIPELINE = """
name: tiny
model: tiny-model
steps:
  - {name: prep, notebook: notebooks/prep.ipynb, outputs: {out_path: rows.txt}}
  - {name: train, notebook: notebooks/train.ipynb, inputs: {in_path: prep.out_path}}
sweep:
  grid: {train.lr: [0.1, 0.2], train.depth: 3}
  metric: train.score
  direction: max
  jobs: 3
"""


@pytest.fixture
def pipeline(project):
    project.notebook("prep.ipynb", 'out_path = "rows.txt"', "pass")
    project.notebook("train.ipynb", 'in_path = ""\nlr = 0.1\ndepth = 3\nlayers = [16, 8]\nname = "a"', "pass")
    return load(project.pipeline(PIPELINE), root=project.root)


def test_grid_values_are_yaml_1_2_like_p_values():
    assert parse_grid_option("train.layers=[16, 8],[32, 16]").values == ([16, 8], [32, 16])
    assert parse_grid_option("train.lr=1e-3,017,yes").values == (0.001, 17, "yes")
    ranged = parse_grid_option("train.lr=1e-4..1e-1").range
    assert ranged == Range(0.0001, 0.1) and ranged.log
    assert parse_grid_option("train.depth=2..8").range.is_int
    with pytest.raises(SpecError, match="expected STEP.PARAM=V1,V2"):
        parse_grid_option("train=1,2")


def test_flags_override_the_block_and_a_grid_replaces_its_grid(pipeline):
    from_block = settings(pipeline, [], grid=[])
    assert [a.name for a in from_block.axes] == ["train.lr", "train.depth"] and from_block.jobs == 3
    assert (from_block.metric_name, from_block.direction, from_block.search) == ("train.score", "max", "grid")
    flagged = settings(pipeline, [], grid=["train.name=a,b"], direction="min", jobs=1)
    assert [a.name for a in flagged.axes] == ["train.name"] and flagged.direction == "min" and flagged.jobs == 1
    with pytest.raises(SpecError, match="needs --trials"):
        settings(pipeline, [], grid=[], search="optuna")
    with pytest.raises(SpecError, match=r"a range needs a number parameter"):
        settings(pipeline, [], grid=["train.name=1..2"], search="optuna", trials=2)


def test_grid_sample_and_optuna_choose_variants(pipeline):
    grid = settings(pipeline, [], grid=["train.lr=0.1,0.2,0.3", "train.layers=[1],[2, 2]"])
    chosen = search.chooser(grid)
    variants = [p.values for p in iter(chosen.ask, None)]
    assert len(variants) == 6 and variants[1] == {"train.lr": 0.1, "train.layers": [2, 2]}

    sampled = settings(pipeline, [], grid=["train.lr=0.1,0.2,0.3", "train.depth=1,2"], random=3, seed=5)
    first = [p.values for p in iter(search.chooser(sampled).ask, None)]
    assert len(first) == 3 and first == [p.values for p in iter(search.chooser(sampled).ask, None)]
    assert "seed 5" in search.chooser(sampled).note

    tuned = settings(pipeline, [], grid=["train.lr=0.001..0.5", "train.layers=[1],[2, 2]"], search="optuna",
                     trials=4)
    optuna = search.chooser(tuned)
    for _ in range(4):
        proposal = optuna.ask()
        assert 0.001 <= proposal.values["train.lr"] <= 0.5 and proposal.values["train.layers"] in ([1], [2, 2])
        optuna.tell(proposal, proposal.values["train.lr"])
    assert optuna.ask() is None and len(optuna.study.trials) == 4
