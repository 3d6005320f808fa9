"""Elman RNN (tanh and relu), the IRNN initialiser, and numerics against NumPy."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from cells_testing import (
    LENGTHS,
    B,
    H,
    I,
    T,
    check_against_numpy,
    random_carry,
    random_inputs,
    random_params,
)

import cells

ACTIVATIONS = pytest.mark.parametrize("activation", ["tanh", "relu"])


@ACTIVATIONS
@pytest.mark.parametrize("reverse", [False, True], ids=["forward", "reverse"])
@pytest.mark.parametrize("use_lengths", [False, True], ids=["full", "lengths"])
def test_matches_numpy_float32(activation, use_lengths, reverse):
    lengths = LENGTHS if use_lengths else None
    check_against_numpy(cells.SimpleRNN(H, activation=activation), lengths=lengths, reverse=reverse)


@ACTIVATIONS
def test_matches_numpy_float64(x64, activation):
    cell = cells.SimpleRNN(H, activation=activation, param_dtype=jnp.float64)
    check_against_numpy(cell, lengths=LENGTHS, reverse=True, dtype=np.float64, tol=1e-12)


@ACTIVATIONS
def test_trace_is_the_preactivation(activation):
    cell = cells.SimpleRNN(H, activation=activation)
    ys, _, tr = cells.scan(
        cell, random_params(cell), random_inputs(), lengths=LENGTHS, return_trace=True
    )
    assert set(tr) == {"a"} and tr["a"].shape == (B, T, H)
    act = np.tanh if activation == "tanh" else lambda a: np.maximum(a, 0.0)
    np.testing.assert_allclose(ys, act(np.asarray(tr["a"])), rtol=1e-6, atol=1e-7)
    if activation == "relu":
        assert (np.asarray(ys) == 0).any() and (np.asarray(ys) > 0).any()


def test_identity_init_and_irnn_memory():
    """IRNN (Le et al. 2015): relu, W_hh = I, zero input: a non-negative state is kept."""
    eye = cells.identity_init(0.5)(jax.random.key(0), (H, H))
    np.testing.assert_array_equal(eye, 0.5 * np.eye(H))
    with pytest.raises(ValueError, match="square 2-D shape"):
        cells.identity_init()(jax.random.key(0), (H, H + 1))
    cell = cells.SimpleRNN(H, activation="relu", recurrent_init=cells.identity_init())
    params = cell.init(jax.random.key(0), I)
    np.testing.assert_array_equal(params["w_hh"], np.eye(H))
    h0 = jnp.abs(random_carry(cell).h)
    ys, final = cells.scan(cell, params, jnp.zeros((B, T, I)), carry=cells.RNNState(h0))
    np.testing.assert_allclose(final.h, h0, rtol=1e-6)
    np.testing.assert_allclose(ys[:, -1], h0, rtol=1e-6)
