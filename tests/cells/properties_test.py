"""Properties over random lengths, padding and inputs (hypothesis, few examples each).

Shapes stay fixed (or take one of two values) so the examples reuse compiled code.
"""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from cells_testing import (
    CELL_IDS,
    CELLS,
    B,
    I,
    T,
    assert_close,
    random_params,
    rounding_tol,
)
from hypothesis import given, settings
from hypothesis import strategies as st

import cells
from cells.sequence import reverse_index

SETTINGS = settings(max_examples=12, deadline=None, derandomize=True)
ALL_CELLS = pytest.mark.parametrize("name", CELL_IDS)

lengths_strategy = st.lists(st.integers(0, T), min_size=B, max_size=B).map(np.array)


@functools.cache
def _scan_fn(name, reverse):
    cell = CELLS[name]
    return jax.jit(
        lambda p, x, lens, c=None: cells.scan(cell, p, x, carry=c, lengths=lens, reverse=reverse)
    )


def _inputs(seed, steps=T):
    return np.random.default_rng(seed).standard_normal((B, steps, I)).astype(np.float32)


@ALL_CELLS
@SETTINGS
@given(
    lengths=lengths_strategy,
    extra=st.sampled_from([0, 3]),
    seed=st.integers(0, 2**16),
    reverse=st.booleans(),
)
def test_valid_outputs_independent_of_padding(name, lengths, extra, seed, reverse):
    """Outputs at valid steps and the final carry ignore padding contents and padding length."""
    params = random_params(CELLS[name])
    xs = _inputs(seed)
    clean = xs.copy()
    for b, length in enumerate(lengths):
        clean[b, length:] = 0.0
    noisy = np.concatenate([xs, 10.0 * _inputs(seed + 1, extra)], axis=1)  # garbage padding
    run = _scan_fn(name, reverse)
    ys, carry = run(params, clean, lengths)
    ys_noisy, carry_noisy = run(params, noisy, lengths)
    assert_close(ys_noisy[:, :T], ys, 1e-6, "valid outputs")
    assert not np.asarray(ys_noisy[:, T:]).any()
    jax.tree.map(lambda a, b: assert_close(a, b, 1e-6, "carry"), carry_noisy, carry)


@SETTINGS
@given(lengths=st.lists(st.integers(0, 8), min_size=4, max_size=4))
def test_reverse_index_is_an_involution_on_the_valid_part(lengths):
    steps = 8
    idx = np.asarray(reverse_index(jnp.asarray(lengths), steps))
    rows = np.arange(len(lengths))[:, None]
    np.testing.assert_array_equal(idx[rows, idx], np.broadcast_to(np.arange(steps), idx.shape))
    for b, length in enumerate(lengths):
        np.testing.assert_array_equal(idx[b, :length], np.arange(length)[::-1])
        np.testing.assert_array_equal(idx[b, length:], np.arange(length, steps))  # padding stays


@ALL_CELLS
@SETTINGS
@given(lengths=lengths_strategy, seed=st.integers(0, 2**16))
def test_reverse_is_forward_on_the_reversed_valid_part(name, lengths, seed):
    """reverse=True == forward over each sequence's valid part flipped, outputs flipped back; so
    reversing twice (inputs, then outputs) is the identity on the valid part."""
    params = random_params(CELLS[name])
    xs = _inputs(seed)
    flipped = xs.copy()
    for b, length in enumerate(lengths):
        flipped[b, :length] = xs[b, :length][::-1]
    ys_rev, carry_rev = _scan_fn(name, True)(params, xs, lengths)
    ys_fwd, carry_fwd = _scan_fn(name, False)(params, flipped, lengths)
    ys_fwd = np.array(ys_fwd)
    for b, length in enumerate(lengths):
        ys_fwd[b, :length] = ys_fwd[b, :length][::-1]
    assert_close(ys_rev, ys_fwd, 1e-6, "outputs")
    jax.tree.map(lambda a, b: assert_close(a, b, 1e-6, "carry"), carry_rev, carry_fwd)


@ALL_CELLS
@SETTINGS
@given(
    lengths=st.lists(st.integers(0, 2 * T), min_size=B, max_size=B).map(np.array),
    seed=st.integers(0, 2**16),
)
def test_carry_chaining_with_lengths(name, lengths, seed):
    """One call over 2T steps == a call over the first T steps and one over the rest, the carry
    fed through and each length divided between the two calls."""
    split = T
    params = random_params(CELLS[name])
    xs = _inputs(seed, 2 * T)
    ys, carry = _scan_fn(name, False)(params, xs, lengths)
    run = _scan_fn(name, False)
    ys_a, carry_ab = run(params, xs[:, :split], np.clip(lengths, 0, split))
    ys_b, carry_ab = run(
        params, xs[:, split:], np.clip(lengths - split, 0, 2 * T - split), carry_ab
    )
    tol = rounding_tol(CELLS[name])
    assert_close(np.concatenate([ys_a, ys_b], axis=1), ys, tol, "outputs")
    jax.tree.map(lambda a, b: assert_close(a, b, tol, "carry"), carry_ab, carry)
