"""Tests for train/time_budget.py and the loop's time budget: the plan, the schedule laid over
it, resuming to the same step, and the guard that stops a run at its budget."""

from __future__ import annotations

import json
import os

import pytest
import train_testing as tt
from train_testing import compile_cache  # noqa: F401 - autouse: cached compiles

from train import checkpoint, errors, time_budget, trainer, validate

BUDGET = {"train.time_budget_minutes": 0.5, "train.eval_every": 10, "train.checkpoint_every": 10}


def fixed_speed(seconds_per_step: float):
    """A stand-in for `time_budget.measure` that reports a chosen speed."""

    def measure(train_step, state, batches, to_device):
        return {"seconds_per_step": seconds_per_step, "probe_steps": 3, "probe_s": 0.0,
                "compile_s": 0.0}  # fmt: skip

    return measure


class Interrupt(Exception):
    pass


def test_planned_steps_is_the_budget_over_the_speed():
    assert time_budget.planned_steps(60.0, 0.25) == 240
    assert time_budget.planned_steps(1.0, 5.0) == 1  # at least one step
    plan = time_budget.plan(2, {"seconds_per_step": 0.5, "probe_steps": 4, "probe_s": 2.0,
                                "compile_s": 1.0})  # fmt: skip
    assert plan["budget_s"] == 120.0 and plan["planned_steps"] == 240


def test_a_measured_plan_sets_the_steps_and_the_schedule(tmp_path, monkeypatch):
    monkeypatch.setattr(time_budget, "PROBE_SECONDS", 1.0)  # the test's time, not a real probe's
    config = tt.tiny_config(**{**BUDGET, "train.time_budget_minutes": 0.02,
                               "optim.schedule": "cosine"})  # fmt: skip
    results = trainer.train_and_evaluate(config, str(tmp_path))
    record = results["time_budget"]
    assert record["budget_s"] == pytest.approx(1.2)
    assert record["probe_steps"] >= time_budget.MIN_PROBE_STEPS
    assert results["num_steps"] == record["planned_steps"]
    if not record["stopped_at_budget"]:
        assert results["steps"] == record["planned_steps"]
    # The cosine schedule was laid over the plan: its last logged rate is near 0.
    events = [json.loads(line) for line in open(os.path.join(tmp_path, "metrics.jsonl"))]
    last_lr = [e["lr"] for e in events if e.get("split") == "train"][-1]
    assert last_lr < 0.05 * config.optim.learning_rate or record["stopped_at_budget"]


def test_a_resumed_run_ends_at_the_same_step_as_an_uninterrupted_one(tmp_path, monkeypatch):
    # 0.5 min at a stated 0.75 s/step: 40 planned steps (the tiny model runs them in well under
    # the budget, so the guard never stops either run).
    monkeypatch.setattr(time_budget, "measure", fixed_speed(0.75))
    config = tt.tiny_config(**BUDGET)
    reference = trainer.train_and_evaluate(config, str(tmp_path / "a"))
    assert reference["steps"] == 40 and not reference["time_budget"]["stopped_at_budget"]

    def stop_at_20(step, metrics):
        if step == 20:
            raise Interrupt

    workdir = str(tmp_path / "b")
    with pytest.raises(Interrupt):
        trainer.train_and_evaluate(tt.tiny_config(**BUDGET), workdir, on_validation=stop_at_20)
    assert checkpoint.Checkpoints(workdir).steps()[-1] == 20
    # A different speed now: the resumed run keeps the plan its checkpoint holds.
    monkeypatch.setattr(time_budget, "measure", fixed_speed(0.01))
    resumed = trainer.train_and_evaluate(tt.tiny_config(**BUDGET), workdir)
    assert resumed["resumed_from_step"] == 20
    assert resumed["steps"] == reference["steps"] == resumed["time_budget"]["planned_steps"]
    tt.assert_trees_equal(tt.params_of(workdir), tt.params_of(str(tmp_path / "a")))
    assert resumed["valid"] == reference["valid"]
    # The clock carried over: each invocation's first step counts at the planned 0.75 s, and
    # the resumed run's total holds both.
    assert resumed["time_budget"]["train_s"] >= 2 * 0.75


def test_the_guard_stops_a_run_at_its_budget_and_a_rerun_adds_nothing(tmp_path, monkeypatch):
    # A stated speed far above the real one plans more steps than the budget holds.
    monkeypatch.setattr(time_budget, "measure", fixed_speed(1e-6))
    overrides = {**BUDGET, "train.time_budget_minutes": 0.01}
    first = trainer.train_and_evaluate(tt.tiny_config(**overrides), str(tmp_path))
    record = first["time_budget"]
    assert record["stopped_at_budget"] and first["steps"] < record["planned_steps"]
    assert record["train_s"] >= 0.6
    again = trainer.train_and_evaluate(tt.tiny_config(**overrides), str(tmp_path))
    assert again["steps"] == first["steps"]


def test_a_budget_with_epochs_is_refused_in_one_line():
    config = tt.tiny_config(**{"train.time_budget_minutes": 1.0, "train.num_epochs": 2})
    with pytest.raises(errors.ConfigError, match="both set the run's length"):
        validate.validate(config)
