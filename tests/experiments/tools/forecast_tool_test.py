"""Tests for experiments/tools/forecast.py: a trained run's forecasts in the CSV's units."""

import csv
import json
import os
import subprocess
import sys

import numpy as np
import pytest

from experiments.configs import forecast_csv, synthetic
from experiments.tools import forecast
from train import errors, trainer
from train.data import timeseries

ROWS, L, H = 160, 12, 4
REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))


def hourly_csv(path) -> str:
    lines = ["time,level,load"]
    for i in range(ROWS):
        stamp = np.datetime64("2021-03-01T00:00") + np.timedelta64(i, "h")
        lines.append(f"{str(stamp).replace('T', ' ')},{100 + 3 * np.cos(i / 7):.4f},"
                     f"{50 + 10 * np.sin(i / 5) + 0.1 * i:.4f}")  # fmt: skip
    path.write_text("\n".join(lines) + "\n")
    return str(path)


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """A tiny trained multivariate run (2 columns) and its test metrics."""
    tmp = tmp_path_factory.mktemp("forecast")
    path = hourly_csv(tmp / "load.csv")
    config = forecast_csv.get_config(
        f"path={path},date_column=time,target=load,features=M,input_len={L},horizon={H},"
        "hidden_size=8,batch_size=8,num_steps=20,eval_every=10"
    )
    config.eval.batch_size = 7
    workdir = str(tmp / "run")
    results = trainer.train_and_evaluate(config, workdir)
    return path, workdir, results


def read_rows(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def test_forecasts_in_the_csv_units(run, tmp_path):
    path, workdir, results = run
    summary = forecast.write_forecasts(workdir, str(tmp_path / "out"), plot_windows=2)
    # Standardised, the forecasts score what the trainer's test evaluation scored.
    assert summary["standardised"]["forecast"]["mse"] == pytest.approx(
        results["test"]["mse"], rel=1e-5
    )
    table = timeseries.read_csv(path, "time")
    borders = timeseries.fraction_borders(ROWS, L, 0.7, 0.1)
    lo, hi = borders["test"]
    windows = hi - lo - L - H + 1
    rows = read_rows(tmp_path / "out" / "test.csv")
    assert summary["windows"] == windows and len(rows) == windows * H
    date_row = {d: n for n, d in enumerate(table.dates)}
    train = table.values[borders["train"][0] : borders["train"][1]].astype(np.float64)
    mean, std = train.mean(0), train.std(0)
    sq = []
    for r in rows:
        n, origin = date_row[r["date"]], date_row[r["origin"]]
        assert n == origin + int(r["step"]) == lo + int(r["window"]) + L - 1 + int(r["step"])
        for c, name in enumerate(("level", "load")):
            assert float(r[name]) == pytest.approx(table.values[n, c], rel=1e-6)
            assert float(r[f"{name}_last_value"]) == pytest.approx(table.values[origin, c], 1e-6)
            sq.append(((float(r[f"{name}_forecast"]) - table.values[n, c]) / std[c]) ** 2)
    # The CSV's forecasts, standardised again with an independent scaler: the same MSE.
    assert np.mean(sq) == pytest.approx(results["test"]["mse"], rel=1e-4)
    assert os.path.getsize(tmp_path / "out" / "test.png") > 1000
    on_disk = json.loads((tmp_path / "out" / "test_summary.json").read_text())
    assert on_disk["original_units"]["forecast"]["mse_per_column"][1] == pytest.approx(
        np.mean(sq[1::2]) * std[1] ** 2, rel=1e-4
    )
    assert mean.shape == (2,)

    future = read_rows(tmp_path / "out" / "future.csv")
    assert [r["date"] for r in future] == [
        "2021-03-07 16:00", "2021-03-07 17:00", "2021-03-07 18:00", "2021-03-07 19:00"
    ]  # fmt: skip  # row 159 is 2021-03-07 15:00
    assert all(np.isfinite(float(r["load_forecast"])) for r in future)


def test_never_overwrites_silently(run, tmp_path):
    _, workdir, _ = run
    out = str(tmp_path / "out")
    forecast.write_forecasts(workdir, out, plot_windows=0)
    before = (tmp_path / "out" / "test.csv").read_text()
    with pytest.raises(errors.ConfigError, match=r"already holds test.csv.*--overwrite"):
        forecast.write_forecasts(workdir, out, plot_windows=0)
    assert (tmp_path / "out" / "test.csv").read_text() == before
    with pytest.raises(errors.ConfigError, match=r"already holds future.csv"):
        forecast.write_forecasts(workdir, out, split="valid", plot_windows=0)
    forecast.write_forecasts(workdir, out, split="valid", plot_windows=0, future=False)
    forecast.write_forecasts(workdir, out, plot_windows=0, overwrite=True)


def test_bad_input_errors(run, tmp_path):
    _, workdir, _ = run
    with pytest.raises(errors.ConfigError, match="--split must be one of train, valid, test"):
        forecast.write_forecasts(workdir, str(tmp_path / "o"), split="tset")
    lm = tmp_path / "lm"
    lm.mkdir()
    (lm / "config.json").write_text(json.dumps(synthetic.get_config().to_dict()))
    with pytest.raises(errors.ConfigError, match="needs a forecasting run"):
        forecast.write_forecasts(str(lm))
    proc = subprocess.run(
        [sys.executable, "-m", "experiments.tools.forecast", f"--workdir={tmp_path / 'nothing'}"],
        cwd=REPO, capture_output=True, text=True, env={**os.environ, "JAX_PLATFORMS": "cpu"},
    )  # fmt: skip
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert proc.stderr.strip().startswith("error:") and len(proc.stderr.strip().splitlines()) == 1
