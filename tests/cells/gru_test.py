"""GRU cell, both variants (reset_after True/False): init, and numerics against NumPy."""

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

VARIANTS = pytest.mark.parametrize(
    "reset_after", [True, False], ids=["reset_after", "reset_before"]
)


@VARIANTS
def test_init_shapes(reset_after):
    params = cells.GRU(H, reset_after=reset_after).init(jax.random.key(0), I)
    expected = {"w_ih": (I, 3 * H), "w_hh": (H, 3 * H), "b": (3 * H,)}
    if reset_after:  # the recurrent bias of n, inside the reset product
        expected["b_hn"] = (H,)
    assert {k: v.shape for k, v in params.items()} == expected
    assert not any(np.asarray(params[k]).any() for k in params if k.startswith("b"))


@VARIANTS
@pytest.mark.parametrize("reverse", [False, True], ids=["forward", "reverse"])
@pytest.mark.parametrize("use_lengths", [False, True], ids=["full", "lengths"])
def test_matches_numpy_float32(reset_after, use_lengths, reverse):
    lengths = LENGTHS if use_lengths else None
    check_against_numpy(cells.GRU(H, reset_after=reset_after), lengths=lengths, reverse=reverse)


@VARIANTS
def test_matches_numpy_float64(x64, reset_after):
    cell = cells.GRU(H, reset_after=reset_after, param_dtype=jnp.float64)
    check_against_numpy(cell, lengths=LENGTHS, reverse=True, dtype=np.float64, tol=1e-12)


def test_variants_differ():
    """reset_after changes the function (same weights, b_hn = 0), so the option is real."""
    params = random_params(cells.GRU(H, reset_after=True))
    params["b_hn"] = jnp.zeros((H,))
    before = {k: v for k, v in params.items() if k != "b_hn"}
    ys_after, _ = cells.scan(cells.GRU(H, reset_after=True), params, random_inputs())
    ys_before, _ = cells.scan(cells.GRU(H, reset_after=False), before, random_inputs())
    assert np.abs(np.asarray(ys_after - ys_before)).max() > 1e-3


@VARIANTS
@pytest.mark.parametrize("reverse", [False, True], ids=["forward", "reverse"])
def test_trace_reproduces_outputs(reset_after, reverse):
    """h_t = (1 - z_t) n_t + z_t h_{t-1}, from the traced gates alone."""
    cell = cells.GRU(H, reset_after=reset_after)
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
    assert set(tr) == {"r", "z", "n"} and all(v.shape == (B, T, H) for v in tr.values())
    for b, length in enumerate(LENGTHS):
        h_prev = np.asarray(carry.h[b])
        for t in range(length - 1, -1, -1) if reverse else range(length):
            h = (1.0 - tr["z"][b, t]) * tr["n"][b, t] + tr["z"][b, t] * h_prev
            np.testing.assert_allclose(ys[b, t], h, rtol=1e-5, atol=1e-6)
            h_prev = h
        np.testing.assert_allclose(final.h[b], h_prev, rtol=1e-5, atol=1e-6)
        assert not ys[b, length:].any() and not any(v[b, length:].any() for v in tr.values())
