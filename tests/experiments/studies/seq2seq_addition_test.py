"""Tests for experiments/studies/init_schemes/seq2seq_addition.py: flax's seq2seq example and
its port to cells give the same logits from the same weights, and both train."""

import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import cells
from experiments.studies.init_schemes import seq2seq_addition as s2s

jax.config.update("jax_numpy_rank_promotion", "raise")

H = 8


def test_the_data_is_the_examples():
    data = s2s.batch(np.random.default_rng(0), 3)
    assert data["query"].shape == (3, s2s.QUERY_LEN, s2s.VOCAB_SIZE) == (3, 8, 15)
    assert data["answer"].shape == (3, s2s.ANSWER_LEN, s2s.VOCAB_SIZE) == (3, 6, 15)
    for query, answer, length in zip(
        s2s.decode(data["query"]),
        s2s.decode(data["answer"]),
        np.asarray(s2s.query_lengths(data["query"])),
        strict=True,
    ):
        a, b = map(int, query.split("+"))
        assert a <= b and min(a, b) < 100 and answer == f"={a + b}"
        assert length == len(query)  # the encoder reads up to, not including, eos
    labels = s2s.encode(["354", "91", "1000"], s2s.ANSWER_LEN - 1)
    np.testing.assert_array_equal(s2s.label_lengths(labels), [4, 3, 5])  # eos counted


def _random_flax_params(batch):
    """FlaxSeq2seq's param tree with every entry random (flax's init has zero biases)."""
    shapes = jax.eval_shape(s2s.FlaxSeq2seq(H).init, jax.random.key(0), *batch.values())
    rng = np.random.default_rng(2)
    return jax.tree.map(
        lambda a: jnp.asarray(0.5 * rng.standard_normal(a.shape), a.dtype), shapes["params"]
    )


def test_flax_model_and_ours_give_the_same_logits_from_converted_weights():
    batch = s2s.batch(np.random.default_rng(1), 4)
    flax_params = _random_flax_params(batch)
    cell = cells.LSTM(H)
    params = s2s.params_from_flax(cell, flax_params)
    ours = s2s.CellsSeq2seq(cell)
    init = jax.eval_shape(ours.init, jax.random.key(0), batch["query"], batch["answer"])
    assert jax.tree.map(np.shape, init["params"]) == jax.tree.map(np.shape, params)
    # flax's structure with our cell in it (cells.linen.RNNCell, flax's (c, h) carry layout).
    adapter = s2s.FlaxSeq2seq(H, lambda n, **kw: cells.linen.RNNCell(cells.LSTM(n), **kw))
    adapter_params = {
        "encoder": {"cell": params["encoder"]},
        "decoder": {"cell": {"lstm": params["decoder"], "dense": params["dense"]}},
    }
    for teacher_force in (True, False):  # teacher-forced training logits, greedy decoding
        args = (batch["query"], batch["answer"])
        want = s2s.FlaxSeq2seq(H).apply({"params": flax_params}, *args, teacher_force)
        got = ours.apply({"params": params}, *args, teacher_force)
        also = adapter.apply({"params": adapter_params}, *args, teacher_force)
        for logits, predictions in (got, also):
            np.testing.assert_allclose(logits, want[0], rtol=1e-5, atol=1e-5)
            np.testing.assert_array_equal(predictions, want[1])


@pytest.mark.slow
def test_both_models_train_and_agree_step_for_step():
    """A few steps of each; ours from flax's converted initial weights (init='flax') follows
    flax's losses, with the hand-written backward."""
    settings = dict(hidden_size=H, batch_size=4, steps=3, eval_every=2, eval_size=8)
    flax_run = s2s.train(model="flax", **settings)
    ours = s2s.train(model="cells", init="flax", backward="fused", **settings)
    assert flax_run["eval_steps"] == ours["eval_steps"] == [2, 3]
    np.testing.assert_allclose(ours["train_loss"], flax_run["train_loss"], rtol=1e-5)
    assert all(0.0 <= a <= 1.0 for a in ours["accuracy"] + flax_run["accuracy"])
    assert ours["cell"] == "LSTM(hidden_size=8)" and flax_run["wall_time_s"] > 0


def test_train_refuses_what_it_cannot_do():
    with pytest.raises(ValueError, match="model='flax' is nn.LSTMCell"):
        s2s.train(model="flax", backward="fused")
    with pytest.raises(ValueError, match="hidden_size=16 differs from the cell's 8"):
        s2s.train(model="cells", cell=cells.GRU(8), hidden_size=16)
    with pytest.raises(ValueError, match="init must be 'own', or 'flax' with model='cells'"):
        s2s.train(model="flax", init="flax")


@pytest.mark.slow
def test_cli_writes_the_record(tmp_path):
    out = tmp_path / "run.json"
    cmd = [
        sys.executable,
        "-m",
        "experiments.studies.init_schemes.seq2seq_addition",
        "--model=cells",
        "--cell=gru",
    ]
    cmd += ["--hidden_size=8", "--batch_size=4", "--steps=2", "--eval_every=1", f"--out={out}"]
    subprocess.run(cmd, check=True, capture_output=True)
    record = s2s.records.read(str(out))
    assert record["eval_steps"] == [1, 2] and record["cell"].startswith("GRU(hidden_size=8")
