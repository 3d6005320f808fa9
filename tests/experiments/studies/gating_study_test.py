"""The gating study's grid: every search it would launch is accepted before any training (its
config, fixed fields, space and metric), every cell meets the task's parameter budget within
2%, and the tables render from a record in the shape `search` writes."""

from __future__ import annotations

import pytest

from experiments.lab import search
from experiments.lab import study as study_lib
from experiments.studies.gating import study as gating
from train import budget, trainer, validate


def _search_of(run) -> search.Search:
    """The Search a run's command line would build (without running it)."""
    args = list(run.command[3:])  # after '-m experiments search'
    config, options = args[0], {}
    overrides = []
    for arg in args[1:]:
        key, _, value = arg[2:].partition("=")
        if key == "set":
            overrides.append(value)
        else:
            options[key] = value
    return search.Search(
        config=config, space=options["space"], trials=int(options["trials"]),
        overrides=tuple(overrides), pruner=options["pruner"], name=options["name"],
        out="/nonexistent", study_module=gating,
    )  # fmt: skip


@pytest.mark.parametrize("task", list(gating.TASKS))
def test_every_search_of_the_study_is_accepted_and_every_cell_meets_the_budget(task):
    runs = study_lib.load("gating").runs(task, "unused")
    assert [r.name for r in runs] == [f"{task}_{cell}" for cell in gating.TASKS[task].cells]
    first = _search_of(runs[0])  # the whole check (config, space, metric) for one cell
    assert first.metric == first.base.train.best_metric
    # the table's test metric is one the task reports (a wrong name would print '–')
    assert gating.TASKS[task].metric in trainer.validation_metric_names(first.base)
    for run in runs:  # the budget for every cell
        config = first.base.copy_and_resolve_references()
        cell = next(a for a in run.command if a.startswith("--set=model.cell=")).split("=")[-1]
        config.model.cell = cell
        chosen = budget.choose_width(config, validate.validate(config))
        assert abs(chosen["deviation"]) <= budget.TOLERANCE, (cell, chosen)


def test_a_space_field_a_cell_lacks_is_left_out_for_that_cell():
    runs = {r.name: r for r in study_lib.load("gating").runs("adding", "unused")}
    assert _search_of(runs["adding_gru"]).not_applicable == []
    assert _search_of(runs["adding_mgu"]).not_applicable == ["model.cell_options.chrono_t_max"]
    assert "model.cell_options.chrono_t_max" in _search_of(runs["adding_lstm"]).fields


def test_the_tables_render_a_search_record(tmp_path):
    record = {
        "search": {"fields": {"optim.learning_rate": "log-uniform"}},
        "best_trial": {"params": {"optim.learning_rate": 0.003}, "hidden_size": 38,
                       "num_params": 9994},
        "trials": [{"state": "COMPLETE"}, {"state": "PRUNED"}, {"state": "FAIL", "diverged": "nan"},
                   {"state": "FAIL", "stopped": True}, {"state": "COMPLETE"}],
        "rerun_summary": {"test": {"accuracy": {"values": [0.9, 0.92, 0.91]}}},
        "reruns": [{"steps": 2000, "train_time_s": 40.0}],
        "importance": {"fanova": {"optim.learning_rate": 1.0}, "trials": 6},
        "search_wall_time_s": 600.0,
        "rerun_wall_time_s": 120.0,
    }  # fmt: skip
    table = gating.task_table("mnist1d", {"mnist1d_gru": record})
    row = next(line for line in table.splitlines() if line.startswith("| `gru`"))
    assert "91.00 ± 1.00%" in row and "38 / 9,994" in row and "learning_rate 0.003" in row
    assert "4 (1 pruned, 1 diverged, 1 interrupted and retried)" in row and "200,000" in row
    assert "| `lstm` | not run yet |" in table
    importance = gating.importance_table("mnist1d", {"mnist1d_gru": record})
    assert "| `gru` | 6 | 1.00 |" in importance


def test_a_search_with_no_complete_trial_is_a_row_not_a_crash():
    record = {
        "search": {"fields": {"optim.learning_rate": "log-uniform"}},
        "best_trial": None,
        "trials": [{"state": "FAIL", "hidden_size": 75, "diverged": "non-finite loss"}] * 2,
        "rerun_summary": {"valid": {}, "test": {}},
        "reruns": [],
        "importance": {"note": "0 completed trials: too few for fANOVA (4 or more)"},
        "search_wall_time_s": 60.0,
        "rerun_wall_time_s": 0.0,
    }  # fmt: skip
    table = gating.task_table("adding", {"adding_irnn": record})
    row = next(line for line in table.splitlines() if line.startswith("| `irnn`"))
    assert "| – | 0 of 2 | 75 / – | no trial completed | 2 (0 pruned, 2 diverged) |" in row


def test_a_task_with_a_solved_stop_shows_the_trials_and_reruns_that_solved_it():
    record = {
        "search": {"fields": {"optim.learning_rate": "log-uniform"}},
        "best_trial": {"params": {"optim.learning_rate": 0.02}, "hidden_size": 43,
                       "num_params": 6021},
        "trials": [{"state": "COMPLETE", "stopped_early": True, "steps": 400},
                   {"state": "COMPLETE", "stopped_early": False, "steps": 3000},
                   {"state": "FAIL", "stopped": True},  # interrupted, then retried below
                   {"state": "COMPLETE", "stopped_early": True, "steps": 1200}],
        "rerun_summary": {"test": {"mse": {"values": [0.001, 0.002, 0.003]}}},
        "reruns": [{"steps": 200, "stopped_early": True}, {"steps": 3000, "stopped_early": False},
                   {"steps": 1500, "stopped_early": True}],
        "importance": {},
        "search_wall_time_s": 60.0,
        "rerun_wall_time_s": 6.0,
    }  # fmt: skip
    row = next(
        line
        for line in gating.task_table("adding", {"adding_gru": record}).splitlines()
        if line.startswith("| `gru`")
    )
    assert "| 2 of 3; 200, –, 1,500 | 43 / 6,021 |" in row
    assert "solved" not in gating.task_table("mnist1d", {}).splitlines()[0]  # no solved-stop


def test_the_headline_ranks_only_finished_tasks(tmp_path):
    """A task names its best cell once every cell's search has its reruns, not before."""
    import json

    task = gating.TASKS["adding"]
    scores = {cell: 0.01 * (k + 1) for k, cell in enumerate(task.cells)}

    def write(cell):
        stats = {"mean": scores[cell], "values": [scores[cell]] * 3}
        record = {"rerun_summary": {"test": {task.metric: stats}}}
        (tmp_path / f"adding_{cell}.json").write_text(json.dumps(record))

    write(task.cells[-1])
    assert gating.headline(str(tmp_path))["ours"] == "searches under way"
    for cell in task.cells:
        write(cell)
    assert f"Adding problem {task.cells[0]} " in gating.headline(str(tmp_path))["ours"]
