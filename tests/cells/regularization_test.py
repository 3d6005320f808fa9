"""cells.regularization: masks, expectations, evaluation mode and the AR/TAR formulas."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from cells_testing import assert_close, random_inputs, random_params

import cells
from cells import regularization as reg


def test_locked_dropout_keeps_one_mask_per_sequence_over_time():
    x = jnp.ones((4, 7, 16))
    y = np.asarray(reg.locked_dropout(jax.random.key(0), 0.5, x))
    assert set(np.unique(y)) <= {0.0, 2.0}
    np.testing.assert_array_equal(y, np.broadcast_to(y[:, :1], y.shape))  # constant in time
    assert not all(np.array_equal(y[0, 0], y[b, 0]) for b in range(1, 4))  # fresh per sequence
    again = np.asarray(reg.locked_dropout(jax.random.key(1), 0.5, x))
    assert not np.array_equal(y, again)


@pytest.mark.parametrize(
    "fn,shape",
    [
        (reg.locked_dropout, (64, 3, 64)),
        (reg.embedding_dropout, (4096, 8)),
    ],
)
def test_inverted_masks_preserve_the_expectation(fn, shape):
    x = jnp.full(shape, 3.0)
    means = [float(jnp.mean(fn(jax.random.key(k), 0.3, x))) for k in range(20)]
    assert abs(np.mean(means) - 3.0) < 0.05


def test_no_dropout_without_an_rng_or_at_rate_zero():
    x = random_inputs()
    embed = x[0]
    params = random_params(cells.LSTM(6))
    for rng, rate in [(None, 0.5), (jax.random.key(0), 0.0)]:
        assert reg.locked_dropout(rng, rate, x) is x
        assert reg.embedding_dropout(rng, rate, embed) is embed
        assert reg.weight_drop(rng, rate, params) is params
    with pytest.raises(ValueError, match="rate must be a number in \\[0, 1\\)"):
        reg.locked_dropout(jax.random.key(0), 1.0, x)


def test_embedding_dropout_drops_whole_word_types():
    embed = jnp.ones((50, 8))
    dropped = np.asarray(reg.embedding_dropout(jax.random.key(3), 0.5, embed))
    rows = dropped.sum(axis=1)
    assert set(np.unique(rows)) == {0.0, 16.0}  # a row is all zeros or all 2s


@pytest.mark.parametrize("cell", [cells.LSTM(6), cells.GRU(6), cells.LSTM(6, num_heads=2)])
def test_weight_drop_is_one_mask_on_w_hh_and_keeps_the_fused_backward(cell):
    params, xs = random_params(cell), random_inputs()
    rng = jax.random.key(4)
    dropped = reg.weight_drop(rng, 0.5, params)
    w, dw = np.asarray(params["w_hh"]), np.asarray(dropped["w_hh"])
    kept = dw != 0
    np.testing.assert_allclose(dw[kept], 2.0 * w[kept], rtol=1e-6)  # scaled by 1 / (1 - p)
    assert 0.3 < kept.mean() < 0.7
    for name in params:
        if name != "w_hh":
            assert dropped[name] is params[name]

    def loss(p, backward):
        ys, _ = cells.scan(cell, reg.weight_drop(rng, 0.5, p), xs, backward=backward)
        return jnp.sum(ys * jnp.cos(ys))

    with pytest.warns() if cell.num_heads > 1 else _nothing():
        g_fused = jax.grad(loss)(params, "fused")
    g_auto = jax.grad(loss)(params, "autodiff")
    for k in params:
        assert_close(g_fused[k], g_auto[k], 1e-5, k)
    # Dropped connections get no gradient.
    assert not np.asarray(g_auto["w_hh"])[~kept].any()


class _nothing:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


def test_weight_drop_refuses_cells_without_a_recurrent_matrix():
    params = random_params(cells.MinGRU(6))
    with pytest.raises(ValueError, match="nothing to drop"):
        reg.weight_drop(jax.random.key(0), 0.5, params)


def test_ar_and_tar_equal_their_formulas():
    rng = np.random.default_rng(0)
    ys = rng.standard_normal((3, 6, 4))
    mask = np.array([[True] * 6, [True] * 4 + [False] * 2, [True] + [False] * 5])
    ar = reg.activation_regularization(jnp.asarray(ys), 2.0)
    np.testing.assert_allclose(float(ar), 2.0 * np.mean(ys**2), rtol=1e-6)
    tar = reg.temporal_activation_regularization(jnp.asarray(ys), 1.5)
    np.testing.assert_allclose(float(tar), 1.5 * np.mean(np.diff(ys, axis=1) ** 2), rtol=1e-6)
    valid = ys[mask]
    ar_masked = reg.activation_regularization(jnp.asarray(ys), 2.0, jnp.asarray(mask))
    np.testing.assert_allclose(float(ar_masked), 2.0 * np.mean(valid**2), rtol=1e-6)
    pairs = mask[:, 1:] & mask[:, :-1]
    diffs = np.diff(ys, axis=1)[pairs]
    tar_masked = reg.temporal_activation_regularization(jnp.asarray(ys), 1.5, jnp.asarray(mask))
    np.testing.assert_allclose(float(tar_masked), 1.5 * np.mean(diffs**2), rtol=1e-6)
    assert float(reg.activation_regularization(jnp.asarray(ys), 0.0)) == 0.0
