"""experiments/run_grid.py: group contents, long-range fields, the record of a diverged run."""

import pytest

from experiments import run_grid
from experiments.configs import adding
from train.tasks import long_range


def test_groups_name_every_run_once():
    groups = {"ptb_lr": 9, "ltsf_linear": 68, "ltsf_exchange": 40, "ltsf_segrnn": 55}
    groups |= {"ltsf_lookback": 48, "ltsf_segrnn_init": 12, "ltsf_dlinear_init": 24 + 6}
    groups |= {"ltsf": 68 + 40 + 30 + 12 + 55 + 48}
    groups |= {"ett_linear": 10}
    groups |= {"speech": 36 + 15, "mnist1d": 3 + 9 + 14 * 3}
    groups |= {"long_range": (4 + 3) * 6, "long_range_cells": 14 - 4, "long_range_irnn": 4}
    for group, count in groups.items():
        runs = run_grid.grid(group)
        assert len(runs) == count and len({name for name, _ in runs}) == count
    assert ("ltsf_repeat_M_96", "ltsf.py:dataset=etth1,model=repeat,features=M,horizon=96,"
            "seed=0,epochs=1") in run_grid.grid("ltsf_linear")  # fmt: skip
    assert ("segrnn_exchange_gru_M_720_s2", "segrnn.py:dataset=exchange,cell=gru,features=M,"
            "horizon=720,seed=2") in run_grid.grid("ltsf_segrnn")  # fmt: skip
    assert ("ltsf_exchange_dlinear_meaninit_M_720_s2", "ltsf.py:dataset=exchange,"
            "model=dlinear,features=M,horizon=720,seed=2,init=mean"
            ) in run_grid.grid("ltsf_dlinear_init")  # fmt: skip
    segrnn = {name for name, _ in run_grid.grid("ltsf_segrnn")}  # multivariate ablations
    assert {"segrnn_gru_M_96_s2", "segrnn_lstm_M_720_s0", "segrnn_mingru_M_96_s0"} <= segrnn
    assert not {"segrnn_gru_M_192_s0", "segrnn_mingru_M_336_s0"} & segrnn
    assert ("long_copy_500_lstm_chrono", "copy.py:length=500,cell=lstm,num_steps=10000,patience=0,"
            "stop_when_solved=True,chrono_t_max=500") in run_grid.grid("long_range")  # fmt: skip
    assert ("long_adding_750_irnn", "adding.py:length=750,cell=irnn,num_steps=10000,patience=0,"
            "stop_when_solved=True,learning_rate=0.001") in run_grid.grid("long_range")  # fmt: skip
    assert run_grid.ptb_full_name("gru", 1.0) == "ptb_small_gru"
    assert run_grid.ptb_full_name("rnn", 0.25) == "ptb_small_rnn_lr0.25"


def test_a_diverged_run_is_a_result_and_other_failures_are_not(tmp_path):
    log = tmp_path / "stdout.log"
    log.write_text("step 1 | train | loss 9.1\nerror: non-finite loss at step 7 (objective=nan)\n")
    record = run_grid.diverged("ptb_lr_rnn_1", str(tmp_path), ["python", "-m", "x"], 12.0)
    assert record["status"] == "diverged"
    assert record["error"] == "error: non-finite loss at step 7 (objective=nan)"
    assert record["command"] == "python -m x" and "git_commit" in record
    log.write_text("Traceback ... MemoryError\n")
    assert run_grid.diverged("x", str(tmp_path), ["python"], 1.0) is None


def test_every_forecasting_grid_config_builds():
    """Each run's config argument builds; one run per setting (seeds and horizons aside) is
    validated in full (data sizes, fields) without training."""
    import importlib
    import re

    from train import validate

    validated = set()
    for group in ("ltsf", "ett_linear", "speech"):
        for name, arg in run_grid.grid(group):
            module, _, fields = arg.partition(":")
            config = importlib.import_module(f"experiments.configs.{module[:-3]}").get_config(
                fields
            )
            if group != "ett_linear":
                assert name.startswith(config.name), (name, config.name)
            setting = re.sub(r"(horizon|seed)=\d+", "", arg)
            if setting not in validated:
                validated.add(setting)
                validate.validate(config)
    # ETTh1 linear, Exchange, DLinear's first release (its init; init x its Exchange H = 720
    # rate), SegRNN, the look-back and init ablations, ett_linear, speech
    assert len(validated) == 7 + 4 + 4 + 7 + 4 + 1 + 2 + 17


def test_long_range_fields_use_each_fixed_sets_baseline_even_for_an_older_config():
    config = adding.get_config("length=12").to_dict()
    del config["train"]["scan_backward"]  # a field added to the schema after the run
    task = long_range.AddingTask(adding.get_config("length=12"))
    base = {split: task.trivial_baseline(split)["mse"] for split in ("valid", "test")}
    results = {
        "config": config,
        "valid": {"mse": 0.5 * base["valid"]},
        "test": {"mse": 0.04 * base["test"]},
        "valid_curve": [
            {"step": 100, "mse": 0.9 * base["valid"]},
            {"step": 200, "mse": 0.06 * base["valid"]},  # not yet: 6% > 5%
            {"step": 300, "mse": 0.049 * base["valid"]},
        ],
    }
    fields = run_grid.long_range_fields(results)
    assert fields["baseline"]["test"]["mse"] == pytest.approx(base["test"], rel=1e-12)
    assert fields["relative_loss"]["test"] == pytest.approx(0.04)
    assert fields["steps_to_solve"] == 300 and fields["solved"] is True
    results["test"]["mse"] = 0.051 * base["test"]
    assert run_grid.long_range_fields(results)["solved"] is False


def test_a_filter_keeps_whole_name_parts_and_a_whole_name_selects_one_run():
    both = run_grid.grid("ltsf_segrnn@gru_M_96_s0")  # ETTh1's and Exchange's
    assert [n for n, _ in both] == ["segrnn_gru_M_96_s0", "segrnn_exchange_gru_M_96_s0"]
    assert [n for n, _ in run_grid.grid("ltsf_segrnn@segrnn_gru_M_96_s0")] == ["segrnn_gru_M_96_s0"]
    assert run_grid.grid("ltsf_segrnn@gru_M_19") == []  # parts, not substrings
