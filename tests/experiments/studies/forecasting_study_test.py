"""The forecasting study: its grid (every run once, the configs validate), the ETTh1 tables from
records next to the published rows, and the configs' [results] blocks."""

import json
import re

import pytest

from experiments.studies.forecasting import grid, render, study

HW = {"platform": "cpu", "cpu": "test", "cpu_count": 2}


def ett_result(features, h, cell, mse, mae=0.5):
    return {
        "task": "forecast", "test": {"mse": mse, "mae": mae}, "valid": {"mse": mse},
        "wall_time_s": 60.0, "git_commit": "abcdef0123", "hardware": HW, "steps": 800,
        "best_step": 700, "config": {"data": {"features": features, "horizon": h}},
    }  # fmt: skip


@pytest.fixture
def results(monkeypatch):
    monkeypatch.setattr(render, "persistence", lambda features, h: (9.0, 9.5))
    return {
        "ett_S_24_lstm": ett_result("S", 24, "lstm", 0.05),  # beats LSTMa's 0.114
        "ett_S_24_gru": ett_result("S", 24, "gru", 0.2),  # does not
        "ett_S_48_lstm": ett_result("S", 48, "lstm", 0.1),
        "ett_S_24_nlinear": ett_result("S", 24, "nlinear", 0.06, 0.45),
    }


def test_ett_table(results):
    lines = render.ett_table(results, "S").splitlines()
    assert len(lines) == 2 + 5
    assert lines[2].startswith(
        "| 24 | 0.050 / 0.500 | 0.200 / 0.500 | 0.060 / 0.450 | 9.000 / 9.500 | 0.114"
    )
    assert lines[2].endswith("| partly |")
    assert "| 48 | 0.100 / 0.500 | not run | not run |" in lines[3] and lines[3].endswith("| yes |")
    assert lines[4].endswith("| – |")  # nothing ran at 168
    assert "3 of 20 ETTh1 runs" in render.ett_runs_summary(results)


def test_ett_checks_table(results):
    """What the README's conclusions read, per horizon: the last value (9.0 here) against
    LSTMa, each cell against the last value, NLinear over the better cell (0.06 / 0.05)."""
    lines = render.ett_checks_table(results, "S").splitlines()
    assert len(lines) == 2 + 5
    assert lines[2] == "| 24 | no | yes | yes | 1.20 |"
    assert lines[3] == "| 48 | no | yes | – | – |"
    assert lines[4] == "| 168 | no | – | – | – |"


def test_the_tables_and_config_blocks_come_from_the_records(results, tmp_path):
    for name, r in results.items():
        (tmp_path / f"{name}.json").write_text(json.dumps(r))
    tables = study.readme_tables(str(tmp_path))
    assert "0.050 / 0.500" in tables["ett_S"]
    assert "| 24 | no | yes | yes | 1.20 |" in tables["ett_S_checks"]
    assert tables["ltsf"] == "" and tables["examples"] == "" and tables["seq2seq"] == ""
    assert (
        "S  24: LSTM 0.050/0.500  GRU 0.200/0.500" in study.config_results(str(tmp_path))["ett.py"]
    )


def test_groups_name_every_run_once():
    counts = {"ltsf_linear": 68, "ltsf_exchange": 40, "ltsf_segrnn": 55, "ltsf_lookback": 48}
    counts |= {"ltsf_segrnn_init": 12, "ltsf_dlinear_init": 24 + 6, "ett_linear": 10}
    counts |= {"ltsf": 68 + 40 + 30 + 12 + 55 + 48, "ett_S": 10, "ett_M": 10, "seq2seq": 4}
    counts |= {"examples": 2, "ett_M_equal": 45}
    for group, count in counts.items():
        runs = study.GROUPS[group]("unused")
        assert len(runs) == count and len({r.name for r in runs}) == count, group
    configs = {r.name: r.config for r in grid.ltsf()}
    assert configs["ltsf_repeat_M_96"] == (
        "ltsf.py:dataset=etth1,model=repeat,features=M,horizon=96,seed=0,epochs=1"
    )
    assert configs["segrnn_exchange_gru_M_720_s2"] == (
        "segrnn.py:dataset=exchange,cell=gru,features=M,horizon=720,seed=2"
    )
    assert configs["ltsf_exchange_dlinear_meaninit_M_720_s2"] == (
        "ltsf.py:dataset=exchange,model=dlinear,features=M,horizon=720,seed=2,init=mean"
    )


def test_one_run_per_setting_validates_in_full():
    """Each setting's config (seeds and horizons aside) is validated without training."""
    import importlib

    from train import validate

    validated = set()
    for run in grid.ltsf() + grid.ett_linear_runs() + grid.ett_equal_runs():
        module, _, fields = run.config.partition(":")
        setting = re.sub(r"(horizon|seed)=\d+", "", run.config)
        if setting not in validated:
            validated.add(setting)
            config = importlib.import_module(f"experiments.configs.{module[:-3]}")
            validate.validate(config.get_config(fields))
    # the LTSF table's, the Informer table's NLinear, and the equal-budget group's three models
    assert len(validated) == 29 + 3


def test_the_equal_budget_table_averages_seeds_and_compares_means():
    """ETTh1 multivariate at NLinear's budget: mean ± std over the seeds that ran, NLinear's
    mean over the better cell's mean, the median steps, the cell runs still improving."""
    results = {
        f"ett_M_24_{model}_s{s}": dict(ett_result("M", 24, model, mse), steps=steps, best_step=best)
        for model, mses, steps, best in (
            ("lstm_equal", (0.40, 0.42, 0.44), 2660, 2660),
            ("gru_equal", (0.38, 0.40), 1596, 798),
            ("nlinear", (0.30, 0.32, 0.31), 2660, 2394),
        )
        for s, mse in enumerate(mses)
    }
    lines = render.ett_equal_table(results).splitlines()
    assert len(lines) == 2 + 5
    assert lines[2] == (
        "| 24 | 0.420 ± 0.020 / 0.500 ± 0.000 (3) | 0.390 ± 0.014 / 0.500 ± 0.000 (2) | "
        "0.310 ± 0.010 / 0.500 ± 0.000 (3) | 0.79 | 2660 / 1596 / 2660 | 3 of 5 |"
    )
    assert lines[3] == "| 48 | not run | not run | not run | – | – / – / – | 0 of 0 |"
    config = study.GROUPS["ett_M_equal"]("unused")[0].config
    assert config == "ett.py:features=M,horizon=24,cell=lstm,epochs=10,batch_size=32,seed=0"
