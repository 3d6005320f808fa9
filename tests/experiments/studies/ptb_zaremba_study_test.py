"""The PTB study: its tables come from result files only, its groups name the committed runs,
and lm_record builds an LM run's record (finished or not) and times a config."""

import json
import os
import sys
import types

import pytest

from experiments.lab import records
from experiments.studies.ptb_zaremba import grid, lm_record, render, study

RESULTS = os.path.join(records.STUDIES_DIR, "ptb_zaremba", "results")


def _record(name, cell, lr, test_ppl, status="complete", note=""):
    return {
        "task": "lm",
        "name": name,
        "status": status,
        "note": note,
        "params": 1234,
        "epochs": 13.0,
        "steps": 30199,
        "config": {"model": {"cell": cell}, "optim": {"learning_rate": lr}},
        "valid": {"perplexity": test_ppl + 5.0, "loss": 4.8},
        "test": {"perplexity": test_ppl, "loss": 4.7},
        "train_tokens_per_s": 2000.0,
        "train_time_s": 3725.0,
        "hardware": {"cpu": "cpu", "cpu_count": 2},
        "git_commit": "abcdef1234567",
        "command": f"python -m train.main --workdir=workdirs/{name}",
    }


def _write(directory, records_):
    for record in records_:
        (directory / f"{record['name']}.json").write_text(json.dumps(record))


def test_rows_come_from_the_files(tmp_path):
    _write(tmp_path, [_record("ptb_small_lstm", "lstm", 1.0, 114.55),
                      _record("ptb_small_rnn_lr0.25", "rnn", 0.25, 150.0)])  # fmt: skip
    (tmp_path / "ptb_small_rnn_lr_probe.json").write_text(json.dumps({"train_loss": {}}))
    runs = render.load(str(tmp_path))
    assert list(runs) == ["ptb_small_lstm", "ptb_small_rnn_lr0.25"]  # not the side file
    table = render.runs_table(runs)
    assert "| ptb_small_rnn_lr0.25 | rnn | 0.25 | 1,234 | 13.00 | 155.00 | 150.00 |" in table
    assert "| ptb_small_lstm | lstm | 1 | 1,234 |" in table
    assert "120.7 / 114.5" in table  # the paper column, LSTM rows only
    assert table.count("120.7 / 114.5") == 1
    assert "1:02:05" in table  # 3725 s of training
    assert "test perplexity 114.55 vs the paper's 114.5 (+0.0%" in render.versus_paper(runs)


def _search_files(directory, valid):
    """ptb_lr_<cell>_<rate>.json files: a number is a finished run's valid ppl, None a run
    that diverged (the record the lab runner writes)."""
    for (cell, rate), ppl in valid.items():
        name = grid.ptb_search_name(cell, rate)
        if ppl is None:
            record = {"name": name, "status": "diverged", "error": "non-finite loss at step 7"}
        else:
            record = _record(name, cell, rate, ppl - 5.0)
        (directory / f"{name}.json").write_text(json.dumps(record))


def test_search_table_picks_the_lowest_validation_perplexity(tmp_path):
    valid = {("rnn", 0.25): 160.0, ("rnn", 0.5): None, ("rnn", 1.0): None}
    valid |= {("gru", 0.25): 190.0, ("gru", 0.5): 170.0, ("gru", 1.0): 175.0}
    _search_files(tmp_path, valid)
    _write(tmp_path, [_record("ptb_small_rnn_lr0.25", "rnn", 0.25, 150.0)])
    assert grid.ptb_chosen_rate("rnn", str(tmp_path)) == 0.25
    assert grid.ptb_chosen_rate("gru", str(tmp_path)) == 0.5
    with pytest.raises(ValueError, match="run `python -m experiments run ptb_zaremba ptb_lr`"):
        grid.ptb_chosen_rate("lstm", str(tmp_path))  # not searched
    runs = render.load(str(tmp_path))
    assert "ptb_lr_rnn_0.5" in runs  # the diverged record is part of the search
    text = render.search_table(runs)
    rnn = "| **160.00** | diverged | diverged | 0.25 | ptb_small_rnn_lr0.25: 155.00 / 150.00 |"
    assert f"| rnn {rnn}" in text
    assert "| gru | 190.00 | **170.00** | 175.00 | 0.5 | not run yet |" in text
    assert "| ptb_lr_gru_0.5 |" not in render.runs_table(runs)  # not rows of the main table


