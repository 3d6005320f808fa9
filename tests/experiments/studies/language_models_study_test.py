"""The language-model study: its README part is rendered from result JSON files only, and its
grid is the one its records came from."""

import json

import pytest

from experiments.studies.language_models import grid, study
from experiments.studies.language_models import render as lm_results


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


@pytest.fixture
def results_dir(tmp_path, monkeypatch):
    files = {
        "ptb_small_lstm.json": _record("ptb_small_lstm", "lstm", 1.0, 114.55),
        "ptb_small_rnn_lr0.25.json": _record("ptb_small_rnn_lr0.25", "rnn", 0.25, 150.0),
        "ptb_small_rnn_lr_probe.json": {"what": "a side file, not a run", "train_loss": {}},
    }
    for name, record in files.items():
        (tmp_path / name).write_text(json.dumps(record))
    monkeypatch.setattr(lm_results, "RESULTS_DIR", str(tmp_path))
    monkeypatch.setattr(lm_results, "load_timings", lambda results_dir=None: [])
    return tmp_path


def test_rows_come_from_the_files(results_dir):
    records = lm_results.load_records()
    assert [r["name"] for r in records] == ["ptb_small_lstm", "ptb_small_rnn_lr0.25"]
    text = lm_results.render_section(records)
    assert "| ptb_small_rnn_lr0.25 | rnn | 0.25 | 1,234 | 13.00 | 155.00 | 150.00 |" in text
    assert "| ptb_small_lstm | lstm | 1 | 1,234 |" in text
    assert "120.7 / 114.5" in text  # the paper column, LSTM rows only
    assert "test perplexity 114.55 vs the paper's 114.5 (+0.0%" in text
    assert "1:02:05" in text  # 3725 s of training


def _search_files(directory, valid):
    """ptb_lr_<cell>_<rate>.json files: a number is a finished run's valid ppl, None a run
    that diverged (the record the lab runner writes)."""
    for (cell, rate), ppl in valid.items():
        name = f"ptb_lr_{cell}_{rate:g}"
        if ppl is None:
            record = {"name": name, "status": "diverged", "error": "non-finite loss at step 7"}
        else:
            record = _record(name, cell, rate, ppl - 5.0)
        (directory / f"{name}.json").write_text(json.dumps(record))


def test_search_table_picks_the_lowest_validation_perplexity(results_dir):
    valid = {("rnn", 0.25): 160.0, ("rnn", 0.5): None, ("rnn", 1.0): None}
    valid |= {("gru", 0.25): 190.0, ("gru", 0.5): 170.0, ("gru", 1.0): 175.0}
    _search_files(results_dir, valid)
    assert grid.ptb_chosen_rate("rnn", str(results_dir)) == 0.25
    assert grid.ptb_chosen_rate("gru", str(results_dir)) == 0.5
    with pytest.raises(Exception, match="run `python -m experiments run language_models ptb_lr`"):
        grid.ptb_chosen_rate("lstm", str(results_dir))  # not searched
    records_ = lm_results.load_records()
    names = [r["name"] for r in records_]
    assert "ptb_lr_rnn_0.5" in names  # the diverged record is part of the search
    text = lm_results.render_section(records_)
    assert (
        "| rnn | **160.00** | diverged | diverged | 0.25 | ptb_small_rnn_lr0.25: 155.00 / 150.00 |"
        in text
    )
    assert "| gru | 190.00 | **170.00** | 175.00 | 0.5 | not run yet |" in text
    # The search runs are not rows of the main table.
    assert "| ptb_lr_gru_0.5 |" not in text


def test_kim_table_reports_seeds_and_the_target(results_dir):
    for variant, seed, ppl in (("baseline", 0, 98.0), ("baseline", 1, 100.0), ("tied", 0, 94.05)):
        name = f"ptb_kim_small_{variant}_s{seed}"
        record = _record(name, "lstm", 1.0, ppl) | {"epochs": 25.0, "train_time_s": 2500.0}
        record["config"]["seed"] = seed
        (results_dir / f"{name}.json").write_text(json.dumps(record))
    text = lm_results.render_section(lm_results.load_records())
    assert (
        "| baseline | 0, 1 | 104.00 ± 1.41 | 99.00 ± 1.41 | +0.0% | 99.00 ± 1.41 | "
        "100.00 ± 0.00 |" in text
    )
    assert "| tied | 0 | " in text and "| 94.05 | -5.0% |" in text  # against the baseline mean
    assert "| nt_asgd | – | not run | not run |" in text  # an ablation row not run yet
    assert (
        "ptb_kim_small_baseline_s0: test perplexity 98.00 vs the paper's 97.6 (+0.4%; meets "
        "the target <= 99.6" in text
    )
    assert (
        "ptb_kim_small_baseline_s1: test perplexity 100.00 vs the paper's 97.6 (+2.5%; misses "
        "the target <= 99.6" in text
    )


def test_the_groups_name_the_committed_runs():
    names = {g: [r.name for r in study.GROUPS[g](lm_results.RESULTS_DIR)] for g in study.GROUPS}
    assert len(names["ptb_lr"]) == 9 and names["ptb_cells"] == [
        "ptb_small_lstm", "ptb_small_gru_lr0.5", "ptb_small_rnn_lr0.25"
    ]  # fmt: skip
    assert len(names["kim2016"]) == 8 and len(names["shakespeare"]) == 6
    import os

    for group in names.values():
        for name in group:
            assert os.path.exists(os.path.join(lm_results.RESULTS_DIR, f"{name}.json")), name
