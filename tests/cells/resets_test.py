"""Resets inside a sequence: a batch of packed episodes equals each episode run alone.

Row 0 packs episodes of 3, 4 and 2 steps; row 1 episodes of 5 and 2 steps followed by two
padded steps (lengths). Values and gradients (params, inputs, the initial carry) of the packed
run equal those of the episodes run one by one, both directions, for the autodiff and the
hand-written backward, for single cells, a Stack and a Bidirectional layer; and both the fused
path and `reference_scan` agree with the float64 NumPy reference's episodes.
"""

import warnings

import cells_testing as ct
import jax
import jax.numpy as jnp
import numpy as np
import pytest
import reference_numpy

import cells
from cells import kernels

T = 9
EPISODES = [[(0, 3), (3, 7), (7, 9)], [(0, 5), (5, 7)]]
LENGTHS = np.array([9, 7])
RESETS = np.zeros((2, T), bool)
for row, episodes in enumerate(EPISODES):
    for start, _ in episodes[1:]:
        RESETS[row, start] = True
RESETS[1, 8] = True  # a reset in the padding is ignored

NAMES = ["lstm", "gru", "lstmp", "lstm_all", "indrnn", "mgu", "irnn", "slstm_heads", "minlstm"]


def _inputs(cell, seed=0):
    params = ct.random_params(cell, seed=seed)
    xs = ct.random_inputs((2, T, ct.I), seed=seed + 1)
    init = cell.carry_type(
        *(
            jnp.asarray(0.3 * np.random.default_rng(seed + 2).standard_normal(n))
            for n in cell.carry_sizes
        )
    )
    weights = jnp.asarray(np.random.default_rng(seed + 3).standard_normal((2, T, cell.output_size)))
    return params, xs, init, weights


def _packed_loss(cell, reverse, backward):
    def loss(params, xs, init, weights):
        ys, _ = cells.scan(
            cell,
            params,
            xs,
            initial_carry=init,
            lengths=LENGTHS,
            resets=RESETS,
            reverse=reverse,
            backward=backward,
        )
        return jnp.sum(weights * ys), ys

    return loss


def _alone_loss(cell, reverse):
    """The same loss with every episode run alone from the initial carry."""

    def loss(params, xs, init, weights):
        total, ys = 0.0, jnp.zeros((2, T, cell.output_size))
        for row, episodes in enumerate(EPISODES):
            for start, end in episodes:
                x = xs[row : row + 1, start:end]
                y, _ = cells.scan(cell, params, x, initial_carry=init, reverse=reverse)
                total = total + jnp.sum(weights[row : row + 1, start:end] * y)
                ys = ys.at[row, start:end].set(y[0])
        return total, ys

    return loss


# Every cell runs every case in the slow suite. The default run covers each direction and each
# backward once on the LSTM and the GRU, and a linear-scan cell and the IRNN forward.
_DEFAULT_CASES = {
    ("lstm", False, "autodiff"), ("lstm", True, "fused"),
    ("gru", False, "fused"), ("gru", True, "autodiff"),
    ("minlstm", False, "autodiff"), ("irnn", False, "autodiff"),
}  # fmt: skip


def _default_case(name, reverse, backward):
    return (name, reverse, backward) in _DEFAULT_CASES


@pytest.mark.parametrize(
    "name,reverse,backward",
    [
        pytest.param(
            name,
            reverse,
            backward,
            marks=() if _default_case(name, reverse, backward) else pytest.mark.slow,
        )
        for name in NAMES
        for reverse in (False, True)
        # backward='fused' on a cell without a hand-written backward is autodiff again
        for backward in ("autodiff", "fused")
        if backward == "autodiff" or kernels.supports(ct.CELLS[name])
    ],
)
def test_packed_episodes_equal_each_episode_alone(name, reverse, backward):
    cell = ct.CELLS[name]
    args = _inputs(cell)
    grad = lambda fn: jax.jit(jax.value_and_grad(fn, argnums=(0, 1, 2), has_aux=True))(*args)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # fused on a cell without its own backward: autodiff
        (v_packed, ys_packed), g_packed = grad(_packed_loss(cell, reverse, backward))
    (v_alone, ys_alone), g_alone = grad(_alone_loss(cell, reverse))
    ct.assert_close(ys_packed, ys_alone, 1e-5, "outputs")
    ct.assert_close(v_packed, v_alone, 1e-5, "loss")
    for k, (a, b) in enumerate(
        zip(jax.tree.leaves(g_packed), jax.tree.leaves(g_alone), strict=True)
    ):
        ct.assert_close(a, b, 2e-5, f"gradient leaf {k}")
    assert np.asarray(g_packed[2][0]).any()  # the initial carry gets a gradient at every start


