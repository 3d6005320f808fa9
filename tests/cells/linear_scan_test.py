"""minGRU / minLSTM: the parallel and hoisted modes of `cells.scan` against the sequential mode
and float64.

The shared parameterised tests (sequence_test, resets_test, properties_test, ...) already run
both cells in their default (parallel) mode against reference_numpy; here: long sequences,
extreme inputs, gradients, the mode option and the solver itself.
"""

from __future__ import annotations

import functools

import jax
import jax.extend
import jax.numpy as jnp
import numpy as np
import pytest
import reference_numpy
from cells_testing import assert_close, random_params

import cells
from cells import linear_scan

PARALLEL_CELLS = {"mingru": cells.MinGRU(16), "minlstm": cells.MinLSTM(16)}
ids = pytest.mark.parametrize("name", list(PARALLEL_CELLS))


def _long_case(cell, steps, seed=0, batch=3, inputs=4):
    rng = np.random.default_rng(seed)
    params = random_params(cell, inputs, seed=seed, scale=0.5)
    xs = jnp.asarray(rng.standard_normal((batch, steps, inputs)), jnp.float32)
    carry = cells.RNNState(jnp.asarray(rng.uniform(0, 1, (batch, cell.hidden_size)), jnp.float32))
    lengths = jnp.asarray([steps, steps - steps // 3, steps // 2])
    resets = jnp.asarray(rng.uniform(size=(batch, steps)) < 2.0 / steps)
    return params, xs, carry, lengths, resets


@functools.partial(jax.jit, static_argnames=("cell", "mode", "reverse"))
def _run(cell, params, xs, carry, lengths, resets, mode, reverse):
    return cells.scan(
        cell, params, xs, carry=carry, lengths=lengths, resets=resets, reverse=reverse, mode=mode
    )


@ids
@pytest.mark.parametrize(
    "mode,reverse",
    [
        ("parallel", False),
        ("parallel", True),
        ("hoisted", True),
        pytest.param("hoisted", False, marks=pytest.mark.slow),  # the same loop, unreversed
    ],
)
def test_parallel_equals_sequential_and_float64_at_t4096(name, mode, reverse):
    cell = PARALLEL_CELLS[name]
    params, xs, carry, lengths, resets = _long_case(cell, 4096)
    ys_par, h_par = _run(cell, params, xs, carry, lengths, resets, mode, reverse)
    ys_seq, h_seq = _run(cell, params, xs, carry, lengths, resets, "sequential", reverse)
    ys_64, (h_64,), _ = reference_numpy.run(
        cell, params, xs, carry, np.asarray(lengths), reverse, np.asarray(resets)
    )
    # float32 at T = 4096: the log-space cumsum form drifts to ~3e-4 here.
    assert_close(ys_par, ys_seq, 2e-5, "parallel vs sequential outputs")
    assert_close(h_par.h, h_seq.h, 2e-5, "parallel vs sequential carry")
    assert_close(ys_par, ys_64, 2e-5, "parallel vs float64")
    assert_close(h_par.h, h_64, 2e-5, "parallel carry vs float64")


@ids
@pytest.mark.parametrize(
    "mode,reverse,steps",
    [
        ("parallel", False, 4096),
        ("parallel", True, 256),
        pytest.param("hoisted", True, 1024, marks=pytest.mark.slow),
    ],
)
def test_parallel_gradients_equal_sequential(name, mode, reverse, steps):
    cell = PARALLEL_CELLS[name]
    params, xs, carry, lengths, resets = _long_case(cell, steps, seed=3)
    weights = jnp.asarray(np.random.default_rng(4).standard_normal((3, steps, 16)), jnp.float32)

    def loss(mode, p, x, c):
        ys, final = cells.scan(
            cell, p, x, carry=c, lengths=lengths, resets=resets, reverse=reverse, mode=mode
        )
        return jnp.sum(ys * weights) + jnp.sum(final.h**2)

    grads = {
        mode: jax.jit(jax.grad(functools.partial(loss, mode), argnums=(0, 1, 2)))(params, xs, carry)
        for mode in ("parallel", "sequential")
    }
    for a, b in zip(*map(jax.tree.leaves, grads.values()), strict=True):
        assert_close(a, b, 1e-4, "gradient")


@ids
@pytest.mark.parametrize("mode", ["parallel", "hoisted", "sequential"])
def test_no_nan_or_inf_for_inputs_of_magnitude_1e3(name, mode):
    cell = PARALLEL_CELLS[name]
    params = cell.init(jax.random.key(0), 4)
    signs = np.sign(np.random.default_rng(5).standard_normal((2, 300, 4)))
    xs = jnp.asarray(1e3 * signs, jnp.float32)

    def loss(p):
        ys, _ = cells.scan(cell, p, xs, mode=mode)
        return jnp.sum(ys), ys

    grads, ys = jax.jit(jax.grad(loss, has_aux=True))(params)
    assert np.isfinite(np.asarray(ys)).all()
    assert all(np.isfinite(np.asarray(g)).all() for g in jax.tree.leaves(grads))


def test_minlstm_normalised_gates_stay_finite_when_both_gates_underflow():
    cell = cells.MinLSTM(2)
    xp = jnp.full((1, 6), -1e3, jnp.float32)  # f = i = sigmoid(-1e3) = 0 in float32
    a, b, gates = cell.coefficients({}, xp)
    np.testing.assert_allclose(np.asarray(gates["f"]), 0.5)  # f / (f + i) with f = i
    assert np.isfinite(np.asarray(b)).all()


def _primitives(jaxpr, in_loop=False):
    """(primitive name, inside a loop) of every equation, sub-jaxprs included."""
    for e in jaxpr.eqns:
        yield e.primitive.name, in_loop
        for sub in jax.extend.core.jaxprs_in_params(e.params):
            yield from _primitives(sub, in_loop or e.primitive.name in ("scan", "while"))


def test_auto_mode_hoists_every_gate_out_of_the_loop_on_cpu():
    cell = PARALLEL_CELLS["mingru"]
    params = cell.init(jax.random.key(0), 4)
    xs = jnp.ones((2, 64, 4))

    def found(**kw):
        jaxpr = jax.make_jaxpr(lambda x: cells.scan(cell, params, x, **kw))(xs).jaxpr
        return set(_primitives(jaxpr))

    assert jax.default_backend() == "cpu"
    auto = found()
    assert auto == found(mode="hoisted")  # the CPU choice
    assert ("scan", False) in auto and ("dot_general", False) in auto
    assert ("logistic", False) in auto and ("logistic", True) not in auto  # gates outside
    assert not any(name == "scan" for name, _ in found(mode="parallel"))  # no loop at all
    assert ("logistic", True) in found(mode="sequential")  # gates step by step
    assert ("logistic", True) in found(remat=True)  # remat is a sequential-mode option


def test_mode_errors_name_the_option():
    lstm = cells.LSTM(4)
    params = lstm.init(jax.random.key(0), 3)
    xs = jnp.ones((1, 2, 3))
    for mode in ("parallel", "hoisted"):
        with pytest.raises(ValueError, match=f"mode='{mode}' needs a cell whose recurrence"):
            cells.scan(lstm, params, xs, mode=mode)
    with pytest.raises(ValueError, match="mode must be one of"):
        cells.scan(lstm, params, xs, mode="fast")
    mingru = cells.MinGRU(4)
    with pytest.raises(ValueError, match="backward must be one of"):
        cells.scan(mingru, mingru.init(jax.random.key(0), 3), xs, backward="cudnn")


@ids
def test_empty_time_axis_returns_the_carry(name):
    cell = PARALLEL_CELLS[name]
    params = cell.init(jax.random.key(0), 4)
    carry = cells.RNNState(jnp.full((2, 16), 0.3))
    ys, final = cells.scan(cell, params, jnp.zeros((2, 0, 4)), carry=carry)
    assert ys.shape == (2, 0, 16)
    np.testing.assert_array_equal(np.asarray(final.h), np.float32(0.3))


@pytest.mark.parametrize("method", linear_scan.METHODS)
def test_linear_recurrence_is_the_loop_it_replaces(method):
    rng = np.random.default_rng(6)
    a = rng.uniform(0, 1, (2, 37, 3))
    b = rng.standard_normal((2, 37, 3))
    h0 = rng.standard_normal((2, 3))
    valid = np.arange(37)[None, :] < np.array([[37], [20]])
    resets = rng.uniform(size=(2, 37)) < 0.1
    init = rng.standard_normal((2, 3))
    hs = linear_scan.linear_recurrence(
        *map(jnp.asarray, (a, b, h0)),
        valid_BxT=jnp.asarray(valid),
        resets_BxT=jnp.asarray(resets),
        init_BxH=jnp.asarray(init),
        method=method,
    )
    h, expected = h0.copy(), np.zeros_like(a)
    for t in range(37):
        h = np.where(resets[:, t, None] & valid[:, t, None], init, h)
        h = np.where(valid[:, t, None], a[:, t] * h + b[:, t], h)
        expected[:, t] = h
    assert_close(hs, expected, 1e-6, "linear_recurrence")


def test_g_activation_is_continuous_and_positive():
    x = jnp.asarray([-1e3, -1.0, -1e-7, 0.0, 1e-7, 2.0])
    y = np.asarray(cells.minimal.g(x))
    assert (y > 0).all() or y[0] == 0.0
    np.testing.assert_allclose(y[2:5], 0.5, atol=1e-6)
    np.testing.assert_allclose(y[[1, 5]], [1 / (1 + np.e), 2.5], rtol=1e-6)
