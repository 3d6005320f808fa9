"""The leaderboard study (experiments/studies/leaderboard/board.py): the plan, the summary and
its rendering, and a quick run that resumes (a second invocation trains nothing and renders the
same table)."""

import json
import math
import os
import subprocess
import sys

import pytest

from experiments.lab import records
from experiments.studies.leaderboard import board as leaderboard
from experiments.studies.leaderboard import study

ROOT = records.ROOT


def test_plan_fills_cell_and_seed_and_quick_budgets_win():
    runs = leaderboard.plan(["lstm", "irnn"], ["adding", "shakespeare"], [0, 2], quick=True)
    assert len(runs) == 2 * 2 * 2 and len({name for name, *_ in runs}) == 8
    name, arg, overrides = runs[0]
    assert name == "board_adding_lstm_s0"
    assert arg.startswith("adding.py:length=200,") and arg.endswith(",cell=lstm,seed=0")
    assert overrides[0] == "--config.train.num_steps=20"
    name, arg, overrides = runs[-1]
    assert name == "board_shakespeare_irnn_s2" and arg == "shakespeare_char.py"
    assert "--config.model.cell=irnn" in overrides and "--config.seed=2" in overrides
    # The quick budget comes after the board's, and the last flag wins in absl.
    assert overrides.index("--config.train.num_steps=10") > overrides.index(
        "--config.train.num_steps=300"
    )


def _record(task, cell, seed, value, **extra):
    metric = leaderboard.TASKS[task].metric
    record = {"name": leaderboard.run_name(task, cell, seed), "wall_time_s": 10.0}
    if metric == "relative_loss":
        record["relative_loss"] = {"test": value}
    else:
        record["test"] = {metric: value}
    return record | extra


def test_summary_and_table_mean_std_best_and_diverged(tmp_path, monkeypatch):
    monkeypatch.setattr(leaderboard, "count_params", lambda record: 123)
    for seed, value in enumerate((0.5, 0.7, 0.6)):
        records.write(str(tmp_path / f"board_mnist1d_gru_s{seed}.json"),
                      _record("mnist1d", "gru", seed, value))  # fmt: skip
    records.write(str(tmp_path / "board_mnist1d_rnn_s0.json"), _record("mnist1d", "rnn", 0, 0.9))
    records.write(  # a diverged run has no test metrics
        str(tmp_path / "board_adding_rnn_s0.json"), {"name": "x", "status": "diverged"}
    )
    records.write(str(tmp_path / "board_adding_gru_s0.json"),
                  _record("adding", "gru", 0, 0.01, solved=True, config={},
                          git_commit="abcdef0123"))  # fmt: skip
    summary = leaderboard.summarize(str(tmp_path), ["gru", "rnn"], ["adding", "mnist1d"])
    gru = summary["results"]["mnist1d"]["gru"]
    assert gru["mean"] == pytest.approx(0.6) and gru["std"] == pytest.approx(0.1)  # ddof 1
    assert gru["seeds"] == [0, 1, 2] and "params" not in gru  # no config recorded
    assert summary["results"]["adding"]["gru"]["solved"] == 1
    assert summary["results"]["adding"]["gru"]["params"] == 123
    assert summary["cpu_wall_time_s"] == pytest.approx(50.0)
    table = leaderboard.render(summary)
    assert "| gru | **0.010** | 0.600 ± 0.100 |" in table  # adding: lower is better
    assert "| rnn | diverged | **0.900** |" in table  # MNIST-1D: higher is better
    assert "| gru | 123 | – |" in table
    assert "adding gru 1/1" in table
    assert summary["run_commits"] == ["?", "abcdef0"]  # the runs' own commits, not the renderer's
    assert "runs at commit ?, abcdef0" in table
    assert "Seeds 0, 1, 2 (adding: 0); mean" in table  # a column with fewer seeds says so


def test_bad_names_are_one_line_errors():
    cmd = [
        sys.executable,
        "-m",
        "experiments.studies.leaderboard.board",
        "--cells=lstm,nope",
        "--quick",
    ]
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode != 0 and "Traceback" not in proc.stderr
    assert "--cells='lstm,nope': valid names are gru," in proc.stderr


def test_quick_board_runs_resumes_and_renders(tmp_path):
    out = tmp_path / "board"
    cmd = [
        sys.executable, "-m", "experiments.studies.leaderboard.board", "--quick", "--cells=rnn",
        "--tasks=adding", f"--out={out}", f"--workdirs={tmp_path / 'runs'}", "--jobs=1",
    ]  # fmt: skip
    first = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert first.returncode == 0, first.stderr[-2000:]
    record = records.read(str(out / "board_adding_rnn_s0.json"))
    assert record["steps"] == 20 and "relative_loss" in record
    assert record["baseline"]["test"]["mse"] == pytest.approx(1 / 6, rel=0.3)  # 64 examples
    summary = json.loads((out / "leaderboard.json").read_text())
    entry = summary["results"]["adding"]["rnn"]
    assert entry["seeds"] == [0] and math.isfinite(entry["mean"]) and summary["quick"] is True
    assert entry["params"] == 2 * 32 + 32 * 32 + 32 + 32 + 1  # w_ih, w_hh, b, head
    assert os.path.exists(out / "figures" / "leaderboard_adding.png")
    again = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert again.returncode == 0 and "exists, not run again" in again.stdout
    assert (out / "leaderboard.md").read_text() in again.stdout


def test_the_groups_are_the_columns_over_every_cell():
    import cells

    runs = study.GROUPS["copy"]("unused")
    assert len(runs) == len(cells.names(grids=False)) * 3 and runs[0].name.startswith("board_copy_")
    assert study.DEFAULT_GROUPS == ("adding", "copy", "selective", "mnist1d", "shakespeare")


def test_the_summary_keeps_every_column_the_board_holds(tmp_path):
    """Rendering or rerunning the default columns keeps the opt-in ones already recorded (a
    render with the default --tasks once dropped the speech columns from the summary)."""
    for name in ("board_adding_lstm_s0.json", "board_spoken_digits_gru_s1.json", "notes.txt"):
        (tmp_path / name).write_text("{}")
    assert leaderboard.tasks_with_records(str(tmp_path)) == ["adding", "spoken_digits"]
    assert leaderboard.tasks_with_records(str(tmp_path / "missing")) == []
