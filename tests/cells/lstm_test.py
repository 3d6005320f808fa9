"""LSTM cell: init, and numerics against the float64 NumPy equations (reference_numpy)."""

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


def test_init_shapes_and_default_forget_bias():
    params = cells.LSTM(H).init(jax.random.key(0), I)
    assert {k: v.shape for k, v in params.items()} == {
        "w_ih": (I, 4 * H),
        "w_hh": (H, 4 * H),
        "b": (4 * H,),
    }
    assert all(v.dtype == jnp.float32 for v in params.values())
    b_i, b_f, b_g, b_o = np.split(np.asarray(params["b"]), 4)
    np.testing.assert_array_equal(b_f, 1.0)  # Gers et al. 2000: keep memory at the start
    np.testing.assert_array_equal(np.concatenate([b_i, b_g, b_o]), 0.0)
    # Each recurrent gate block is orthogonal.
    for block in np.split(np.asarray(params["w_hh"]), 4, axis=1):
        np.testing.assert_allclose(block.T @ block, np.eye(H), atol=1e-5)


@pytest.mark.parametrize("forget_bias", [0.0, 2.5])
def test_forget_bias_is_configurable(forget_bias):
    b = cells.LSTM(H, forget_bias=forget_bias).init(jax.random.key(0), I)["b"]
    np.testing.assert_array_equal(np.asarray(b[H : 2 * H]), forget_bias)


@pytest.mark.parametrize("reverse", [False, True], ids=["forward", "reverse"])
@pytest.mark.parametrize("use_lengths", [False, True], ids=["full", "lengths"])
def test_matches_numpy_float32(use_lengths, reverse):
    lengths = LENGTHS if use_lengths else None
    check_against_numpy(cells.LSTM(H), lengths=lengths, reverse=reverse, tol=1e-5)


@pytest.mark.parametrize("reverse", [False, True], ids=["forward", "reverse"])
def test_matches_numpy_float64(x64, reverse):
    cell = cells.LSTM(H, param_dtype=jnp.float64)
    check_against_numpy(cell, lengths=LENGTHS, reverse=reverse, dtype=np.float64, tol=1e-12)


@pytest.mark.parametrize("reverse", [False, True], ids=["forward", "reverse"])
def test_trace_reproduces_outputs(reverse):
    """c_t = f_t c_{t-1} + i_t g_t and h_t = o_t tanh(c_t), from the traced gates alone."""
    cell = cells.LSTM(H)
    carry = random_carry(cell)
    ys, final, tr = cells.scan(
        cell,
        random_params(cell),
        random_inputs(),
        carry=carry,
        lengths=LENGTHS,
        reverse=reverse,
        return_trace=True,
    )
    ys, tr = np.asarray(ys), {k: np.asarray(v) for k, v in tr.items()}
    assert set(tr) == {"i", "f", "g", "o", "c"} and all(v.shape == (B, T, H) for v in tr.values())
    for b, length in enumerate(LENGTHS):
        order = range(length - 1, -1, -1) if reverse else range(length)
        c_prev = np.asarray(carry.c[b])
        for t in order:
            c = tr["f"][b, t] * c_prev + tr["i"][b, t] * tr["g"][b, t]
            np.testing.assert_allclose(tr["c"][b, t], c, rtol=1e-5, atol=1e-6)
            np.testing.assert_allclose(ys[b, t], tr["o"][b, t] * np.tanh(c), rtol=1e-5, atol=1e-6)
            c_prev = c
        np.testing.assert_allclose(final.c[b], c_prev, rtol=1e-5, atol=1e-6)
        # Padded steps: zero outputs and zero gates.
        assert not ys[b, length:].any() and not any(v[b, length:].any() for v in tr.values())
