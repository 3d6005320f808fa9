"""Hawk's recurrent block (cells/hawk.py): parity with recurrentgemma's RecurrentBlock (values,
final cache and gradients; an optional oracle, skipped where recurrentgemma is not installed),
float64 NumPy from the equations, the step API, carries, lengths, resets (with an initial
carry), the parallel mode, its place in `cells.ResidualStack`, and one-line refusals."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from cells_testing import assert_close, random_inputs

import cells
from cells import hawk

B, T, D, H, NH = 2, 9, 8, 12, 3


def _random_params(block, seed=0):
    """Every parameter random (biases included, unlike `init`)."""
    rng = np.random.default_rng(seed)
    params = block.init(jax.random.key(seed), block.width)
    return {k: jnp.asarray(v + 0.3 * rng.standard_normal(v.shape), jnp.float32)
            for k, v in params.items()}  # fmt: skip


BLOCK = cells.HawkBlock(D, lru_width=H, num_heads=NH)
PARAMS = _random_params(BLOCK)
XS = random_inputs((B, T, D))


def _numpy(block, params, xs, h0=None, conv0=None):
    """The block in float64, step by step, from the module docstring's equations."""
    p = {k: np.asarray(v, np.float64) for k, v in params.items()}
    xs = np.asarray(xs, np.float64)
    k, h_width = block.conv_width, block.hidden_size
    heads, d = block.num_heads, h_width // block.num_heads
    h = np.zeros((xs.shape[0], h_width)) if h0 is None else np.asarray(h0, np.float64)
    z_hist = np.zeros((xs.shape[0], k - 1, h_width)) if conv0 is None else np.asarray(conv0)
    gelu = lambda u: 0.5 * u * (1 + np.tanh(np.sqrt(2 / np.pi) * (u + 0.044715 * u**3)))  # noqa: E731
    sigmoid = lambda u: 1 / (1 + np.exp(-u))  # noqa: E731
    outs = []
    for t in range(xs.shape[1]):
        x = xs[:, t]
        y = gelu(x @ p["w_y"] + p["b_y"])
        z = x @ p["w_x"] + p["b_x"]
        window = np.concatenate([z_hist, z[:, None]], axis=1)  # z_{t-K+1} .. z_t
        v = p["conv_b"] + sum(window[:, j] * p["conv_w"][j] for j in range(k))
        vh = v.reshape(-1, heads, d)
        pre_r = np.einsum("bhi,hij->bhj", vh, p["a_gate_w"]).reshape(v.shape) + p["a_gate_b"]
        pre_i = (
            np.einsum("bhi,hij->bhj", vh, p["input_gate_w"]).reshape(v.shape) + p["input_gate_b"]
        )
        r, i = sigmoid(pre_r), sigmoid(pre_i)
        a = sigmoid(-p["a_param"]) ** (8.0 * r)
        h = a * h + np.sqrt(1 - a**2) * (i * v)
        outs.append((h * y) @ p["w_out"] + p["b_out"])
        z_hist = window[:, 1:]
    return np.stack(outs, 1), h, z_hist


def test_equals_float64_numpy_from_the_equations():
    ys, state = BLOCK.scan(PARAMS, XS)
    ys_np, h_np, conv_np = _numpy(BLOCK, PARAMS, XS)
    # jax.nn.gelu's default is the tanh approximation, as recurrentgemma's
    assert_close(ys, ys_np, 1e-5, "outputs")
    assert_close(state.h, h_np, 1e-5, "h")
    assert_close(state.conv, conv_np, 1e-5, "conv")


def test_step_carry_split_and_parallel_mode_equal_the_scan():
    ys, state = BLOCK.scan(PARAMS, XS)
    carry, outs = BLOCK.initial_carry(B), []
    for t in range(T):
        carry, out = BLOCK.step(PARAMS, carry, XS[:, t])
        outs.append(out)
    assert_close(jnp.stack(outs, 1), ys, 2e-6, "steps")
    assert_close(carry.conv, state.conv, 1e-6, "steps' conv")
    first, mid = BLOCK.scan(PARAMS, XS[:, :4])
    second, end = BLOCK.scan(PARAMS, XS[:, 4:], carry=mid)
    assert_close(jnp.concatenate([first, second], 1), ys, 2e-6, "split")
    assert_close(end.h, state.h, 2e-6, "split h")
    parallel, _ = BLOCK.scan(PARAMS, XS, mode="parallel")
    assert_close(parallel, ys, 2e-6, "parallel")


def test_lengths_keep_the_carry_and_zero_the_padding():
    lengths = jnp.asarray([T, 2])
    ys, state = BLOCK.scan(PARAMS, XS.at[1, 2:].set(jnp.nan), lengths=lengths)
    short, short_state = BLOCK.scan(PARAMS, XS[1:, :2])
    assert_close(ys[1, :2], short[0], 1e-6, "valid part")
    assert float(jnp.abs(ys[1, 2:]).max()) == 0.0 and bool(jnp.all(jnp.isfinite(ys)))
    assert_close(state.h[1], short_state.h[0], 1e-6, "final h")
    assert_close(state.conv[1], short_state.conv[0], 1e-6, "final conv")


