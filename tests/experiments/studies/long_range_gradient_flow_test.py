"""Tests for experiments/studies/long_range/gradient_flow.py: dL/dh_t against closed forms
and against autodiff."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import cells
from experiments.studies.long_range import gradient_flow

jax.config.update("jax_numpy_rank_promotion", "raise")


@pytest.mark.parametrize("a", [0.5, 0.9, 1.0])
def test_linear_rnn_closed_form(a):
    # relu RNN with W_hh = a I, positive inputs and weights: h stays positive, so the cell is
    # linear, h_t = a h_{t-1} + x_t W; for L = sum(h_{T-1}), dL/dh_t = a^(T-1-t) (all ones).
    hidden, steps = 3, 12
    cell = cells.SimpleRNN(hidden, activation="relu", recurrent_init=cells.identity_init(a))
    params = cell.init(jax.random.key(0), 2)
    params["w_ih"] = jnp.abs(params["w_ih"]) + 0.1
    xs = jax.random.uniform(jax.random.key(1), (4, steps, 2), minval=0.1, maxval=1.0)
    grads = gradient_flow.hidden_state_grads(cell, params, xs, lambda hs: jnp.sum(hs[:, -1]))
    expected_T = a ** (steps - 1 - np.arange(steps))
    np.testing.assert_allclose(
        grads, np.broadcast_to(expected_T[None, :, None], grads.shape), rtol=1e-5
    )
    norms = gradient_flow.norms_by_distance(grads)
    np.testing.assert_allclose(norms, np.sqrt(hidden) * a ** np.arange(steps), rtol=1e-5)


@pytest.mark.parametrize("cell", [cells.LSTM(5), cells.GRU(5), cells.SimpleRNN(5)])
def test_forward_matches_cells_scan_and_grad_at_the_last_step(cell):
    params = cell.init(jax.random.key(0), 3)
    xs = jax.random.normal(jax.random.key(1), (2, 7, 3))
    w = jax.random.normal(jax.random.key(2), (5,))

    def loss_fn(hs):
        return jnp.sum(jnp.tanh(hs[:, -1] @ w)) + 0.5 * jnp.sum(hs[:, 2] ** 2)

    grads = gradient_flow.hidden_state_grads(cell, params, xs, loss_fn)
    ys, _ = cells.scan(cell, params, xs)
    # The last step only feeds the loss directly: dL/dh_{T-1} = w * tanh'(h_{T-1} w).
    direct = (1 - jnp.tanh(ys[:, -1] @ w) ** 2)[:, None] * w[None, :]
    np.testing.assert_allclose(grads[:, -1], direct, rtol=1e-5, atol=1e-6)

    # Finite differences of the loss w.r.t. a perturbation of h_2 (which also feeds h_3...).
    def perturbed_loss(delta_BxH):
        carry = cell.initial_carry(2)
        hs = []
        for t in range(7):
            carry, h = cell.step(params, carry, xs[:, t])
            if t == 2:
                h = h + delta_BxH
                carry = carry._replace(h=h)
            hs.append(h)
        return loss_fn(jnp.stack(hs, axis=1))

    eps = 1e-3
    delta = jnp.zeros((2, 5)).at[1, 3].set(eps)
    fd = (perturbed_loss(delta) - perturbed_loss(-delta)) / (2 * eps)
    np.testing.assert_allclose(grads[1, 2, 3], fd, rtol=2e-2, atol=1e-4)


def test_vanishing_for_a_contracting_rnn():
    cell = cells.SimpleRNN(8, recurrent_init=cells.identity_init(0.3))
    params = cell.init(jax.random.key(0), 2)
    xs = jax.random.uniform(jax.random.key(1), (4, 30, 2))
    grads = gradient_flow.hidden_state_grads(cell, params, xs, lambda hs: jnp.sum(hs[:, -1]))
    norms = gradient_flow.norms_by_distance(grads)
    assert norms[-1] < 1e-12 * norms[0]
    assert np.all(np.diff(norms) <= 0)


def test_models_include_chrono_variants_built_with_t_max_equal_to_t():
    from absl import app

    assert gradient_flow.model_names("lstm,gru_chrono") == ("lstm", "gru_chrono")
    assert set(gradient_flow.model_names("all")) == {
        *cells.names(grids=False),
        "lstm_chrono",
        "gru_chrono",
    }
    with pytest.raises(app.UsageError, match="valid names are all, gru"):
        gradient_flow.model_names("lstm,nope")
    task, params, source = gradient_flow.load("lstm_chrono", 40, "unused", trained=False)
    assert source is None and task.cell.chrono_t_max == 40
    # chrono: b_f = log(U[1, T - 1]) in [0, log 39], b_i = -b_f.
    h = task.cell.hidden_size
    b_i, b_f = params["rnn"][0]["b"][:h], params["rnn"][0]["b"][h : 2 * h]
    assert float(b_f.min()) >= 0.0 and float(b_f.max()) <= np.log(39) + 1e-6
    np.testing.assert_allclose(b_i, -b_f)