@pytest.mark.parametrize("reverse", [False, True])
@pytest.mark.parametrize("name", ["lstm_all", "gru_ln", "indrnn_tanh_bounded"])
def test_resets_against_the_numpy_reference(name, reverse):
    cell = ct.CELLS[name]
    params, xs, init, _ = _inputs(cell, seed=4)
    carry = ct.random_carry(cell, batch=2)
    want, want_final, _ = reference_numpy.run(
        cell, params, xs, carry, LENGTHS, reverse, resets=RESETS, initial=init
    )
    kwargs = dict(carry=carry, initial_carry=init, lengths=LENGTHS, resets=RESETS, reverse=reverse)
    for run in (cells.scan, cells.reference_scan):
        ys, final = run(cell, params, xs, **kwargs)
        ct.assert_close(ys, want, 1e-5, f"{run.__name__} outputs")
        for a, b in zip(final, want_final, strict=True):
            ct.assert_close(a, b, 1e-5, f"{run.__name__} final carry")


def test_reset_at_step_zero_drops_the_given_carry_forward_only():
    cell = ct.CELLS["gru"]
    params, xs, init, _ = _inputs(cell)
    carry = ct.random_carry(cell, batch=2)
    resets = np.zeros((2, T), bool)
    resets[:, 0] = True
    fresh, _ = cells.scan(cell, params, xs, initial_carry=init)
    got, _ = cells.scan(cell, params, xs, carry=carry, initial_carry=init, resets=resets)
    np.testing.assert_allclose(got, fresh, rtol=1e-6, atol=1e-6)
    # Reversed, resets[:, 0] marks the start of the episode read last: nothing to restart.
    plain, _ = cells.scan(cell, params, xs, carry=carry, reverse=True)
    got, _ = cells.scan(cell, params, xs, carry=carry, resets=resets, reverse=True)
    np.testing.assert_allclose(got, plain, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize(
    "bidirectional", [pytest.param(False, marks=pytest.mark.slow), True]
)  # True covers the Stack too
def test_stack_and_bidirectional_with_resets(bidirectional):
    lstm = cells.LSTM(5)
    layer = cells.Bidirectional(lstm, cells.GRU(5)) if bidirectional else lstm
    stack = cells.Stack((layer, cells.GRU(4)), learn_initial_carry=True)
    params = stack.init(jax.random.key(0), ct.I)
    params = jax.tree.map(
        lambda a: a + 0.2 * jax.random.normal(jax.random.key(a.size), a.shape), params
    )
    xs = ct.random_inputs((2, T, ct.I))

    def packed(p):
        ys, _ = stack(p, xs, lengths=LENGTHS, resets=RESETS)
        return jnp.sum(jnp.sin(ys)), ys

    def alone(p):
        total, ys = 0.0, jnp.zeros((2, T, 4))
        for row, episodes in enumerate(EPISODES):
            for start, end in episodes:
                y, _ = stack(p, xs[row : row + 1, start:end])
                total = total + jnp.sum(jnp.sin(y))
                ys = ys.at[row, start:end].set(y[0])
        return total, ys

    (v1, ys1), g1 = jax.jit(jax.value_and_grad(packed, has_aux=True))(params)
    # One compiled program for all the episodes (eagerly, each episode's length retraces).
    (v2, ys2), g2 = jax.jit(jax.value_and_grad(alone, has_aux=True))(params)
    ct.assert_close(ys1, ys2, 1e-5, "outputs")
    for a, b in zip(jax.tree.leaves(g1), jax.tree.leaves(g2), strict=True):
        ct.assert_close(a, b, 2e-5, "gradients")
    assert np.asarray(g1[1]["h0"]).any()  # the learned initial carry is trained


def test_resets_errors():
    cell = ct.CELLS["lstm"]
    params, xs = ct.random_params(cell), ct.random_inputs()
    with pytest.raises(ValueError, match=r"resets must have shape \[3, 5\]"):
        cells.scan(cell, params, xs, resets=np.zeros((3, 4), bool))
    with pytest.raises(ValueError, match="resets must be booleans"):
        cells.scan(cell, params, xs, resets=np.zeros((3, 5), np.int32))
