"""cells.ResidualStack: the pre-norm residual block against its equations in float64 NumPy."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import reference_numpy
from cells_testing import LENGTHS, B, T, assert_close, random_inputs

import cells


def _np_norm(x, p, kind):
    if kind == "rms":
        return x / np.sqrt((x**2).mean(-1, keepdims=True) + 1e-5) * p["scale"]
    return reference_numpy.layer_norm(x, p["scale"], p["bias"])


def _np_gelu(x):  # the tanh approximation (jax.nn.gelu's default)
    return 0.5 * x * (1.0 + np.tanh(np.sqrt(2.0 / np.pi) * (x + 0.044715 * x**3)))


def _np_residual(stack, params, xs, lengths):
    """The block equations in float64, each cell run by reference_numpy."""
    p = jax.tree.map(lambda a: np.asarray(a, np.float64), params)
    x = np.asarray(xs, np.float64)
    if "w_in" in p:
        x = x @ p["w_in"] + p["b_in"]
    for cell, block in zip(stack.layers, p["blocks"], strict=True):
        ys, _, _ = reference_numpy.run(
            cell, block["cell"], _np_norm(x, block["norm"], stack.norm), None, lengths
        )
        x = x + ys
        if stack.ffn_size:
            v = _np_norm(x, block["ffn_norm"], stack.norm)
            x = x + (_np_gelu(v @ block["w_gate"]) * (v @ block["w_up"])) @ block["w_down"]
    y = _np_norm(x, p["final_norm"], stack.norm)
    valid = np.arange(x.shape[1])[None, :, None] < np.asarray(lengths)[:, None, None]
    return np.where(valid, y, 0.0)


def _randomised(params, seed=0):
    """Every parameter random (norm scales near 1), so each term of the equations matters."""
    leaves, treedef = jax.tree.flatten(params)
    rng = np.random.default_rng(seed)
    leaves = [
        jnp.asarray(0.5 * rng.standard_normal(a.shape) + (a == 1.0), jnp.float32) for a in leaves
    ]
    return jax.tree.unflatten(treedef, leaves)


STACKS = {
    "mingru_rms_ffn": cells.ResidualStack.uniform(cells.MinGRU(4), 2, ffn_factor=1.5),
    "lstm_layer": cells.ResidualStack.uniform(cells.LSTM(4), 2, norm="layer"),
    "slstm_heads_ffn": cells.ResidualStack((cells.SLSTM(4, num_heads=2),), ffn_factor=2.0),
}


@pytest.mark.parametrize("name", list(STACKS))
def test_residual_stack_matches_its_equations(name):
    stack = STACKS[name]
    params = _randomised(stack.init(jax.random.key(0), 4))  # I = D = 4: no input map
    assert "w_in" not in params
    xs = random_inputs()
    ys, carries = stack(params, xs, lengths=LENGTHS)
    assert ys.shape == (B, T, 4) and len(carries) == len(stack.layers)
    assert_close(ys, _np_residual(stack, params, xs, LENGTHS), 1e-5, name)


def test_input_projection_padding_and_nan_safety():
    stack = cells.ResidualStack.uniform(cells.GRU(6), 2, ffn_factor=1.0)
    params = _randomised(stack.init(jax.random.key(1), 3))
    assert params["w_in"].shape == (3, 6)
    xs = random_inputs((B, T, 3))
    poisoned = xs.at[1, LENGTHS[1] :].set(jnp.nan)

    def loss(p, x):
        ys, _ = stack(p, x, lengths=LENGTHS)
        return jnp.sum(ys**2), ys

    (_, ys), grads = jax.value_and_grad(loss, has_aux=True)(params, poisoned)
    assert_close(ys, _np_residual(stack, params, xs, LENGTHS), 1e-5, "projected")
    assert all(np.isfinite(np.asarray(g)).all() for g in jax.tree.leaves(grads))
    alone, _ = stack(params, xs[1:2, : LENGTHS[1]])  # the padded row, run on its own
    # Round-off only (batch 2 and batch 1 compile to different loops); a leak of the padding
    # would be of the order of the outputs.
    assert_close(ys[1:2, : LENGTHS[1]], alone, 3e-6, "padding-independent")


def test_step_by_step_equals_the_sequence_and_dropout_needs_an_rng():
    stack = cells.ResidualStack.uniform(cells.LSTM(4), 2, ffn_factor=1.0, dropout=0.5)
    params = _randomised(stack.init(jax.random.key(2), 4))
    xs = random_inputs((B, T, 4))
    ys, final = stack(params, xs)
    carry, outs = stack.initial_carry(B), []
    for t in range(T):
        carry, y = stack.step(params, carry, xs[:, t])
        outs.append(y)
    assert_close(jnp.stack(outs, 1), ys, 1e-5, "step")
    jax.tree.map(lambda a, b: assert_close(a, b, 1e-5, "carry"), carry, final)
    a, _ = stack(params, xs, rng=jax.random.key(0))
    b, _ = stack(params, xs, rng=jax.random.key(1))
    assert not np.allclose(a, b) and not np.allclose(a, ys)


def test_bad_arguments_are_one_line_errors():
    with pytest.raises(ValueError, match="same output size"):
        cells.ResidualStack((cells.LSTM(4), cells.GRU(6)))
    with pytest.raises(ValueError, match="norm must be one of"):
        cells.ResidualStack.uniform(cells.LSTM(4), 1, norm="batch")
    with pytest.raises(ValueError, match="ffn_factor must be a number >= 0"):
        cells.ResidualStack.uniform(cells.LSTM(4), 1, ffn_factor=-1)
    stack = cells.ResidualStack.uniform(cells.LSTM(4), 2)
    with pytest.raises(ValueError, match="2 blocks"):
        stack({"blocks": ()}, random_inputs((B, T, 4)))
