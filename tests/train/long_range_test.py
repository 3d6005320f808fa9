"""Tests for train/tasks/long_range.py: generator invariants, baselines, batching, a tiny run."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from experiments.configs import adding as adding_config
from experiments.configs import copy as copy_config
from experiments.configs import selective_copy as selective_config
from train.tasks import long_range

jax.config.update("jax_numpy_rank_promotion", "raise")


@pytest.mark.parametrize("length", [2, 7, 50, 401])
def test_adding_two_markers_one_per_half(length):
    x, y = long_range.adding_batch(np.random.default_rng(0), length, 256)
    assert x.shape == (256, length, 2) and y.shape == (256,)
    values, markers = x[..., 0], x[..., 1]
    assert set(np.unique(markers)) <= {0.0, 1.0}
    np.testing.assert_array_equal(markers.sum(1), 2)
    half = length // 2
    np.testing.assert_array_equal(markers[:, :half].sum(1), 1)
    np.testing.assert_array_equal(markers[:, half:].sum(1), 1)
    assert values.min() >= 0.0 and values.max() <= 1.0
    np.testing.assert_allclose(y, (values * markers).sum(1), rtol=1e-6)


def test_adding_baseline_is_one_sixth():
    _, y = long_range.adding_batch(np.random.default_rng(1), 20, 200_000)
    assert np.mean((y - 1.0) ** 2) == pytest.approx(long_range.adding_baseline_mse(), abs=2e-3)
    assert long_range.adding_baseline_mse() == pytest.approx(0.1667, abs=1e-4)


@pytest.mark.parametrize("length", [1, 5, 100])
def test_copy_layout(length):
    x, y = long_range.copy_batch(np.random.default_rng(0), length, 64)
    total = length + 20
    assert x.shape == y.shape == (64, total)
    data = x[:, :10]
    assert data.min() >= 1 and data.max() <= 8
    np.testing.assert_array_equal(x[:, 10 : length + 9], 0)  # T - 1 blanks
    np.testing.assert_array_equal(x[:, length + 9], 9)  # the delimiter
    np.testing.assert_array_equal(x[:, length + 10 :], 0)
    np.testing.assert_array_equal(y[:, : length + 10], 0)
    np.testing.assert_array_equal(y[:, length + 10 :], data)


def test_generators_are_deterministic_from_the_seed():
    config = adding_config.get_config("length=30,num_steps=2")
    task = long_range.AddingTask(config)
    it = task.train_iterator()
    first, second = next(it), next(it)
    again = task.train_iterator()
    again.set_state({"step": 1})
    np.testing.assert_array_equal(next(again)["x"], second["x"])
    assert not np.array_equal(first["x"], second["x"])
    other = long_range.AddingTask(config)
    np.testing.assert_array_equal(other.examples("test")["x"], task.examples("test")["x"])
    assert not np.array_equal(task.examples("valid")["x"][:10], task.examples("test")["x"][:10])


def test_eval_batches_cover_each_example_once():
    config = adding_config.get_config("length=10")
    config.data.num_valid = 25
    config.eval.batch_size = 10
    task = long_range.AddingTask(config)
    batches = list(task.eval_batches("valid"))
    assert [b["x"].shape[0] for b in batches] == [10, 10, 10]
    assert sum(float(b["weight"].sum()) for b in batches) == 25
    np.testing.assert_array_equal(batches[2]["y"][:5], task.examples("valid")["y"][20:])


def test_copy_loss_of_the_memoryless_strategy_is_the_baseline():
    length = 30
    config = copy_config.get_config(f"length={length}")
    task = long_range.CopyTask(config)
    batch = next(task.train_iterator())
    # Memoryless: certain "blank" for T + 10 steps, then uniform over the 8 data symbols.
    logits = np.full((50, length + 20, 10), -1e9, np.float32)
    logits[:, : length + 10, 0] = 0.0
    logits[:, length + 10 :, 1:9] = 0.0
    task.logits = lambda params, x, rng=None: jnp.asarray(logits)
    objective, (_, sums) = task.loss(None, None, batch, None, False)
    metrics = task.summarize(jax.tree.map(float, sums))
    expected = long_range.copy_baseline_ce(length)
    assert expected == pytest.approx(10 * np.log(8) / 50)
    assert float(objective) == pytest.approx(expected, rel=1e-5)
    assert metrics["cross_entropy"] == pytest.approx(expected, rel=1e-5)
    assert 0.0 <= metrics["copy_accuracy"] <= 0.3  # argmax of a tie picks symbol 1


def test_adding_loss_by_hand():
    task = long_range.AddingTask(adding_config.get_config("length=8"))
    task.predict = lambda params, x, rng=None: jnp.full((x.shape[0],), 1.0)
    batch = {
        "x": np.zeros((3, 8, 2), np.float32),
        "y": np.array([1.5, 0.5, 9.0], np.float32),
        "weight": np.array([1.0, 1.0, 0.0], np.float32),  # the last one is padding
    }
    objective, (_, sums) = task.loss(None, None, batch, None, False)
    assert float(objective) == pytest.approx(0.25)
    assert task.summarize(jax.tree.map(float, sums)) == {"loss": 0.25, "mse": 0.25}


@pytest.mark.parametrize("length,tokens", [(4, 4), (9, 3), (100, 8)])
def test_selective_copy_layout(length, tokens):
    x, y = long_range.selective_copy_batch(np.random.default_rng(0), length, tokens, 64)
    assert x.shape == y.shape == (64, length + tokens)
    np.testing.assert_array_equal(x[:, length:], 9)  # K markers ask for the symbols
    np.testing.assert_array_equal(y[:, :length], 0)  # no target in the noise part
    for row_x, row_y in zip(x, y, strict=True):
        symbols = row_x[:length][row_x[:length] != 0]  # in the order they appear
        assert len(symbols) == tokens and symbols.min() >= 1 and symbols.max() <= 8
        np.testing.assert_array_equal(row_y[length:], symbols)
    gaps = [tuple(np.flatnonzero(row[:length])) for row in x]
    assert length == tokens or len(set(gaps)) > 1  # the positions vary between examples
    with pytest.raises(ValueError, match="num_tokens"):
        long_range.selective_copy_batch(np.random.default_rng(0), 3, 4, 2)


def test_memoryless_baseline_by_hand():
    # Step 0 always blank (entropy 0); step 1 half 1s, half 2s (entropy log 2, argmax right 1/2).
    y = np.array([[0, 1], [0, 2], [0, 1], [0, 2]])
    baseline = long_range.memoryless_baseline(y, recall_len=1)
    assert baseline["cross_entropy"] == pytest.approx(np.log(2) / 2)
    assert baseline["copy_accuracy"] == pytest.approx(0.5)
    assert long_range.constant_predictor_mse(np.array([1.5, 0.0])) == pytest.approx(0.625)


@pytest.mark.parametrize("name", ["copy", "selective_copy"])
def test_the_memoryless_predictor_scores_the_trivial_baseline_through_the_loss(name):
    """Logits = log of the test set's per-step target frequencies, fed to the task's own loss,
    give exactly `trivial_baseline` (cross-entropy; accuracy up to argmax ties)."""
    if name == "copy":
        task = long_range.CopyTask(copy_config.get_config("length=12"))
    else:
        task = long_range.SelectiveCopyTask(selective_config.get_config("length=12,num_tokens=3"))
    task.config.data.num_test = 500
    data = task.examples("test")
    counts_SxK = np.stack([np.bincount(col, minlength=10) for col in data["y"].T]) + 1e-30
    logits = np.log(counts_SxK / counts_SxK.sum(1, keepdims=True)).astype(np.float32)
    task.logits = lambda params, x, rng=None: jnp.broadcast_to(logits, (*x.shape, 10))
    batch = dict(data, weight=np.ones(len(data["y"]), np.float32))
    _, (_, sums) = task.loss(None, None, batch, None, False)
    metrics = task.summarize(jax.tree.map(float, sums))
    baseline = task.trivial_baseline("test")
    assert metrics["cross_entropy"] == pytest.approx(baseline["cross_entropy"], rel=1e-4)
    assert abs(metrics["copy_accuracy"] - baseline["copy_accuracy"]) < 0.05
    assert not task.is_solved(metrics, "test")
    assert task.is_solved({"cross_entropy": 0.04 * baseline["cross_entropy"]}, "test")
    if name == "copy":  # close to the expectation 10 log 8 / (T + 20), not equal to it
        assert baseline["cross_entropy"] == pytest.approx(long_range.copy_baseline_ce(12), rel=0.02)
    else:
        assert baseline["cross_entropy"] == pytest.approx(np.log(8), rel=0.02)


def test_adding_trivial_baseline_is_the_constant_predictor_on_that_set():
    task = long_range.AddingTask(adding_config.get_config("length=20"))
    for split in ("valid", "test"):
        y = task.examples(split)["y"].astype(np.float64)
        expected = np.mean((y - 1.0) ** 2)
        assert task.trivial_baseline(split)["mse"] == pytest.approx(expected, rel=1e-12)
        assert task.trivial_baseline(split)["mse"] != pytest.approx(1 / 6, rel=1e-4)
    assert task.is_solved({"mse": 0.049 * expected}, "test")
    assert not task.is_solved({"mse": 0.051 * expected}, "test")


def test_selective_copy_refuses_more_tokens_than_steps(tmp_path):
    from train import validate
    from train.errors import ConfigError

    config = selective_config.get_config("length=5,num_tokens=6")
    with pytest.raises(ConfigError, match=r"config.data.num_tokens=6 .* config.data.length=5"):
        validate.validate(config)


@pytest.mark.parametrize("name", ["adding", "copy", "selective_copy"])
def test_tiny_end_to_end_run(tmp_path, name):
    from train import trainer

    module = {"adding": adding_config, "copy": copy_config, "selective_copy": selective_config}
    config = module[name].get_config("length=6,num_steps=20,hidden_size=8")
    if name == "selective_copy":
        config.data.num_tokens = 3
    config.data.num_valid = config.data.num_test = 64
    config.train.eval_every = 10
    config.eval.batch_size = 64
    results = trainer.train_and_evaluate(config, str(tmp_path / name))
    metric = "mse" if name == "adding" else "cross_entropy"
    assert np.isfinite(results["test"][metric])
    assert results["steps"] == 20


def test_stop_when_solved_ends_at_the_first_solving_pass_and_stays_stopped(tmp_path, monkeypatch):
    """With the threshold raised to 100x the baseline every pass counts as solved: the run ends
    at the first validation pass (step 5, not 20) and a rerun of the workdir trains no further
    (with the option off, `test_tiny_end_to_end_run` goes the full 20 steps)."""
    from train import trainer

    def config():
        c = adding_config.get_config("length=6,num_steps=20,hidden_size=8,stop_when_solved=True")
        c.data.num_valid = c.data.num_test = 64
        c.train.eval_every = 5
        c.eval.batch_size = 64
        return c

    monkeypatch.setattr(long_range, "SOLVED_FRACTION", 100.0)
    out = trainer.train_and_evaluate(config(), str(tmp_path / "stop"))
    assert out["stopped_early"] and out["steps"] == 5
    again = trainer.train_and_evaluate(config(), str(tmp_path / "stop"))
    assert again["steps"] == 5 and again["test"] == out["test"]


def test_stop_when_solved_is_refused_for_a_task_without_a_solved_criterion():
    from experiments.configs import mnist1d
    from train import validate
    from train.errors import ConfigError

    config = mnist1d.get_config()
    config.train.stop_when_solved = True
    with pytest.raises(ConfigError, match=r"stop_when_solved=True needs a task with a 'solved'"):
        validate.validate(config)
