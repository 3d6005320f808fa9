"""The long-range study's grid: the adding problem and copy memory at growing T, the long-range
budgets with the IRNN and chrono initialisation, every other cell at T = 400; and the record of
a long-range run (the trivial baseline of each fixed set, loss relative to it, steps to solve).
"""

from __future__ import annotations

from experiments.lab import Run, runner

ADDING_LENGTHS = (50, 100, 200, 400)
COPY_LENGTHS = (50, 100, 200)


# The long-range study (issue 16): larger budgets per T than the adding/copy groups, no
# patience-based early stopping (these tasks sit at the baseline for thousands of steps before
# they drop) but a stop at the first validation pass that solves the task (loss <= 5% of the
# valid set's trivial baseline; `steps_to_solve` is that step), and the IRNN and
# chrono-initialised LSTM/GRU (chrono_t_max = T) next to the plain cells. Adam 1e-2 as the
# adding/copy groups, but the IRNN at 1e-3: at 1e-2 its ReLU recurrence with W_hh = I diverges
# within a few steps (the leaderboard's adding column).
LONG_RANGE_BUDGETS = {
    "adding": {100: 5000, 200: 8000, 400: 10000, 750: 10000},
    "copy": {100: 5000, 200: 8000, 500: 10000},
}
LONG_RANGE_MODELS = ("rnn", "irnn", "lstm", "lstm_chrono", "gru", "gru_chrono")
LONG_RANGE_LEARNING_RATES = {"irnn": 1e-3, "indrnn": 1e-3}  # ReLU recurrences diverge at 1e-2
LONG_RANGE_CELLS_LENGTH = 400  # `long_range_cells`: every other cell, adding problem at this T


def long_range_arg(
    task: str, length: int, steps: int, model: str, learning_rate: float | None = None
) -> str:
    """The config argument of one long-range run; `model` is a cell or '<cell>_chrono'; the
    rate is the config's default unless `learning_rate` or LONG_RANGE_LEARNING_RATES set it."""
    cell, _, chrono = model.partition("_") if model.endswith("_chrono") else (model, "", "")
    arg = (
        f"{task}.py:length={length},cell={cell},num_steps={steps},patience=0,stop_when_solved=True"
    )
    rate = learning_rate or LONG_RANGE_LEARNING_RATES.get(model)
    if rate:
        arg += f",learning_rate={rate:g}"
    return arg + (f",chrono_t_max={length}" if chrono else "")


def long_range_irnn_runs(rate: float = 1e-4) -> list[Run]:
    """The IRNN's rate check: the adding problem at every T with Adam `rate` (the study's 1e-3
    diverges at T = 400), named long_adding_<T>_irnn_lr<rate>."""
    budgets = LONG_RANGE_BUDGETS["adding"]
    return [
        Run(
            f"long_adding_{t}_irnn_lr{rate:g}",
            config=long_range_arg("adding", t, steps, "irnn", learning_rate=rate),
            collect=collect,
        )
        for t, steps in budgets.items()
    ]


def long_range_runs() -> list[Run]:
    return [
        Run(
            f"long_{task}_{t}_{model}",
            config=long_range_arg(task, t, steps, model),
            collect=collect,
        )
        for task, budgets in LONG_RANGE_BUDGETS.items()
        for t, steps in budgets.items()
        for model in LONG_RANGE_MODELS
    ]


# The seed check of "chrono init solves in far fewer steps" (issue 36): the gated cells with and
# without chrono initialisation on the adding problem at every T, with seeds 1 and 2 beside the
# long_range group's seed 0 (the seed draws the initial weights and the data stream alike).
LONG_RANGE_SEED_MODELS = ("lstm", "lstm_chrono", "gru", "gru_chrono")
LONG_RANGE_EXTRA_SEEDS = (1, 2)


def long_range_seed_runs() -> list[Run]:
    """long_adding_<T>_<model>_seed<s>: the long_range group's adding runs of the gated cells
    again with each of LONG_RANGE_EXTRA_SEEDS."""
    return [
        Run(
            f"long_adding_{t}_{model}_seed{seed}",
            config=long_range_arg("adding", t, steps, model) + f",seed={seed}",
            collect=collect,
        )
        for t, steps in LONG_RANGE_BUDGETS["adding"].items()
        for model in LONG_RANGE_SEED_MODELS
        for seed in LONG_RANGE_EXTRA_SEEDS
    ]


