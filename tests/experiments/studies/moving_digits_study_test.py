"""The moving-digits study: its grid (the baselines at the ConvLSTM's parameter count, the
copy-last and mean-frame commands), its table from the records, the baselines' records and
both figures."""

import json
import os

from experiments.configs import moving_digits as md_config
from experiments.studies.moving_digits import copy_last, render, study
from train import trainer

TINY = "canvas=8,digit_size=4,hidden_size=2,num_layers=1,kernel=3"


def test_the_grid_gives_the_baselines_the_conv_lstms_parameters():
    runs = {r.name: r for r in study.runs("unused")}
    assert len(runs) == 5 * len(study.SEEDS)
    budget = study.convlstm_params()
    assert runs["md_convlstm_s1"].config == "moving_digits.py:seed=1"
    assert (
        runs["md_conv3d_s0"].config == f"moving_digits.py:model=conv3d,param_budget={budget},seed=0"
    )
    assert (
        runs["md_fc_lstm_s2"].config == "moving_digits.py:model=fc,cell=lstm,hidden_size=8,seed=2"
    )
    assert study.fc_lstm_width() == 8  # 43,680 parameters; 7 units would have 38,180
    assert runs["md_copy_last_s0"].command[1] == "experiments.studies.moving_digits.copy_last"
    assert "--baseline=mean_frame" in runs["md_mean_frame_s1"].command


def _write(directory, name, mse, params=100, wall=10.0):
    frames = {f"mse_frame_{k}": mse * k / 5.5 for k in range(1, 11)}
    record = {"name": name, "params": params, "wall_time_s": wall, "steps": 2000,
              "test": {"mse_per_frame": mse, "bce_per_frame": 2 * mse, **frames}}  # fmt: skip
    (directory / f"{name}.json").write_text(json.dumps(record))


def test_the_table_and_the_curve_come_from_the_records(tmp_path):
    for seed, (convlstm, copy) in enumerate([(10.0, 50.0), (12.0, 50.0), (14.0, 50.0)]):
        _write(tmp_path, f"md_convlstm_s{seed}", convlstm)
        _write(tmp_path, f"md_copy_last_s{seed}", copy, params=0, wall=1.0)
    table = study.results_table(str(tmp_path))
    assert (
        "| ConvLSTM encoder-forecaster (`model=convlstm`) | 100 | **12.0 ± 2.0** (n=3) |" in table
    )
    assert "| copy the last input frame (no parameters) | 0 | 50.0 ± 0.0 (n=3) |" in table
    assert "3-D CNN" not in table  # rows without records are left out
    path = str(tmp_path / "curve.png")
    assert render.plot_mse_per_frame(study._rows(str(tmp_path)), path) and os.path.getsize(path)
    assert not render.plot_mse_per_frame([], path)


def test_the_copy_last_record_scores_the_fixed_test_set():
    record = copy_last.record(seed=0, config_arg=TINY)
    assert record["name"] == "md_copy_last_s0" and record["params"] == 0
    assert record["test"]["mse_per_frame"] > 0 and record["valid"]["eps"] == record["test"]["eps"]
    assert "git_commit" in record
    mean = copy_last.record(seed=0, config_arg=TINY, baseline="mean_frame")
    assert mean["name"] == "md_mean_frame_s0" and mean["model"] == "mean_frame"
    assert mean["test"]["mse_per_frame"] > 0


def test_predictions_are_drawn_from_trained_workdirs(tmp_path):
    workdir = str(tmp_path / "md_convlstm_s0")
    config = md_config.get_config(f"{TINY},num_steps=2,batch_size=2")
    config.data.num_valid = config.data.num_test = 2
    trainer.train_and_evaluate(config, workdir)
    path = str(tmp_path / "predictions.png")
    missing = str(tmp_path / "md_conv3d_s0")
    os.makedirs(os.path.join(missing, "checkpoints"))  # a run still training: left out
    assert render.plot_predictions({"convlstm": workdir, "conv3d": missing}, path, seed=0)
    assert os.path.getsize(path) > 0
    assert not render.plot_predictions({"conv3d": missing}, path, seed=0)


def test_the_predictions_figure_takes_one_seed_with_the_most_trained_models(tmp_path):
    assert study.figure_seed(str(tmp_path)) == 0  # nothing trained
    for name in ("md_convlstm_s0", "md_convlstm_s2", "md_conv3d_s2", "md_conv3d_s1"):
        os.makedirs(tmp_path / name)
        (tmp_path / name / "results.json").write_text("{}")
    assert study.figure_seed(str(tmp_path)) == 2  # both models' seed-2 runs
    os.makedirs(tmp_path / "md_conv3d_s0" / "checkpoints")  # still training
    assert study.figure_seed(str(tmp_path)) == 2
    (tmp_path / "md_conv3d_s0" / "results.json").write_text("{}")
    assert study.figure_seed(str(tmp_path)) == 0  # a tie goes to the lowest seed
