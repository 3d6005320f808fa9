"""experiments/lm_results.py: the README LM section is rendered from result JSON files only."""

import json

import pytest

from experiments import lm_results, records


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
    monkeypatch.setattr(lm_results, "load_timings", lambda: [])
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


def test_render_replaces_only_the_section(results_dir, tmp_path):
    readme = tmp_path / "README.md"
    begin, end = records.markers("lm")
    readme.write_text(f"head\n{begin}\nold\n{end}\ntail\n")
    lm_results.render(str(readme))
    text = readme.read_text()
    assert text.startswith("head\n") and text.endswith("tail\n") and "old" not in text
    assert "ptb_small_rnn_lr0.25" in text
