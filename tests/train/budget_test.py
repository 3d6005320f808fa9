"""`config.model.param_budget` (train/budget.py): the width it picks puts every registered cell
within 2% of the budget, it is refused in one line where no width fits, and a run records it."""

from __future__ import annotations

import json
import os

import pytest
import train_testing as tt
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from train_testing import compile_cache  # noqa: F401 - autouse: cached compiles

import cells
from train import budget, errors, trainer, validate

# Cell options a cell needs to be built at all (LSTMP: its projection's width; ConvLSTM: its
# grid, one position on these vector inputs).
REQUIRED_OPTIONS = {"lstmp": {"proj_size": 16}, "convlstm": {"spatial_shape": (1,)}}


def budget_config(cell: str, param_budget: int, **overrides):
    config = tt.tiny_config(**{"model.cell": cell, "model.param_budget": param_budget, **overrides})
    config.model.cell_options = REQUIRED_OPTIONS.get(cell, {})
    return config


@pytest.mark.parametrize(
    "cell, param_budget, layers",
    [(cell, 30_000, 1) for cell in cells.names()] + [("lstm", 100_000, 2), ("gru", 100_000, 2)],
)
def test_every_registered_cell_meets_the_budget_within_two_percent(cell, param_budget, layers):
    config = budget_config(cell, param_budget, **{"model.num_layers": layers})
    task_cls = validate.validate(config)
    chosen = budget.apply(config, task_cls)
    assert config.model.hidden_size == chosen["hidden_size"]
    counted = budget.count_at(config, task_cls, chosen["hidden_size"])
    assert counted == chosen["params"]
    assert abs(counted - param_budget) <= 0.02 * param_budget, chosen
    for width in (chosen["hidden_size"] - 1, chosen["hidden_size"] + 1):  # none nearer
        if width >= 1:
            assert abs(budget.count_at(config, task_cls, width) - param_budget) >= abs(
                counted - param_budget
            )


def test_a_budget_below_the_smallest_model_is_one_line():
    config = budget_config("lstm", 100)
    with pytest.raises(errors.ConfigError, match=r"param_budget=100: the smallest model .* give"):
        budget.apply(config, validate.validate(config))


def test_a_budget_between_two_widths_is_refused_naming_them():
    config = budget_config("lstm", 1)
    task_cls = validate.validate(config)
    low, high = (budget.count_at(config, task_cls, w) for w in (3, 4))
    config.model.param_budget = (low + high) // 2  # over 2% from both at these tiny widths
    with pytest.raises(errors.ConfigError, match=r"hidden_size=3: .* 4: .*give a budget nearer"):
        budget.apply(config, task_cls)


def test_a_negative_budget_is_refused():
    with pytest.raises(errors.ConfigError, match="param_budget must be >= 0"):
        validate.validate(budget_config("lstm", -5))


def test_a_run_with_a_budget_records_the_width_and_resumes(tmp_path):
    config = budget_config("gru", 5_000)
    results = trainer.train_and_evaluate(config, str(tmp_path))
    chosen = results["param_budget"]
    assert chosen["budget"] == 5_000 and results["params"] == chosen["params"]
    assert results["config"]["model"]["hidden_size"] == chosen["hidden_size"]
    with open(os.path.join(tmp_path, "config.json")) as f:
        assert json.load(f)["model"]["hidden_size"] == chosen["hidden_size"]
    # The same command again (hidden_size as the file gives it) is the same run: not refused.
    again = budget_config("gru", 5_000, **{"train.num_steps": 32})
    assert trainer.train_and_evaluate(again, str(tmp_path))["steps"] == 32


def test_the_validation_hook_sees_every_pass_and_can_stop_the_run(tmp_path):
    seen = []

    def hook(step, valid):
        seen.append((step, sorted(valid)))
        if step == 16:
            raise KeyboardInterrupt  # any exception ends the run there

    with pytest.raises(KeyboardInterrupt):
        trainer.train_and_evaluate(tt.tiny_config(), str(tmp_path / "a"), on_validation=hook)
    assert seen == [(8, ["accuracy", "loss"]), (16, ["accuracy", "loss"])]
    results = trainer.train_and_evaluate(
        tt.tiny_config(), str(tmp_path / "b"), final_splits=("valid",)
    )
    assert "valid" in results and "test" not in results
    with pytest.raises(errors.ConfigError, match="final_splits: task 'synthetic' has no split"):
        trainer.train_and_evaluate(tt.tiny_config(), str(tmp_path / "c"), final_splits=("dev",))


# Model shapes drawn at random: the budget must hold for every combination the schema accepts
# (a stack or residual blocks with or without their FFN, 1-3 layers, one or two directions, the
# heads of MNIST-1D), or be refused in one line; never a width that misses the budget silently.
_CELLS = tuple(cells.names())


@st.composite
def _budgeted_configs(draw):
    from experiments.lab import search

    task = draw(st.sampled_from(("synthetic", "mnist1d")))
    cell = draw(st.sampled_from(_CELLS))
    if task == "synthetic":
        config = budget_config(cell, 1)
        config.model.num_layers = draw(st.integers(1, 3))
        config.model.block = draw(st.sampled_from(("stack", "residual")))
        if config.model.block == "residual":
            config.model.block_ffn_factor = draw(st.sampled_from((0.0, 2.0)))
            config.model.block_norm = draw(st.sampled_from(("rms", "layer")))
    else:
        head = draw(st.sampled_from(("mean", "last", "flatten")))
        bidirectional = draw(st.booleans())
        config = search.load_config(
            f"mnist1d.py:cell={cell},head={head},bidirectional={bidirectional}"
        )
        config.model.num_layers = draw(st.integers(1, 2))
    config.model.param_budget = draw(st.integers(2_000, 60_000))
    return config


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(config=_budgeted_configs())
def test_any_accepted_model_shape_meets_the_budget_or_is_refused_in_one_line(config):
    try:
        task_cls = validate.validate(config)
        chosen = budget.apply(config, task_cls)
    except errors.ConfigError as e:
        assert "\n" not in str(e) and str(e).startswith("config.model."), str(e)
        return
    budget_n, width = config.model.param_budget, chosen["hidden_size"]
    assert config.model.hidden_size == width
    counts = {w: budget.count_at(config, task_cls, w) for w in (width - 1, width, width + 1) if w}
    assert counts[width] == chosen["params"]
    assert abs(counts[width] - budget_n) <= budget.TOLERANCE * budget_n, chosen
    assert all(abs(c - budget_n) >= abs(counts[width] - budget_n) for c in counts.values())
    assert list(counts.values()) == sorted(counts.values())  # the bisection's premise
