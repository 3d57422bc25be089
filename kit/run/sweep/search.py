"""Which variants a sweep runs: every combination of the grid, N of them sampled (seeded), or
Optuna trials asked one at a time and told their metric (ask-and-tell)."""

from __future__ import annotations

import itertools
import json
import random as random_module
from dataclasses import dataclass
from typing import Any

from kit.run.sweep.settings import Axis, Settings


@dataclass
class Proposal:
    number: int  # 1-based, in the order variants are started
    values: dict[str, Any]  # "step.param" -> value, as written (the loader coerces it)
    trial: Any = None  # the Optuna trial, told the variant's metric when it ends


class Grid:
    """Every combination, in the order the axes and their values were written."""

    def __init__(self, settings: Settings):
        names = [axis.name for axis in settings.axes]
        self.pending = [dict(zip(names, combo)) for combo in itertools.product(*(a.values for a in settings.axes))]
        self.total = len(self.pending)
        self.started = 0
        self.note = f"grid: {self.total} variant{'s' if self.total != 1 else ''}"

    def ask(self) -> Proposal | None:
        if not self.pending:
            return None
        self.started += 1
        return Proposal(self.started, self.pending.pop(0))

    def tell(self, proposal: Proposal, value: float | None) -> None:
        pass


class Sample(Grid):
    """`--random N`: N distinct combinations of the grid, drawn with the seed (all of them if N is larger)."""

    def __init__(self, settings: Settings):
        super().__init__(settings)
        size = len(self.pending)
        chosen = sorted(random_module.Random(settings.seed).sample(range(size), min(settings.count, size)))
        self.pending = [self.pending[i] for i in chosen]
        self.total = len(self.pending)
        self.note = (f"random: {self.total} of {size} grid variants, seed {settings.seed}"
                     + (f" (asked for {settings.count})" if settings.count > size else ""))


class Optuna:
    """Optuna's ask-and-tell: each trial's parameters come from the sampler (TPE, seeded); grid values
    are categorical choices, LOW..HIGH ranges numeric distributions (floats on a log scale when LOW > 0)."""

    def __init__(self, settings: Settings):
        import optuna

        optuna.logging.set_verbosity(optuna.logging.WARNING)  # the sweep's own table says what happened
        self.optuna = optuna
        self.axes = settings.axes
        self.study = optuna.create_study(direction="maximize" if settings.direction == "max" else "minimize",
                                         sampler=optuna.samplers.TPESampler(seed=settings.seed))
        self.distributions = {axis.name: _distribution(optuna, axis) for axis in self.axes}
        self.total = settings.count
        self.started = 0
        self.note = f"optuna: {self.total} trials, TPE sampler, seed {settings.seed}"

    def ask(self) -> Proposal | None:
        if self.started >= self.total:
            return None
        trial = self.study.ask(self.distributions)
        values = {axis.name: _value(axis, trial.params[axis.name]) for axis in self.axes}
        self.started += 1
        return Proposal(self.started, values, trial)

    def tell(self, proposal: Proposal, value: float | None) -> None:
        state = self.optuna.trial.TrialState.COMPLETE if value is not None else self.optuna.trial.TrialState.FAIL
        self.study.tell(proposal.trial, value, state=state)


def _choice(value: Any) -> Any:
    """Optuna's categorical choices are None, bool, int, float or str: a list or dict goes as its JSON."""
    return value if value is None or isinstance(value, (bool, int, float, str)) else json.dumps(value)


def _distribution(optuna, axis: Axis):
    if axis.range is None:
        return optuna.distributions.CategoricalDistribution([_choice(v) for v in axis.values])
    if axis.range.is_int:
        return optuna.distributions.IntDistribution(axis.range.low, axis.range.high)
    return optuna.distributions.FloatDistribution(axis.range.low, axis.range.high, log=axis.range.log)


def _value(axis: Axis, chosen: Any) -> Any:
    if axis.range is not None:
        return chosen
    return next(v for v in axis.values if _choice(v) == chosen)


def chooser(settings: Settings):
    return {"grid": Grid, "random": Sample, "optuna": Optuna}[settings.search](settings)