def test_the_groups_name_the_committed_runs_with_their_recorded_arguments():
    runs = {g: study.GROUPS[g](RESULTS) for g in study.GROUPS}
    names = {g: [r.name for r in group] for g, group in runs.items()}
    assert len(names["ptb_lr"]) == 9
    assert names["ptb_cells"] == ["ptb_small_lstm", "ptb_small_gru_lr0.5", "ptb_small_rnn_lr0.25"]
    assert names["zaremba"] == ["ptb_small_lstm", "ptb_medium_lstm", "ptb_large_lstm"]
    assert names["cells_at_lr1"] == ["ptb_small_gru", "ptb_small_rnn"]
    assert names["timing"] == ["timing_ptb_medium", "timing_ptb_large"]
    for group in names.values():
        for name in group:
            assert os.path.exists(os.path.join(RESULTS, f"{name}.json")), name
    for run in runs["ptb_lr"] + runs["zaremba"] + runs["cells_at_lr1"]:  # as they were run
        command = records.read(os.path.join(RESULTS, f"{run.name}.json"))["command"]
        args = " ".join((f"--config={run.config_path()}", *run.overrides))
        assert command == f"python -m train.main {args} --workdir=workdirs/{run.name}"
    assert "cells_at_lr1" not in study.DEFAULT_GROUPS  # the RNN diverges at lr 1


def test_headline_and_config_blocks_are_ascii_lines_under_100():
    assert "114.55" in study.headline(RESULTS)["ours"]
    for config, text in study.config_results(RESULTS).items():
        assert text.isascii(), config
        assert all(len(line) < 100 for line in text.splitlines()), config


def test_display_helpers():
    assert lm_record.fmt_duration(3725.4) == "1:02:05"
    record = {"name": "x", "sample": {"text": "the cat\n", "command": (
        "python -m experiments.sample --workdir=w --prompt='the'")}}  # fmt: skip
    assert lm_record.sample_command(record).startswith("python -m experiments.tools.sample ")
    timing = {"config": "c", "params": 10, "cpu_s_per_step": 0.5, "steps_per_epoch": 100,
              "cpu_s_per_epoch": 50.0, "epochs": 0}  # fmt: skip
    table = lm_record.timing_table([timing], {"c": 7200})
    assert "| c | 10 | 0.50 | 100 | 50 | 7,200 steps | 1.0 |" in table


def _tiny_lm_config(tmp_path):
    from train import config_base
    from train.tasks import lm

    corpus = tmp_path / "corpus.txt"
    corpus.write_text("ROMEO: the quick brown fox jumps over the lazy dog\n" * 40)
    config = config_base.base_config()
    config.task = "lm"
    config.data.path = str(corpus)
    config.data.level = "char"
    config.data.valid_fraction = 0.2
    config.data.test_fraction = 0.0
    config.model.hidden_size = 8
    config.model.embed_size = 4
    config.model.update(lm.REGULARIZATION)
    config.train.batch_size = 2
    config.train.seq_len = 8
    config.train.num_steps = 4
    config.train.eval_every = 2
    config.train.checkpoint_every = 2
    config.eval.batch_size = 2
    return config


def test_collect_builds_the_record_of_a_finished_and_of_an_unfinished_run(tmp_path):
    from train import trainer

    workdir = str(tmp_path / "run")
    trainer.train_and_evaluate(_tiny_lm_config(tmp_path), workdir)
    record = lm_record.collect(workdir, "tiny", note="a note", out=str(tmp_path / "out"))
    assert records.read(str(tmp_path / "out" / "tiny.json")) == record
    assert (record["name"], record["status"], record["note"]) == ("tiny", "complete", "a note")
    assert record["params"] > 0 and record["train_tokens_per_s"] > 0 and record["epochs"] > 0
    assert [e["step"] for e in record["valid_curve"]] == [2, 4]
    assert record["sample"]["text"].startswith("ROMEO:")
    assert "python -m experiments.tools.sample --workdir=" in record["sample"]["command"]
    os.remove(os.path.join(workdir, "results.json"))  # as if stopped before the end
    partial = lm_record.collect(workdir, "tiny", command="python -m train.main ...")
    assert partial["status"] == "partial" and partial["steps"] == 4
    assert partial["valid"]["loss"] == pytest.approx(record["valid"]["loss"], rel=1e-5)
    assert partial["command"] == "python -m train.main ..." and "git_dirty" in partial


def test_time_config_writes_cpu_seconds_per_step(tmp_path, monkeypatch):
    config = _tiny_lm_config(tmp_path)
    module = types.ModuleType("experiments.configs._tiny_lm")
    module.get_config = lambda: config
    monkeypatch.setitem(sys.modules, "experiments.configs._tiny_lm", module)
    path = str(tmp_path / "timing.json")
    record = lm_record.time_config("_tiny_lm", 3, path)
    assert records.read(path) == record
    assert record["steps_timed"] == 3 and record["cpu_s_per_step"] > 0
    assert record["cpu_s_per_epoch"] == pytest.approx(
        record["cpu_s_per_step"] * record["steps_per_epoch"]
    )
    with pytest.raises(FileExistsError):
        lm_record.time_config("_tiny_lm", 1, path)
