"""`python -m experiments search` (experiments/lab/search.py) on the embedded SQLite storage: a
tiny search end to end, its record, resuming and extending it, retrying a stopped trial, and
the one-line refusals. The shared PostgreSQL storage: lab_search_postgres_test.py."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import optuna
import pytest

from experiments import __main__ as cli
from experiments.lab import records, search

# The synthetic task shrunk to seconds per trial (tests/train/train_testing.py's TINY).
TINY = (
    "model.hidden_size=8",
    "model.embed_size=8",
    "data.steps_per_epoch=6",
    "data.eval_windows=2",
    "train.num_steps=24",
    "train.batch_size=8",
    "train.seq_len=5",
    "train.log_every=8",
    "train.eval_every=8",
    "train.checkpoint_every=8",
    "eval.batch_size=8",
)


def tiny_search(out, trials=3, **kwargs) -> search.Search:
    return search.Search(
        config="synthetic.py", space="lr", trials=trials, overrides=TINY, out=str(out),
        seeds=(0, 1), **kwargs,
    )  # fmt: skip


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    out = tmp_path_factory.mktemp("search")
    record = tiny_search(out).run()
    return out, record


def test_a_search_records_its_trials_and_reruns_the_best_with_each_seed(finished):
    out, record = finished
    assert record == records.read(os.path.join(out, "search.json"))
    trials = record["trials"]
    assert [t["number"] for t in trials] == [0, 1, 2]
    complete = [t for t in trials if t["state"] == "COMPLETE"]
    best = min(complete, key=lambda t: t["value"])
    assert record["best_trial"]["number"] == best["number"]
    for t in trials:  # the trials never see the test set
        assert "test" not in t and set(t["params"]) == {"optim.learning_rate"}
        config = json.load(open(os.path.join(out, "trials", f"{t['number']:04d}", "config.json")))
        assert config["optim"]["learning_rate"] == t["params"]["optim.learning_rate"]
    seeds = sorted(r["params"]["seed"] for r in record["reruns"])
    assert seeds == [0, 1]
    for rerun in record["reruns"]:  # the reruns: the best's fields, each seed, scored on test
        workdir = os.path.join(out, "reruns", f"best{best['number']}_seed{rerun['params']['seed']}")
        results = records.read(os.path.join(workdir, "results.json"))
        assert results["config"]["seed"] == rerun["params"]["seed"]
        assert results["config"]["optim"]["learning_rate"] == best["params"]["optim.learning_rate"]
        assert rerun["test"] == results["test"]
    losses = [r["test"]["loss"] for r in record["reruns"]]
    assert record["rerun_summary"]["test"]["loss"]["values"] == losses
    assert record["search"]["fields"] == {"optim.learning_rate": "log-uniform [0.0001, 0.1]"}
    assert record["storage"].startswith("sqlite:///") and record["git_commit"]
    # the commit the trials trained at (a record rewritten later may be written at another)
    assert [c["git_commit"] for c in record["trained_at"]] == [record["git_commit"]]


def test_the_same_command_resumes_and_a_larger_budget_adds_only_the_missing_trials(finished):
    out, record = finished
    again = tiny_search(out).run()  # complete: nothing trains again
    assert [t["number"] for t in again["trials"]] == [0, 1, 2]
    more = tiny_search(out, trials=4).run()
    assert [t["number"] for t in more["trials"]] == [0, 1, 2, 3]
    assert more["trials"][:3] == record["trials"]


def test_a_trial_stopped_by_a_signal_is_retried_with_its_fields_and_workdir(tmp_path):
    s = tiny_search(tmp_path, trials=2)
    study = s.open()
    distribution = optuna.distributions.FloatDistribution(1e-4, 1e-1, log=True)
    study.add_trial(optuna.trial.create_trial(
        state=optuna.trial.TrialState.FAIL, params={"optim.learning_rate": 0.0123},
        distributions={"optim.learning_rate": distribution}, user_attrs={"stopped": True},
    ))  # fmt: skip
    record = s.run()
    retried = [t for t in record["trials"] if t["params"] == {"optim.learning_rate": 0.0123}]
    assert [t["state"] for t in retried] == ["FAIL", "COMPLETE"]
    assert retried[1]["workdir"].endswith(os.path.join("trials", "0000"))
    assert sum(t["state"] == "COMPLETE" for t in record["trials"]) == 2


def test_a_search_whose_every_trial_diverges_is_recorded_without_reruns(tmp_path, monkeypatch):
    from train import trainer

    def diverge(config, workdir, **kwargs):
        inside = os.path.join(records.ROOT, "workdirs", "s", "checkpoints")
        raise trainer.NonFiniteError(f"non-finite loss at step 2; no checkpoint in {inside}")

    monkeypatch.setattr(trainer, "train_and_evaluate", diverge)
    record = tiny_search(tmp_path, trials=2).run()
    assert [t["state"] for t in record["trials"]] == ["FAIL", "FAIL"]
    assert all(t["diverged"].startswith("non-finite") for t in record["trials"])
    # the message names the repository's folders relatively, no machine's
    assert record["trials"][0]["diverged"].endswith(" in workdirs/s/checkpoints")
    assert record["best_trial"] is None and record["reruns"] == []
    assert record["rerun_summary"] == {"valid": {}, "test": {}}
    assert "no trial completed" in "\n".join(search.summary_lines(record))
    assert tiny_search(tmp_path, trials=2).run()["trials"] == record["trials"]  # nothing reruns


def test_a_budget_and_a_cell_option_space_apply_per_cell(tmp_path):
    s = search.Search(config="synthetic.py", space="training", trials=1, out=str(tmp_path),
                      overrides=(*TINY, "model.cell=gru"))  # fmt: skip
    assert s.not_applicable == ["model.cell_options.forget_bias"]
    assert set(s.fields) == {"optim.learning_rate", "optim.grad_clip_norm"}
    s = search.Search(config="synthetic.py", space="training", trials=1, out=str(tmp_path),
                      overrides=(*TINY, "model.cell=lstm"))  # fmt: skip
    assert s.not_applicable == [] and "model.cell_options.forget_bias" in s.fields


def _error(*args) -> str:
    with pytest.raises(SystemExit) as e:
        cli.main(["search", "synthetic.py", *args])
    return str(e.value.code)


@pytest.mark.parametrize(
    "args, message",
    [
        (("--space=nope", "--trials=2"), "--space='nope': no such search space; valid: lr, "),
        (("--space=lr", "--trials=0"), "--trials=0: give 1 or more"),
        (
            ("--space=lr", "--trials=2", "--metric=bleu"),
            "--metric='bleu': task 'synthetic' reports no such validation metric; valid: ",
        ),
        (
            ("--space=lr", "--trials=2", "--set=model.widht=3"),
            "--set model.widht=3: the config has no field 'model.widht'",
        ),
        (("--space=lr", "--trials=2", "--set=model.cell=nocell"), "config.model.cell"),
        (
            ("--space=lr", "--trials=2", "--storage=redis://x"),
            "--storage='redis://x': give an SQLAlchemy database URL",
        ),
        (
            ("--space=lr", "--trials=2", "--storage=postgresql://u:secret@127.0.0.1:9/db"),
            "--storage=postgresql+psycopg://u:***@127.0.0.1:9/db: cannot open it: ",
        ),
        (("--space=lr", "--trials=2", "--pruner=hyperband"), "--pruner='hyperband': valid: "),
        (("--space=lr", "--trials=2", "--seeds=0,x"), "--seeds='0,x': give integers"),
        (("--space=lr", "--trials=2", "--jobs=0"), "--jobs=0: give 1 or more"),
    ],
)
def test_bad_input_is_one_line(args, message, tmp_path):
    text = _error(*args, f"--out={tmp_path}")
    assert message in text and "\n" not in text and "secret" not in text, text


def test_a_config_that_does_not_exist_is_one_line_on_the_command_line():
    result = subprocess.run(
        [sys.executable, "-m", "experiments", "search", "nope.py", "--space=lr", "--trials=1"],
        cwd=records.ROOT, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert result.returncode != 0
    assert result.stderr.strip().splitlines() == [
        "experiments: config 'nope.py': no config file 'experiments/configs/nope.py'"
    ]


def test_joining_a_study_with_another_search_is_refused(tmp_path):
    tiny_search(tmp_path, name="shared").open()
    other = search.Search(config="synthetic.py", space="training", trials=1, out=str(tmp_path),
                          overrides=TINY, name="shared")  # fmt: skip
    with pytest.raises(search.SearchError, match="is another search"):
        other.open()


def test_a_record_names_its_sqlite_file_relative_to_the_repository():
    inside = os.path.join(records.ROOT, "workdirs", "s", "search.db")
    assert search.recorded_url(f"sqlite:///{inside}") == "sqlite:///workdirs/s/search.db"
    assert search.recorded_url("sqlite:////elsewhere/search.db") == "sqlite:////elsewhere/search.db"
    shown = search.recorded_url("postgresql+psycopg://u:secret@host:5432/db")
    assert shown == "postgresql+psycopg://u:***@host:5432/db"
