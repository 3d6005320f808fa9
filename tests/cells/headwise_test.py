"""Head-wise (block-diagonal) recurrence: LSTM/GRU num_heads and the sLSTM.

The shared parameterised tests run lstm_heads, gru_ln_heads, slstm and slstm_heads against
reference_numpy (which expands w_hh to its block-diagonal form loop by loop); here: the
head-wise cells against the dense cells they equal, the sLSTM's stabiliser and initialisation.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import reference_numpy
from cells_testing import LENGTHS, assert_close, check_against_numpy, random_inputs, random_params

import cells
from cells import base


@pytest.mark.parametrize("heads", [1, 2, 3])
@pytest.mark.parametrize("gates", [3, 4])
def test_headwise_matmul_equals_the_block_diagonal_product(heads, gates):
    rng = np.random.default_rng(heads)
    d = 2
    w = rng.standard_normal((heads, d, gates * d))
    h = rng.standard_normal((5, heads * d))
    dense = reference_numpy.dense_recurrent(w, gates)  # written independently, loop by loop
    np.testing.assert_allclose(np.asarray(base.block_diagonal(jnp.asarray(w), gates)), dense)
    got = base.headwise_matmul(
        jnp.asarray(h, jnp.float32), jnp.asarray(w, jnp.float32), gates, None
    )
    assert_close(got, h @ dense, 1e-6, "headwise_matmul")
    if heads == 1:  # one head is the dense matrix itself
        np.testing.assert_allclose(dense, w[0])


def _dense_twin(cell, params):
    """The dense cell and params that a head-wise cell equals: w_hh block-diagonal."""
    dense_cell = type(cell)(**{**cell.__dict__, "num_heads": 1})
    return dense_cell, {**params, "w_hh": base.block_diagonal(params["w_hh"], cell.num_gates)}


@pytest.mark.parametrize(
    "cell",
    [
        cells.LSTM(6, num_heads=1),
        cells.LSTM(6, num_heads=2),
        cells.LSTM(6, num_heads=3, coupled=True, layer_norm=True),
        cells.GRU(6, num_heads=1),
        cells.GRU(6, num_heads=3),
    ],
    ids=["lstm1", "lstm2", "lstm3_cifg_ln", "gru1", "gru3"],
)
def test_headwise_cell_equals_dense_cell_with_block_diagonal_weights(cell):
    params = random_params(cell)
    xs, lengths = random_inputs(), jnp.asarray([5, 3, 1])
    if cell.num_heads == 1:
        assert params["w_hh"].shape == (6, cell.num_gates * 6)  # dense layout kept
        dense_cell, dense_params = cell, params
    else:
        assert params["w_hh"].shape == (
            cell.num_heads,
            6 // cell.num_heads,
            cell.num_gates * 6 // cell.num_heads,
        )
        dense_cell, dense_params = _dense_twin(cell, params)

    def loss(c, p, w_hh_to_dense):
        ys, carry = cells.scan(c, {**p, "w_hh": w_hh_to_dense(p["w_hh"])}, xs, lengths=lengths)
        return jnp.sum(ys * jnp.cos(ys)) + sum(jnp.sum(f) for f in carry), ys

    to_dense = lambda w: base.block_diagonal(w, cell.num_gates) if w.ndim == 3 else w
    (_, ys), grads = jax.value_and_grad(loss, argnums=1, has_aux=True)(cell, params, lambda w: w)
    (_, ys_dense), grads_dense = jax.value_and_grad(loss, argnums=1, has_aux=True)(
        dense_cell, params, to_dense
    )
    assert_close(ys, ys_dense, 1e-6, "outputs")
    for k in params:
        assert_close(grads[k], grads_dense[k], 1e-5, f"d{k}")
    ys_again, _ = cells.scan(dense_cell, dense_params, xs, lengths=lengths)
    assert_close(ys, ys_again, 1e-6, "outputs vs dense params")


@pytest.mark.parametrize(
    "cell",
    [cells.LSTM(6, num_heads=2, peephole=True), cells.GRU(6, num_heads=3, layer_norm=True)],
    ids=["lstm_heads_peephole", "gru_heads_ln"],
)
@pytest.mark.parametrize("reverse", [False, True])
def test_headwise_cells_match_float64_numpy(cell, reverse):
    """Outputs, carries and traces against reference_numpy (which expands w_hh itself)."""
    err = check_against_numpy(cell, lengths=LENGTHS, reverse=reverse)
    assert err < 1e-5
    from cells import sequence

    sequence._WARNED_NO_FUSED_BACKWARD.clear()  # warned once per process: make it this test
    with pytest.warns(UserWarning, match="num_heads=. has no hand-written backward"):
        cells.scan(cell, random_params(cell), random_inputs(), backward="fused")


def test_headwise_options_are_validated():
    with pytest.raises(ValueError, match="num_heads=4 must divide hidden_size=6"):
        cells.LSTM(6, num_heads=4)
    with pytest.raises(ValueError, match="num_heads must be a positive int"):
        cells.GRU(6, num_heads=0)
    with pytest.raises(ValueError, match="needs proj_size=0"):
        cells.LSTM(6, num_heads=2, proj_size=3)
    with pytest.raises(ValueError, match="needs reset_after=True"):
        cells.GRU(6, num_heads=2, reset_after=False)
    with pytest.raises(ValueError, match="must divide hidden_size"):
        cells.SLSTM(6, num_heads=4)


def test_slstm_stabiliser_never_changes_h():
    cell = cells.SLSTM(6, num_heads=2)
    params = {k: np.asarray(v, np.float64) for k, v in random_params(cell, scale=0.3).items()}
    xs = np.asarray(random_inputs(), np.float64)
    ys, _, _ = reference_numpy.run(cell, params, xs)  # stabilised, float64
    state = tuple(np.zeros((xs.shape[0], 6)) for _ in range(3))
    unstabilised = []
    for t in range(xs.shape[1]):
        state, h = reference_numpy.slstm_unstabilised_step(params, state, xs[:, t])
        unstabilised.append(h)
    np.testing.assert_allclose(ys, np.stack(unstabilised, 1), rtol=1e-12, atol=1e-12)
    ours, _ = cells.scan(cell, jax.tree.map(jnp.asarray, params), jnp.asarray(xs, jnp.float32))
    assert_close(ours, ys, 1e-5, "cells.scan vs unstabilised float64")


def test_slstm_gates_stay_finite_on_long_sequences_with_large_inputs():
    cell = cells.SLSTM(8, num_heads=2)
    params = random_params(cell, scale=2.0)
    xs = 10.0 * random_inputs((2, 3000, 4), seed=7)

    def loss(p):
        ys, carry = cells.scan(cell, p, xs)
        return jnp.sum(ys), (ys, carry)

    grads, (ys, carry) = jax.jit(jax.grad(loss, has_aux=True))(params)
    for a in (ys, *carry, *jax.tree.leaves(grads)):
        assert np.isfinite(np.asarray(a)).all()
    assert np.asarray(carry.n).min() >= 1.0  # n_t >= 1 after the first step
    assert np.abs(np.asarray(ys)).max() <= 1.0  # |h| = o |c / n| <= 1 (|tanh z| <= 1)


def test_slstm_initialisation_follows_the_xlstm_code():
    cell = cells.SLSTM(8, num_heads=2)
    params = cell.init(jax.random.key(0), 5)
    assert params["w_hh"].shape == (2, 4, 16)
    np.testing.assert_array_equal(np.asarray(params["w_hh"]), 0.0)  # recurrent_weight_init='zeros'
    b_i, b_f, b_z, b_o = np.split(np.asarray(params["b"]), 4)
    for other in (b_i, b_z, b_o):
        np.testing.assert_array_equal(other, 0.0)
    per_head = 5.0 - 12.0 * (np.arange(4) / 3.0) ** 0.3
    np.testing.assert_allclose(b_f, np.tile(per_head, 2), rtol=1e-6)
    assert b_f[0] == 5.0 and abs(b_f[3] + 7.0) < 1e-6
    zeros = cells.SLSTM(8, powerlaw_bias=False).init(jax.random.key(0), 5)["b"]
    np.testing.assert_array_equal(np.asarray(zeros), 0.0)


def test_slstm_first_step_sets_the_stabiliser_to_the_input_gate():
    cell = cells.SLSTM(4)
    params = random_params(cell)
    xs = random_inputs((2, 1, 4))
    _, carry = cells.scan(cell, params, xs)
    pre_i = (xs[:, 0] @ params["w_ih"] + params["b"][None])[:, :4]  # h_0 = 0: no recurrent term
    assert_close(carry.m, pre_i, 1e-6, "m_1 = i~_1")
    np.testing.assert_allclose(np.asarray(carry.n), 1.0, rtol=1e-6)  # i' = exp(0) = 1