@pytest.mark.parametrize("reset_at", [1, 4, 7, 8])
def test_a_reset_restarts_from_the_initial_carry(reset_at):
    """After a reset the block runs as a fresh sequence from initial_carry: the convolution
    never sees the inputs before it (recurrentgemma's document mask), and the final carry's
    convolution state too (a reset within the last K-1 steps)."""
    init = cells.HawkState(
        random_inputs((B, H), seed=5), random_inputs((B, BLOCK.conv_width - 1, H), seed=6)
    )
    resets = jnp.zeros((B, T), bool).at[0, reset_at].set(True)
    ys, state = BLOCK.scan(PARAMS, XS, resets=resets, initial_carry=init)
    plain, _ = BLOCK.scan(PARAMS, XS, initial_carry=init)
    fresh, fresh_state = BLOCK.scan(PARAMS, XS[:, reset_at:], carry=init)
    assert_close(ys[0, :reset_at], plain[0, :reset_at], 1e-6, "before the reset")
    assert_close(ys[0, reset_at:], fresh[0], 1e-6, "after the reset")
    assert_close(state.h[0], fresh_state.h[0], 1e-6, "final h")
    assert_close(state.conv[0], fresh_state.conv[0], 1e-6, "final conv")
    assert_close(ys[1], plain[1], 1e-6, "the other sequence")


def test_in_a_residual_stack_griffins_hawk():
    stack = cells.ResidualStack.uniform(cells.HawkBlock(D, num_heads=2), 2, ffn_factor=3)
    params = stack.init(jax.random.key(0), 5)
    xs = random_inputs((B, T, 5))
    ys, carries = stack(params, xs)
    carry, outs = stack.initial_carry(B), []
    for t in range(T):
        carry, out = stack.step(params, carry, xs[:, t])
        outs.append(out)
    assert_close(jnp.stack(outs, 1), ys, 1e-5, "stack steps")
    grads = jax.grad(lambda p: jnp.sum(stack(p, xs)[0] ** 2))(params)
    assert all(bool(jnp.all(jnp.isfinite(g))) for g in jax.tree.leaves(grads))


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda: cells.HawkBlock(8, num_heads=3), "num_heads=3 must divide"),
        (lambda: cells.HawkBlock(0), "width must be an int >= 1"),
        (lambda: BLOCK.init(jax.random.key(0), 5), "input_size must equal width=8"),
        (lambda: BLOCK.scan(PARAMS, XS, backward="fused"), "autodiff only"),
        (lambda: BLOCK.scan(PARAMS, XS, mode="fast"), "mode must be one of"),
        (lambda: BLOCK.scan(PARAMS, XS, reverse=True), "reverse not supported"),
        (lambda: BLOCK.scan(PARAMS, XS, carry=BLOCK.initial_carry(3)), "carry must be a HawkState"),
        (lambda: BLOCK.step(PARAMS, BLOCK.initial_carry(B), XS[:, 0], zoneout=0.1), "zoneout"),
    ],
)
def test_bad_input_is_one_line(make, message):
    with pytest.raises(ValueError, match=message):
        make()


# -- the reference implementation ---------------------------------------------------------------
def test_values_cache_and_gradients_equal_recurrentgemmas_recurrent_block():
    modules = pytest.importorskip(
        "recurrentgemma.jax.modules", reason="recurrentgemma not installed (see rglru_test.py)"
    )
    reference = modules.RecurrentBlock(width=D, num_heads=NH, lru_width=H)
    pos = jnp.broadcast_to(jnp.arange(1, T + 1), (B, T))  # no segment start (cells.rglru)
    with jax.numpy_rank_promotion("allow"):
        variables = reference.init(jax.random.key(0), XS, pos)
    rng = np.random.default_rng(1)
    variables = jax.tree.map(
        lambda v: jnp.asarray(v + 0.3 * rng.standard_normal(v.shape), v.dtype), variables
    )
    block, params = hawk.HawkBlock.from_recurrentgemma(variables)
    assert block == BLOCK

    def theirs(v, x):
        with jax.numpy_rank_promotion("allow"):
            y, cache = reference.apply(v, x, pos)
        return y, cache.rg_lru_state, cache.conv1d_state

    def ours(p, x):
        y, state = block.scan(p, x)
        return y, state.h, state.conv

    for a, b, what in zip(ours(params, XS), theirs(variables, XS), ("y", "h", "conv"),
                          strict=True):  # fmt: skip
        assert_close(a, b, 1e-5, what)
    loss = lambda f, w, x: sum(jnp.sum(jnp.sin(o)) for o in f(w, x))  # noqa: E731
    g_ours = jax.grad(lambda p, x: loss(ours, p, x), argnums=(0, 1))(params, XS)
    g_ref = jax.grad(lambda v, x: loss(theirs, v, x), argnums=(0, 1))(variables, XS)
    assert_close(g_ours[1], g_ref[1], 1e-5, "d inputs")
    _, as_ours = hawk.HawkBlock.from_recurrentgemma(g_ref[0])
    for name in params:
        assert_close(g_ours[0][name], as_ours[name], 1e-5, f"d {name}")
