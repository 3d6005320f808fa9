"""Equal-parameter budgets: `config.model.param_budget = N` picks the width.

Comparing cells at the same `hidden_size` gives an LSTM four times the recurrent weights of an
Elman RNN and a minGRU a fraction of them. With a budget, each cell gets the width at which the
whole model (embeddings, every layer, the head) has as many parameters as N allows:

    H* = the width H whose count P(H) is nearest N           (ties: the smaller H)
    accepted when |P(H*) - N| <= TOLERANCE * N                (refused in one line otherwise)

P(H) is counted, not estimated: the task builds its model at width H and `jax.eval_shape`
traces the initialisation (no arrays are allocated). P is non-decreasing in H for every
registered task and cell (each layer's matrices grow with H), so a bisection finds the two
widths around N in about log2(N) counts. H runs over the widths the model accepts: multiples
of `task_cls.width_unit` (the cell's `num_heads` option, 1 without it; a GPT's heads), from the
smallest it builds (1; the mLSTM's head norm needs 2 units per head). The chosen width
replaces `config.model.hidden_size` before the workdir records the config, so config.json and
results.json hold the width that ran; results.json's 'param_budget' entry records the budget,
the width and the count.
"""

from __future__ import annotations

import jax

from train import models
from train.errors import ConfigError

TOLERANCE = 0.02  # the largest |P - N| / N accepted
_MAX_WIDTH = 1 << 16  # no budget this code base trains needs a wider layer


def count_at(config, task_cls, width: int) -> int:
    """The model's parameter count with `config.model.hidden_size = width` (config unchanged)."""
    trial = config.copy_and_resolve_references()
    with trial.unlocked():
        trial.model.hidden_size = width
    task = task_cls(trial)
    params = jax.eval_shape(task.init_params, jax.random.key(0))
    return models.count_params(params)


def _smallest_width(count, unit: int) -> int:
    """The smallest multiple of `unit` the cell accepts (the mLSTM's head norm needs two units
    per head), trying them with `count`: ConfigError from the cell itself when none of the
    first four is."""
    for k in range(1, 4):
        try:
            count(unit * k)
            return unit * k
        except ConfigError:
            continue
    count(unit * 4)  # raises the cell's own one-line error, or passes
    return unit * 4


def choose_width(config, task_cls) -> dict:
    """{'budget', 'hidden_size', 'params', 'deviation'} for config.model.param_budget.

    Widths are multiples of the cell's `num_heads` option (1 without it), from the smallest
    width the cell accepts. Raises ConfigError when no width comes within TOLERANCE of the
    budget (the two nearest widths and their counts are named, so the user can pick a budget
    that fits).
    """
    budget = int(config.model.param_budget)
    unit = task_cls.width_unit(config)
    cache: dict[int, int] = {}

    def count(width: int) -> int:
        if width not in cache:
            cache[width] = count_at(config, task_cls, width)
        return cache[width]

    first = _smallest_width(count, unit)

    if count(first) > budget:
        raise ConfigError(
            f"config.model.param_budget={budget}: the smallest model ({config.model.cell}, "
            f"hidden_size={first}) already has {count(first):,} parameters; give a budget >= "
            f"{count(first)}."
        )
    if count(first + unit) == count(first):
        raise ConfigError(
            f"config.model.param_budget={budget}: the model of task {config.task!r} does not "
            "grow with config.model.hidden_size, so no width can meet a budget; leave it at 0."
        )
    low, high = first, first + unit
    while count(high) <= budget:  # grow until the count passes the budget
        low, high = high, first + 2 * (high - first)
        if high > _MAX_WIDTH:
            raise ConfigError(
                f"config.model.param_budget={budget} needs a width beyond {_MAX_WIDTH:,}; "
                "give a smaller budget."
            )
    while high - low > unit:  # count(low) <= budget < count(high)
        middle = low + (high - low) // (2 * unit) * unit
        if count(middle) <= budget:
            low = middle
        else:
            high = middle
    width = min((low, high), key=lambda w: (abs(count(w) - budget), w))
    deviation = (count(width) - budget) / budget
    if abs(deviation) > TOLERANCE:
        raise ConfigError(
            f"config.model.param_budget={budget}: no width of {config.model.cell!r} comes "
            f"within {TOLERANCE:.0%} (hidden_size={low}: {count(low):,} parameters, "
            f"{high}: {count(high):,}); give a budget nearer one of those."
        )
    return {"budget": budget, "hidden_size": width, "params": count(width), "deviation": deviation}


def apply(config, task_cls) -> dict | None:
    """Sets config.model.hidden_size to the budget's width (when param_budget > 0); returns
    `choose_width`'s record, or None without a budget."""
    if not config.model.get("param_budget", 0):
        return None
    chosen = choose_width(config, task_cls)
    config.model.hidden_size = chosen["hidden_size"]
    return chosen
