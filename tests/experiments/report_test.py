"""Tests for experiments/report.py: tables from result JSONs, the README section, docstrings."""

import json

import pytest

from experiments import report
from experiments.lab import records

HW = {"platform": "cpu", "cpu": "test", "cpu_count": 2}


def ett_result(features, h, cell, mse, mae=0.5):
    return {
        "task": "forecast", "test": {"mse": mse, "mae": mae}, "valid": {"mse": mse},
        "wall_time_s": 60.0, "git_commit": "abcdef0123", "hardware": HW, "steps": 800,
        "config": {"data": {"features": features, "horizon": h}},
    }  # fmt: skip


def long_result(task, t, cell, value, solved_at, acc=None):
    metric = "mse" if task == "adding" else "cross_entropy"
    test = {metric: value} | ({"copy_accuracy": acc} if acc is not None else {})
    return {
        "task": task, "test": test, "steps_to_solve": solved_at,
        "baseline": {"valid": {metric: 0.1}, "test": {metric: 0.1667}},
        "steps": 3000, "wall_time_s": 100.0, "git_commit": "abc", "hardware": HW,
        "config": {"data": {"length": t}},
    }  # fmt: skip


@pytest.fixture
def results(monkeypatch):
    monkeypatch.setattr(report, "persistence", lambda features, h: (9.0, 9.5))
    return {
        "ett_S_24_lstm": ett_result("S", 24, "lstm", 0.05),  # beats LSTMa's 0.114
        "ett_S_24_gru": ett_result("S", 24, "gru", 0.2),  # does not
        "ett_S_48_lstm": ett_result("S", 48, "lstm", 0.1),
        "ett_S_24_nlinear": ett_result("S", 24, "nlinear", 0.06, 0.45),
        "adding_100_lstm": long_result("adding", 100, "lstm", 0.001, 900),
        "adding_100_rnn": long_result("adding", 100, "rnn", 0.167, None),
        "copy_50_gru": long_result("copy", 50, "gru", 0.01, 1200, acc=0.995),
    }


def test_ett_table(results):
    table = report.ett_table(results, "S")
    lines = table.splitlines()
    assert len(lines) == 2 + 5
    assert lines[2].startswith(
        "| 24 | 0.050 / 0.500 | 0.200 / 0.500 | 0.060 / 0.450 | 9.000 / 9.500 | 0.114"
    )
    assert lines[2].endswith("| partly |")
    assert "| 48 | 0.100 / 0.500 | not run | not run |" in lines[3] and lines[3].endswith("| yes |")
    assert lines[4].endswith("| – |")  # nothing ran at 168


def test_long_range_tables(results):
    adding = report.long_range_table(results, "adding")
    row = [line for line in adding.splitlines() if line.startswith("| 100 |")][0]
    assert row == (
        "| 100 | 0.1667 | 0.1670 | not in 3000 | 0.0010 | 900 | not run | not run | 100 / 100 / – |"
    )
    copy = report.long_range_table(results, "copy")
    assert (
        "| 50 | 0.1667 | not run | not run | not run | not run | not run | not run | 0.0100 |"
        in copy
    )
    assert "0.995 | 1200 | – / – / 100 |" in copy


def test_long_range_study_table():
    def run(task, t, model, rel, solved_at, acc=None):
        r = long_result(task, t, model, rel * 0.1667, solved_at, acc)
        return r | {"relative_loss": {"test": rel}, "num_steps": 5000, "steps": solved_at or 5000}

    results = {
        "long_adding_100_rnn": run("adding", 100, "rnn", 1.004, None),
        "long_adding_100_lstm_chrono": run("adding", 100, "lstm_chrono", 0.012, 1300),
        "long_adding_100_irnn": {"name": "long_adding_100_irnn", "status": "diverged",
                                 "error": "error: non-finite loss at step 2 (objective=inf)"},
        "long_copy_500_gru": run("copy", 500, "gru", 0.999, None, acc=0.126),
        "adding_100_lstm": long_result("adding", 100, "lstm", 0.001, 900),  # another grid
    }  # fmt: skip
    adding = report.long_range_study_table(results, "adding").splitlines()
    assert adding[0] == (
        "| T | budget (steps) | RNN | IRNN | LSTM | LSTM_CHRONO | GRU | GRU_CHRONO |"
    )
    assert adding[2] == (
        "| 100 | 5,000 | 1.004, not in 5,000 | diverged (step 2) | not run | "
        "0.012, **solved at 1,300** | not run | not run |"
    )
    assert len(adding) == 3
    copy = report.long_range_study_table(results, "copy")
    assert "| 500 | 5,000 | not run | not run | not run | not run | " in copy
    assert "0.999, acc 12.6%, not in 5,000 | not run |" in copy
    assert report.long_range_study_table({}, "copy").startswith("No long-range copy run")
    results["long_adding_400_mingru"] = run("adding", 400, "mingru", 0.02, 700)
    results["long_adding_400_gru"] = run("adding", 400, "gru", 0.03, 500)  # in the main table
    assert report.long_range_cells_table(results).splitlines() == [
        "| cell | MINGRU |", "|---|---|", "| T = 400 | 0.020, **solved at 700** |"
    ]  # fmt: skip
    assert report.long_range_cells_table({}) == ""
    results["long_adding_400_irnn_lr0.0001"] = run("adding", 400, "irnn", 0.5, None)
    adding = report.long_range_study_table(results, "adding").splitlines()
    assert adding[0].endswith("| GRU_CHRONO | IRNN, Adam 0.0001 |")
    assert adding[-1].endswith("| 0.500, not in 5,000 |")  # T = 400
    assert "IRNN" not in report.long_range_cells_table(results)


def test_section_is_generated_from_results(results, tmp_path):
    text = report.section(results, rel_to=str(tmp_path))
    assert "0.050 / 0.500" in text and "Informer (published)" in text
    assert "not in 3000" in text and "1 of 20" not in text and "3 of 20 ETTh1 runs" in text
    # NLinear's MSE over the better recurrent model's, where both ran (0.06 / 0.05 at H=24).
    assert "ratio: 1.20 at 24;" in text and "0.060 / 0.450" in text
    assert "at 0 of 1 horizons: the recurrence adds accuracy" in text


def test_load_results_and_docstrings(results, tmp_path, monkeypatch):
    for name, r in results.items():
        (tmp_path / f"{name}.json").write_text(json.dumps(r))
    assert records.load_all(str(tmp_path)) == results
    configs = tmp_path / "experiments" / "configs"
    configs.mkdir(parents=True)
    (configs / "adding.py").write_text('"""Doc.\n\n[results]\nold\n[/results]\n"""\n')
    monkeypatch.setattr(report, "ROOT", str(tmp_path))
    changed = report.update_docstrings(results)
    assert changed == [str(configs / "adding.py")]
    text = (configs / "adding.py").read_text()
    assert (
        "old" not in text
        and "adding_100_lstm: 0.0010 (900; 100 s)" in text
        and text.endswith('[/results]\n"""\n')
    )
