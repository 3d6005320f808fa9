"""Tests for the LM task's like-for-like evaluation (every fixed window scored from inside
itself) and nanoGPT's random training windows (train/data/text.py, train/tasks/lm.py)."""

from __future__ import annotations

import jax
import numpy as np
import pytest
import train_testing as tt

from train import sharding, steps, trainer, validate
from train.data import text
from train.tasks import lm

TEXT, gpt_config = tt.LM_TEXT, tt.tiny_gpt_config


@pytest.fixture(scope="module")
def corpus_path(tmp_path_factory):
    path = tmp_path_factory.mktemp("windows") / "tiny.txt"
    path.write_text(TEXT)
    return path


def rnn_config(path, eval_window):
    config = gpt_config(path)
    config.model.kind = "rnn"
    config.model.num_heads, config.model.block_size = 1, 0
    config.model.tie_embeddings = False
    config.model.cell = "gru"
    config.data.eval_window = eval_window
    return config


def test_fixed_windows_score_every_target_once_from_inside_its_window():
    ids = np.arange(23, dtype=np.int32)
    batches = list(text.fixed_windows(ids, batch_size=2, window=5))
    inputs = np.concatenate([b["inputs"] for b in batches])
    targets = np.concatenate([b["targets"] for b in batches])
    mask = np.concatenate([b["mask"] for b in batches])
    assert mask.sum() == 4 * 5  # (23 - 1) // 5 windows; the last 2 targets are not scored
    np.testing.assert_array_equal(targets[mask > 0], np.arange(1, 21))
    np.testing.assert_array_equal(inputs[:4], ids[:20].reshape(4, 5))
    assert all(b["reset"].all() for b in batches)


def test_random_windows_are_nanogpt_batches_and_resume_exactly():
    ids = np.arange(1000, dtype=np.int32)
    it = text.RandomWindowIterator(ids, batch_size=6, seq_len=16, seed=3)
    first = [next(it) for _ in range(3)]
    for b in first:
        np.testing.assert_array_equal(b["targets"], b["inputs"] + 1)  # consecutive ids
        assert b["inputs"].min() >= 0 and b["targets"].max() < 1000 and b["reset"].all()
    again = text.RandomWindowIterator(ids, batch_size=6, seq_len=16, seed=3)
    again.set_state({"step": 2})
    np.testing.assert_array_equal(next(again)["inputs"], first[2]["inputs"])
    other = text.RandomWindowIterator(ids, batch_size=6, seq_len=16, seed=4)
    assert not np.array_equal(next(other)["inputs"], first[0]["inputs"])


def _by_hand(task, params, ids, window):
    """Mean nll over every full window, each run alone from the task's initial carry."""
    total, count = 0.0, 0
    apply = jax.jit(lambda p, x: task.apply(p, task.init_carry(1), x)[0])  # one compile
    for j in range((len(ids) - 1) // window):
        x = ids[j * window : (j + 1) * window][None]
        y = ids[j * window + 1 : (j + 1) * window + 1]
        logits = apply(params, x)
        log_p = jax.nn.log_softmax(np.asarray(logits[0], np.float64), axis=-1)
        total -= float(np.sum(np.asarray(log_p)[np.arange(window), y]))
        count += window
    return total / count


@pytest.mark.parametrize("kind", ["rnn", "gpt"])
def test_the_window_scorer_equals_a_by_hand_loop(corpus_path, kind):
    config = gpt_config(corpus_path) if kind == "gpt" else rnn_config(corpus_path, 8)
    task = validate.validate(config)(config)
    params = task.init_params(jax.random.key(1))
    mesh = sharding.make_mesh()
    eval_step = steps.make_eval_step(task)
    got = trainer.evaluate(task, eval_step, params, "valid", mesh, config.eval.batch_size)
    want = _by_hand(task, params, task.corpus.splits["valid"], 8)
    np.testing.assert_allclose(got["loss"], want, rtol=1e-5)
    if kind == "rnn":  # the carried-state score beside it is the eval_window=0 number
        carried = trainer.evaluate(task, eval_step, params, "valid_carried", mesh, 3)
        plain = rnn_config(corpus_path, 0)
        plain_task = validate.validate(plain)(plain)
        assert plain_task.eval_splits == ("valid", "test")
        want = trainer.evaluate(plain_task, eval_step, params, "valid", mesh, 3)
        assert carried == want
        assert task.eval_splits == ("valid", "test", "valid" + lm.CARRIED, "test" + lm.CARRIED)


def test_a_recurrent_run_reports_both_scores(corpus_path, tmp_path):
    config = rnn_config(corpus_path, 8)
    results = trainer.train_and_evaluate(config, str(tmp_path))
    assert {"valid", "test", "valid_carried", "test_carried"} <= set(results)
    assert results["valid_carried"]["loss"] != results["valid"]["loss"]


@pytest.mark.parametrize(
    "cell, block", [("lstm", "stack"), ("mingru", "residual"), ("slstm", "residual")]
)
def test_the_window_scorer_matches_by_hand_for_other_cells_and_blocks(corpus_path, cell, block):
    config = rnn_config(corpus_path, 8)
    config.model.cell, config.model.block = cell, block
    task = validate.validate(config)(config)
    params = task.init_params(jax.random.key(2))
    eval_step = steps.make_eval_step(task)
    got = trainer.evaluate(task, eval_step, params, "valid", sharding.make_mesh(), 3)
    want = _by_hand(task, params, task.corpus.splits["valid"], 8)
    np.testing.assert_allclose(got["loss"], want, rtol=1e-5)


def test_a_bfloat16_gpt_tracks_the_float32_one(corpus_path):
    config = gpt_config(corpus_path)
    task32 = validate.validate(config)(config)
    config.train.dtype = "bfloat16"
    task16 = validate.validate(config)(config)
    params = task32.init_params(jax.random.key(0))
    batch = next(task32.train_iterator())
    loss32, _ = task32.loss(params, None, batch, None, False)
    loss16, _ = task16.loss(params, None, batch, None, False)
    np.testing.assert_allclose(float(loss16), float(loss32), rtol=2e-2)
    grads = jax.grad(lambda p: task16.loss(p, None, batch, None, False)[0])(params)
    assert all(np.isfinite(np.asarray(g)).all() for g in jax.tree.leaves(grads))
