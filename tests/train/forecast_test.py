"""Tests for train/tasks/forecast.py: metrics on hand cases, batching, heads, errors, a tiny run."""

import json
import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from experiments.configs import forecast_csv
from train import errors
from train.tasks import forecast

jax.config.update("jax_numpy_rank_promotion", "raise")


def sine_csv(path, rows=200, text_at=None):
    t = np.arange(rows)
    lines = ["when,a,b,target"]
    for i in t:
        target = f"{np.sin(i / 5.0) + 0.01 * i:.6f}" if i != text_at else "oops"
        lines.append(f"d{i},{np.cos(i / 7.0):.6f},{i % 3},{target}")
    path.write_text("\n".join(lines) + "\n")
    return str(path)


def make_config(path, features="S", head="direct", cell="lstm", **data):
    config = forecast_csv.get_config(
        f"path={path},date_column=when,target=target,features={features},input_len=12,"
        f"horizon=4,cell={cell},head={head},hidden_size=8,batch_size=8,num_steps=30,eval_every=10"
    )
    config.data.update(data)
    config.eval.batch_size = 7  # does not divide the window counts: exercises the padding
    return config


def last_value_errors(task, input_len=12, horizon=4):
    """By hand: every test window's error when the forecast is the last input row, on the
    train-scaled series: [windows, horizon, channels]."""
    series = task.data.series_NxC
    lo, hi = task.data.borders["test"]
    starts = range(lo, hi - input_len - horizon + 1)
    end = input_len + horizon
    return np.stack([series[i + input_len : i + end] - series[i + input_len - 1] for i in starts])


def zero_head(task, params):
    """Makes the model's residual forecast exactly 0, so the forecast is the last input value."""
    params["head"] = jax.tree.map(jnp.zeros_like, params["head"])
    return params


def evaluate(task, params, split):
    totals = {}
    loss = jax.jit(lambda p, b: task.loss(p, None, b, None, False))
    for batch in task.eval_batches(split):
        _, (_, sums) = loss(params, batch)
        for k, v in sums.items():
            totals[k] = totals.get(k, 0.0) + float(v)
    return task.summarize(totals), totals


@pytest.mark.parametrize("features", ["S", "M"])
@pytest.mark.parametrize("head", ["direct", "seq2seq"])
def test_persistence_metrics_by_hand(tmp_path, features, head):
    config = make_config(sine_csv(tmp_path / "s.csv"), features=features, head=head)
    task = forecast.ForecastTask(config)
    params = zero_head(task, task.init_params(jax.random.key(0)))
    metrics, totals = evaluate(task, params, "test")
    errors = last_value_errors(task)
    series = task.data.series_NxC
    assert totals["count"] == errors.size  # padding contributes nothing
    np.testing.assert_allclose(metrics["mse"], np.mean(errors**2), rtol=1e-5)
    np.testing.assert_allclose(metrics["mae"], np.mean(np.abs(errors)), rtol=1e-5)
    assert metrics["loss"] == metrics["mse"]
    assert series.shape[1] == (1 if features == "S" else 3)


def test_summarize_hand_sums():
    task = forecast.ForecastTask.__new__(forecast.ForecastTask)
    assert task.summarize({"se": 8.0, "ae": 4.0, "count": 4.0}) == {
        "loss": 2.0,
        "mse": 2.0,
        "mae": 1.0,
    }


def test_scaler_uses_train_rows_only(tmp_path):
    task = forecast.ForecastTask(make_config(sine_csv(tmp_path / "s.csv")))
    raw = task.data.table.values[:, -1].astype(np.float64)
    n_train = task.data.borders["train"][1]
    assert n_train == 140  # 0.7 of 200 rows
    np.testing.assert_allclose(task.data.scaler.mean_C, [raw[:n_train].mean()], rtol=1e-6)
    np.testing.assert_allclose(task.data.scaler.std_C, [raw[:n_train].std()], rtol=1e-6)


