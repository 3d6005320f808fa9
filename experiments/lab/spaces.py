"""Search spaces: named sets of config fields and the ranges a search draws them from.

    SPACES = {"lr": {"optim.learning_rate": LogUniform(1e-4, 1e-1)}}

A space maps a dotted config field to a range: `LogUniform(low, high)` (drawn uniformly in
log(x): learning rates, the usual choice since Bergstra & Bengio 2012), `Uniform(low, high)`,
`Choice(a, b, ...)` and `IntRange(low, high)`. A space may also be a function of the base config
(`space(config) -> dict`), for ranges that depend on the task, such as chrono initialisation's
T_max = the sequence length. A field under `model.cell_options.` applies only to cells that take
that option (the forget-gate bias of the LSTM family, say): for other cells the search leaves it
out and records it as not applicable, so every cell searches the part of the space it has.

Spaces live where they are used: a config file's `SEARCH_SPACES`, a study's `SEARCH_SPACES`
(`experiments/studies/<name>/study.py`), or the shared ones below, looked up in that order
(`experiments/lab/search.py`). This module imports nothing heavy, so config files can import it.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any


@dataclasses.dataclass(frozen=True)
class LogUniform:
    """A float drawn uniformly in log space from [low, high] (low > 0)."""

    low: float
    high: float

    def __post_init__(self):
        if not 0 < self.low < self.high:
            raise ValueError(f"LogUniform({self.low}, {self.high}): need 0 < low < high")

    def describe(self) -> str:
        return f"log-uniform [{self.low:g}, {self.high:g}]"


@dataclasses.dataclass(frozen=True)
class Uniform:
    """A float drawn uniformly from [low, high]."""

    low: float
    high: float

    def __post_init__(self):
        if not self.low < self.high:
            raise ValueError(f"Uniform({self.low}, {self.high}): need low < high")

    def describe(self) -> str:
        return f"uniform [{self.low:g}, {self.high:g}]"


@dataclasses.dataclass(frozen=True)
class IntRange:
    """An integer drawn uniformly from {low, ..., high}."""

    low: int
    high: int

    def __post_init__(self):
        if not self.low <= self.high:
            raise ValueError(f"IntRange({self.low}, {self.high}): need low <= high")

    def describe(self) -> str:
        return f"integer {self.low} .. {self.high}"


class Choice:
    """One of the given values (numbers, strings, booleans or None), each equally likely."""

    def __init__(self, *values):
        if not values:
            raise ValueError("Choice() needs at least one value")
        self.values = tuple(values)

    def __eq__(self, other):
        return isinstance(other, Choice) and self.values == other.values

    def __hash__(self):
        return hash(self.values)

    def __repr__(self):
        return f"Choice{self.values!r}"

    def describe(self) -> str:
        return "one of " + ", ".join(map(repr, self.values))


Range = LogUniform | Uniform | IntRange | Choice
Space = dict[str, Range] | Callable[[Any], dict[str, Range]]

CELL_OPTIONS = "model.cell_options."

# The shared spaces. 'lr': the learning rate alone, the dimension that matters most in
# Greff et al. 2017 (fANOVA: about two thirds of the variance). 'training': the learning rate,
# gradient clipping and the forget-gate bias (LSTM family and MGU: Jozefowicz et al. 2015 found
# a bias of 1 closes much of the LSTM's gap to the GRU).
SPACES: dict[str, Space] = {
    "lr": {"optim.learning_rate": LogUniform(1e-4, 1e-1)},
    "training": {
        "optim.learning_rate": LogUniform(1e-4, 1e-1),
        "optim.grad_clip_norm": Choice(0.0, 1.0, 5.0),
        CELL_OPTIONS + "forget_bias": Choice(0.0, 1.0, 3.0),
    },
}


def describe(space: dict[str, Range]) -> dict[str, str]:
    """field -> a short description of its range, for records and reports."""
    return {field: spec.describe() for field, spec in space.items()}
