"""RG-LRU (cells/rglru.py): its three scan modes at T = 4096, the square root's clipped
derivative, the initialisation, the one-line refusals, and parity with Google DeepMind's
reference layer (`recurrentgemma.jax.layers.RGLRU`, an optional test oracle: skipped where the
package is not installed; .ci/run installs it). The float64 NumPy equations, lengths, resets,
the step API and finite differences run for it as for every registered cell (cells_testing)."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from cells_testing import assert_close, random_inputs, random_params

import cells
from cells import interop, rglru


def test_the_three_modes_agree_at_4096_steps():
    cell = cells.RGLRU(16)
    params = cell.init(jax.random.key(0), 8)
    xs = random_inputs((2, 4096, 8))
    lengths = jnp.asarray([4096, 3001])
    out = {
        mode: jax.jit(lambda p, x, mode=mode: cells.scan(cell, p, x, lengths=lengths, mode=mode))(
            params, xs
        )
        for mode in ("sequential", "hoisted", "parallel")
    }
    for mode in ("hoisted", "parallel"):
        leaves = zip(jax.tree.leaves(out[mode]), jax.tree.leaves(out["sequential"]), strict=True)
        for a, b in leaves:
            assert float(jnp.max(jnp.abs(a - b))) <= 2e-5, mode


def test_gradients_of_the_modes_agree():
    cell = cells.RGLRU(6)
    params, xs = random_params(cell), random_inputs((2, 64, 4))

    def loss(p, mode):
        ys, _ = cells.scan(cell, p, xs, mode=mode)
        return jnp.sum(jnp.sin(ys))

    grads = {m: jax.grad(loss)(params, m) for m in ("sequential", "hoisted", "parallel")}
    for mode in ("hoisted", "parallel"):
        for k in params:
            assert_close(grads[mode][k], grads["sequential"][k], 2e-5, f"{mode} d{k}")


def test_the_square_roots_derivative_is_clipped_at_1000_in_both_modes():
    sqrt = rglru.sqrt_bounded_derivative
    x = jnp.asarray([0.0, 1e-9, 0.25, 1.0])
    expected = 0.5 / np.sqrt(np.maximum(np.asarray(x, np.float64), 1 / (4 * 1000.0**2)))
    np.testing.assert_allclose(jax.vmap(jax.grad(sqrt))(x), expected, rtol=1e-6)
    np.testing.assert_allclose(jax.jvp(sqrt, (x,), (jnp.ones_like(x),))[1], expected, rtol=1e-6)
    np.testing.assert_allclose(sqrt(x), np.sqrt(np.asarray(x)), rtol=1e-7)
    # a saturated recurrence gate (r = 0, a_t = 1) gives finite gradients
    cell = cells.RGLRU(3)
    params = cell.init(jax.random.key(0), 2)
    params["b"] = params["b"].at[:3].set(-200.0)  # pre-activation of r: sigmoid -> 0
    grads = jax.grad(lambda p: jnp.sum(cells.scan(cell, p, jnp.ones((1, 5, 2)))[0]))(params)
    assert all(bool(jnp.all(jnp.isfinite(g))) for g in grads.values())


def test_initialisation_draws_the_base_decay_on_recurrentgemmas_ring():
    params = cells.RGLRU(4096).init(jax.random.key(0), 3)
    a = np.asarray(jax.nn.sigmoid(-params["a_param"]), np.float64)  # the paper's sigmoid(Lambda)
    assert 0.9 - 1e-6 <= a.min() and a.max() <= 0.999 + 1e-6
    # a^2 uniform on [0.81, 0.998]: its mean is the interval's midpoint
    assert abs(np.mean(a**2) - (0.81 + 0.999**2) / 2) < 2e-3
    assert set(params) == {"w_ih", "b", "a_param"} and params["w_ih"].shape == (3, 3 * 4096)


@pytest.mark.parametrize(
    "options, message",
    [
        ({"c": 0}, "c must be a number > 0"),
        ({"min_rad": 0.99, "max_rad": 0.9}, "need 0 < min_rad <= max_rad < 1"),
        ({"max_rad": 1.0}, "need 0 < min_rad <= max_rad < 1"),
    ],
)
def test_bad_options_are_one_line(options, message):
    with pytest.raises(ValueError, match=message):
        cells.RGLRU(4, **options)


# -- the reference implementation ---------------------------------------------------------------
# recurrentgemma broadcasts by rank promotion, which this suite raises on (tests/conftest.py).
RANK_PROMOTION = jax.numpy_rank_promotion("allow")


def _reference(width, num_heads, seed=0):
    layers = pytest.importorskip(
        "recurrentgemma.jax.layers", reason="recurrentgemma not installed (pip install "
        "--no-deps recurrentgemma==1.0.1 einops jaxtyping 'typeguard<3' sentencepiece)"
    )  # fmt: skip
    layer = layers.RGLRU(width=width, num_heads=num_heads)
    x = random_inputs((2, 3, width))
    with RANK_PROMOTION:
        variables = layer.init(jax.random.key(seed), x, jnp.zeros((2, 3), jnp.int32))
    # random gate biases too (the layer starts them at zero)
    rng = np.random.default_rng(seed)
    for gate in ("input_gate", "a_gate"):
        b = variables["params"][gate]["b"]
        variables["params"][gate]["b"] = jnp.asarray(0.5 * rng.standard_normal(b.shape), b.dtype)
    return layer, variables


@pytest.mark.parametrize("num_heads", [1, 4])
def test_values_and_gradients_equal_recurrentgemmas_layer(num_heads):
    width, steps = 16, 33
    layer, variables = _reference(width, num_heads)
    cell, params = interop.rglru_from_recurrentgemma(variables)
    xs = random_inputs((2, steps, width))
    h0 = random_inputs((2, width), seed=3)
    # positions that start at 1: no segment start, the paper's equation at every step
    pos = jnp.broadcast_to(jnp.arange(1, steps + 1), (2, steps))

    def theirs(v, x, h):
        with RANK_PROMOTION:
            return layer.apply(v, x, pos, h)

    def ours(p, x, h):
        ys, carry = cells.scan(cell, p, x, carry=cells.RNNState(h))
        return ys, carry.h

    for mode in ("sequential", "parallel"):
        ys, last = jax.jit(lambda p, x, h, m=mode: cells.scan(cell, p, x, carry=cells.RNNState(h),
                                                             mode=m))(params, xs, h0)  # fmt: skip
        ys_ref, last_ref = theirs(variables, xs, h0)
        assert_close(ys, ys_ref, 1e-5, f"{mode} outputs")
        assert_close(last.h, last_ref, 1e-5, f"{mode} final state")

    def loss(f, weights, x, h):
        ys, last = f(weights, x, h)
        return jnp.sum(jnp.sin(ys)) + jnp.sum(last**2)

    g_ours = jax.grad(lambda p, x, h: loss(ours, p, x, h), argnums=(0, 1, 2))(params, xs, h0)
    g_ref = jax.grad(lambda v, x, h: loss(theirs, v, x, h), argnums=(0, 1, 2))(variables, xs, h0)
    assert_close(g_ours[1], g_ref[1], 1e-5, "d inputs")
    assert_close(g_ours[2], g_ref[2], 1e-5, "d initial state")
    # the parameters' gradients, through the conversion back to the layer's layout
    ref = g_ref[0]["params"]
    assert_close(g_ours[0]["a_param"], ref["a_param"], 1e-5, "d a_param")
    d = width // num_heads
    w_a, w_x, _ = cell.split_gates(g_ours[0], "w_ih")
    b_a, b_x, _ = cell.split_gates(g_ours[0], "b")
    for name, w, b in (("a_gate", w_a, b_a), ("input_gate", w_x, b_x)):
        blocks = np.stack([np.asarray(w)[k * d : (k + 1) * d, k * d : (k + 1) * d]
                           for k in range(num_heads)])  # fmt: skip
        assert_close(blocks, ref[name]["w"], 1e-5, f"d {name}.w")
        assert_close(np.asarray(b).reshape(num_heads, d), ref[name]["b"], 1e-5, f"d {name}.b")


def test_a_segment_start_is_the_one_documented_difference():
    """At segment_pos == 0 the layer sets a_t = 0 and skips sqrt(1 - a_t^2): its first state is
    i_0 * x_0, where this cell's (from a zero carry) is sqrt(1 - a_0^2) * i_0 * x_0."""
    width = 8
    layer, variables = _reference(width, 2)
    cell, params = interop.rglru_from_recurrentgemma(variables)
    xs = random_inputs((2, 4, width))
    with RANK_PROMOTION:
        ys_ref, _ = layer.apply(variables, xs, jnp.broadcast_to(jnp.arange(4), (2, 4)))
    ys, _, trace = cells.scan(cell, params, xs, return_trace=True)
    scale = jnp.sqrt(1.0 - trace["a"][:, 0] ** 2)
    assert_close(ys[:, 0], scale * ys_ref[:, 0], 1e-5, "first step")


def test_conversion_back_to_recurrentgemma_round_trips_and_refuses_what_it_cannot_hold():
    layer, variables = _reference(8, 2)
    cell, params = interop.rglru_from_recurrentgemma(variables)
    back = interop.rglru_to_recurrentgemma(cell, params, num_heads=2)
    for path, leaf in jax.tree_util.tree_leaves_with_path(variables):
        other = back
        for key in path:
            other = other[key.key]
        np.testing.assert_array_equal(np.asarray(other), np.asarray(leaf))
    with pytest.raises(ValueError, match="not zero off 4 diagonal blocks"):
        interop.rglru_to_recurrentgemma(cell, params, num_heads=4)
    with pytest.raises(ValueError, match="no value projection"):
        interop.rglru_to_recurrentgemma(cell, cell.init(jax.random.key(0), 8))
    with pytest.raises(ValueError, match="maps 3 inputs to 8 units"):
        interop.rglru_to_recurrentgemma(cell, cell.init(jax.random.key(0), 3))