def test_train_iterator_resumes_and_covers_an_epoch(tmp_path):
    task = forecast.ForecastTask(make_config(sine_csv(tmp_path / "s.csv")))
    it = task.train_iterator()
    per_epoch = task.steps_per_epoch()
    assert per_epoch == (140 - 12 - 4 + 1) // 8
    seen = [next(it) for _ in range(per_epoch)]
    windows = {b["x"][j].tobytes() for b in seen for j in range(8)}
    assert len(windows) == per_epoch * 8  # no window twice within an epoch
    state = it.get_state()
    assert state == {"epoch": 1, "index": 0}
    expected = next(it)
    other = task.train_iterator()
    other.set_state(state)
    np.testing.assert_array_equal(next(other)["x"], expected["x"])


@pytest.mark.parametrize("head", ["direct", "seq2seq"])
def test_prediction_shape_and_gradient(tmp_path, head):
    task = forecast.ForecastTask(make_config(sine_csv(tmp_path / "s.csv"), features="M", head=head))
    params = task.init_params(jax.random.key(1))
    batch = next(task.train_iterator())
    assert task.predict(params, batch["x"]).shape == (8, 4, 3)
    grads = jax.grad(lambda p: task.loss(p, None, batch, None, True)[0])(params)
    assert all(np.isfinite(g).all() for g in jax.tree.leaves(grads))
    assert float(jnp.abs(grads["head"]["w"]).sum()) > 0


def test_missing_column_lists_the_valid_ones(tmp_path):
    config = make_config(sine_csv(tmp_path / "s.csv"), target="OT")
    with pytest.raises(errors.ConfigError, match=r"target='OT'.*valid: a, b, target"):
        forecast.ForecastTask.validate(config)


@pytest.mark.parametrize(
    "change, message",
    [
        ({"features": "X"}, "features='X'"),
        ({"target": "nope"}, "target='nope' is not a numeric column"),
        ({"input_len": 150}, "too few for one window"),
        ({"split": "informer"}, "needs at least 14400 rows"),
    ],
)
def test_one_line_errors(tmp_path, change, message):
    config = make_config(sine_csv(tmp_path / "s.csv"), **change)
    with pytest.raises(errors.ConfigError, match=message) as e:
        forecast.ForecastTask.validate(config)
    assert "\n" not in str(e.value)


def test_non_numeric_error(tmp_path):
    config = make_config(sine_csv(tmp_path / "s.csv", text_at=5))
    with pytest.raises(errors.ConfigError, match="column 'target' row 7 has non-numeric"):
        forecast.ForecastTask.validate(config)


def test_tiny_end_to_end_run(tmp_path):
    from train import trainer

    config = make_config(sine_csv(tmp_path / "s.csv"))
    config.optim.learning_rate = 1e-2
    workdir = str(tmp_path / "run")
    results = trainer.train_and_evaluate(config, workdir)
    with open(os.path.join(workdir, "results.json")) as f:
        on_disk = json.load(f)
    assert on_disk["test"]["mse"] == pytest.approx(results["test"]["mse"])
    assert np.isfinite(results["test"]["mse"]) and results["test"]["mae"] > 0
    assert set(results["valid"]) >= {"loss", "mse", "mae"}


@pytest.mark.parametrize("architecture", ["linear", "nlinear", "dlinear", "repeat", "segrnn"])
def test_tiny_end_to_end_run_per_ltsf_model(tmp_path, architecture):
    """Each LTSF model trains through the whole harness: the training loss falls (repeat has
    nothing to train and scores the last-value forecast by hand)."""
    from train import trainer

    config = make_config(sine_csv(tmp_path / "s.csv"), features="M", cell="gru")
    config.model.architecture = architecture
    config.model.segment_len = 4  # SegRNN: 3 input segments, 1 output segment
    config.optim.learning_rate = 1e-2
    config.train.log_every = 5
    workdir = str(tmp_path / architecture)
    results = trainer.train_and_evaluate(config, workdir)
    assert np.isfinite(results["test"]["mse"]) and results["test"]["mae"] > 0
    if architecture == "repeat":
        err = last_value_errors(forecast.ForecastTask(config))
        np.testing.assert_allclose(results["test"]["mse"], np.mean(err**2), rtol=1e-5)
        return
    with open(os.path.join(workdir, "metrics.jsonl")) as f:
        train = [r["loss"] for r in map(json.loads, f) if r["split"] == "train"]
    assert len(train) >= 3 and train[-1] < 0.8 * train[0], train