def long_range_cell_runs() -> list[Run]:
    """Every registered cell outside the long-range study on the adding problem at T = 400 with
    its budget: trained models for `gradient_flow` / `gates --models=all` beside this file."""
    import cells

    t = LONG_RANGE_CELLS_LENGTH
    steps = LONG_RANGE_BUDGETS["adding"][t]
    return [
        Run(
            f"long_adding_{t}_{cell}",
            config=long_range_arg("adding", t, steps, cell),
            collect=collect,
        )
        for cell in cells.names(grids=False)
        if cell not in LONG_RANGE_MODELS
    ]


LONG_RANGE_TASKS = ("adding", "copy", "selective_copy")


def run_config(results: dict):
    """A run record's config as a ConfigDict in today's schema (fields added since the run
    take their defaults)."""
    import ml_collections

    from train import config_base
    from train import workdir as workdir_lib

    config = config_base.base_config().to_dict()
    for group, fields in workdir_lib.upgrade(results["config"]).items():
        if isinstance(fields, dict) and isinstance(config.get(group), dict):
            config[group].update(fields)
        else:
            config[group] = fields
    return ml_collections.ConfigDict(config)


def registry_task(results: dict):
    """The task object of a run record (its data and fixed sets rebuilt from the config)."""
    from train.tasks import registry

    return registry.get_task(run_config(results))


def long_range_fields(results: dict) -> dict:
    """The trivial baseline of each fixed set, loss relative to it, solved and steps to solve.

    The sets are regenerated from the run's config (they are deterministic in the seed; schema
    fields added since the run take their defaults); "solved" is `long_range.solved`: loss <=
    5% of the same set's baseline loss.
    """
    task = registry_task(results)
    metric = task.loss_metric
    baseline = {split: task.trivial_baseline(split) for split in ("valid", "test")}
    curve = results.get("valid_curve", [])
    return {
        "baseline": baseline,
        "relative_loss": {
            split: results[split][metric] / baseline[split][metric] for split in ("valid", "test")
        },
        "steps_to_solve": next(
            (e["step"] for e in curve if metric in e and task.is_solved(e, "valid")), None
        ),
        "solved": task.is_solved(results["test"], "test"),
    }


def collect(name: str, workdir: str) -> dict:
    """The runner's record (results.json, the validation curve) + the long-range fields."""
    record = runner.collect(name, workdir)
    if record["task"] in LONG_RANGE_TASKS:
        record.update(long_range_fields(record))
    return record


def length_runs(task: str) -> list[Run]:
    """The adding or copy group: the RNN, LSTM and GRU at each T with the config's budget."""
    lengths = ADDING_LENGTHS if task == "adding" else COPY_LENGTHS
    return [
        Run(f"{task}_{t}_{cell}", config=f"{task}.py:length={t},cell={cell}", collect=collect)
        for t in lengths
        for cell in ("rnn", "lstm", "gru")
    ]


# "Inside the cells": gradient flow and gate statistics of the trained adding-problem models
# (record name -> the script's arguments). The plain cells at T = 100 / 200 / 400 are the
# `adding` group's runs; at T = 400 every cell and the chrono variants are the long-range
# study's (`long_range`, `long_range_cells`).
INSIDE = {
    "gradient_flow_T100": ("gradient_flow", "--length=100"),
    "gradient_flow_T200": ("gradient_flow", "--length=200"),
    "gradient_flow_T400": ("gradient_flow", "--length=400"),
    "gradient_flow_cells_T400": ("gradient_flow", "--length=400", "--models=all",
                                 "--run_prefix=long_adding"),
    "gates_T100": ("gates", "--length=100"),
    "gates_T200": ("gates", "--length=200"),
    "gates_cells_T400": ("gates", "--length=400", "--models=all", "--run_prefix=long_adding"),
}  # fmt: skip


def inside_runs() -> list[Run]:
    """The gradient_flow / gates commands of every committed record; each reads the trained
    models beside its own workdir (WORKDIRS/<prefix>_<T>_<model>) and fails if one is missing,
    so a group that has not trained them yet cannot leave a record without its trained rows."""
    return [
        Run(name, command=("-m", f"experiments.studies.long_range.{script}", *args,
                           "--workdirs={workdir}/..", "--require_trained", "--json={out}"))
        for name, (script, *args) in INSIDE.items()
    ]  # fmt: skip
