"""The hand-written sequence backward (`cells.scan(..., backward='fused')`) against autodiff.

Values and gradients (w.r.t. every parameter, the inputs and the initial carry) are checked
against JAX autodiff of `cells.reference_scan` (the gate-by-gate spec, float64, tight), of the
default `cells.scan` (float32), and against central finite differences (float64).
"""

import cells_testing as ct
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import cells
from cells import base as cells_base
from cells import kernels

slow = pytest.mark.slow


def _loss_fn(cell, scan_fn, lengths, reverse, **kwargs):
    """A scalar touching every output and the final carry with distinct weights."""

    def loss(params, xs, carry):
        ys, final = scan_fn(
            cell, params, xs, carry=carry, lengths=lengths, reverse=reverse, **kwargs
        )
        w = jnp.sin(jnp.arange(ys.size, dtype=ys.dtype)).reshape(ys.shape)
        total = jnp.sum(w * ys) + jnp.sum(ys * ys)
        for k, c in enumerate(final):
            total = total + (k + 1.5) * jnp.sum(jnp.cos(c))
        return total

    return loss


def _value_and_grads(loss, params, xs, carry, jit=True):
    fn = jax.value_and_grad(loss, argnums=(0, 1, 2))
    return (jax.jit(fn) if jit else fn)(params, xs, carry)


def _assert_tree_close(actual, expected, tol):
    for (path, a), b in zip(
        jax.tree_util.tree_leaves_with_path(actual), jax.tree.leaves(expected), strict=True
    ):
        ct.assert_close(a, b, tol, jax.tree_util.keystr(path))


def _default_run(name, use_lengths, reverse, projection) -> bool:
    """Every cell with padding and reverse; `projection` matters only to the cells with a
    hand-written backward (the others run autodiff for backward='fused')."""
    hand_written = kernels.supports(ct.CELLS[name])
    return use_lengths and reverse and (hand_written or projection == "hoisted")


# The default run (above); the rest of the grid is marked slow.
_GRID = [
    pytest.param(
        name,
        use_lengths,
        reverse,
        projection,
        marks=() if _default_run(name, use_lengths, reverse, projection) else slow,
    )
    for name in ct.CELL_IDS
    for use_lengths in (False, True)
    for reverse in (False, True)
    for projection in ("hoisted", "in_loop")
]


@pytest.mark.parametrize("name,use_lengths,reverse,projection", _GRID)
def test_matches_reference_scan_float64(x64, name, use_lengths, reverse, projection):
    cell = ct.CELLS[name]
    params = ct.random_params(cell, dtype=np.float64)
    xs = ct.random_inputs(dtype=np.float64)
    carry = ct.random_carry(cell, dtype=np.float64)
    lengths = jnp.asarray(ct.LENGTHS) if use_lengths else None
    fused = _loss_fn(cell, cells.scan, lengths, reverse, backward="fused", projection=projection)
    spec = _loss_fn(cell, cells.reference_scan, lengths, reverse)
    v, g = _value_and_grads(fused, params, xs, carry)
    v_ref, g_ref = _value_and_grads(spec, params, xs, carry)
    np.testing.assert_allclose(v, v_ref, rtol=1e-12)
    _assert_tree_close(g, g_ref, 1e-10)
    # The initial-carry gradient is non-trivial (not all zeros), so the test could fail (in
    # some field: the mLSTM's h is not fed back, only its memory).
    assert max(float(jnp.max(jnp.abs(field))) for field in g[2]) > 1e-3


@pytest.mark.parametrize(
    "name,jit",
    [
        pytest.param(n, j, marks=() if (n, j) in (("lstm", True), ("gru", False)) else slow)
        for n in ct.CELL_IDS
        for j in (True, False)
    ],
)
def test_matches_autodiff_scan_float32(name, jit):
    cell = ct.CELLS[name]
    params, xs, carry = ct.random_params(cell), ct.random_inputs(), ct.random_carry(cell)
    lengths = jnp.asarray(ct.LENGTHS)
    fused = _loss_fn(cell, cells.scan, lengths, True, backward="fused")
    auto = _loss_fn(cell, cells.scan, lengths, True, backward="autodiff")
    v, g = _value_and_grads(fused, params, xs, carry, jit=jit)
    v_ref, g_ref = _value_and_grads(auto, params, xs, carry, jit=jit)
    np.testing.assert_allclose(v, v_ref, rtol=1e-5)
    _assert_tree_close(g, g_ref, 1e-5)


@pytest.mark.parametrize(
    "name",
    [  # cells without a hand-written backward run the same autodiff path twice: one suffices
        pytest.param(n, marks=() if kernels.supports(ct.CELLS[n]) or n == "mgu" else slow)
        for n in ct.CELL_IDS
    ],
)
def test_forward_equals_default_scan(name):
    cell = ct.CELLS[name]
    params, xs, carry = ct.random_params(cell), ct.random_inputs(), ct.random_carry(cell)
    for lengths, projection in [(None, "hoisted"), (jnp.asarray(ct.LENGTHS), "in_loop")]:
        ys, final = cells.scan(
            cell, params, xs, carry=carry, lengths=lengths, backward="fused", projection=projection
        )
        ys_ref, final_ref = cells.scan(cell, params, xs, carry=carry, lengths=lengths)
        np.testing.assert_allclose(ys, ys_ref, rtol=1e-6, atol=1e-6)
        _assert_tree_close(final, final_ref, 1e-6)
    assert ys.shape == (ct.B, ct.T, cell.output_size)


@pytest.mark.parametrize("name", ["lstm", "gru_reset_before"])
def test_finite_differences_float64(x64, name):
    """Directional derivative along a random direction vs a central difference."""
    cell = ct.CELLS[name]
    params = ct.random_params(cell, dtype=np.float64)
    xs = ct.random_inputs(dtype=np.float64)
    carry = ct.random_carry(cell, dtype=np.float64)
    loss = jax.jit(_loss_fn(cell, cells.scan, jnp.asarray(ct.LENGTHS), False, backward="fused"))
    primal = (params, xs, carry)
    rng = np.random.default_rng(7)
    direction = jax.tree.map(lambda a: jnp.asarray(rng.standard_normal(a.shape)), primal)
    grads = jax.grad(loss, argnums=(0, 1, 2))(*primal)
    analytic = sum(
        float(jnp.sum(g * d))
        for g, d in zip(jax.tree.leaves(grads), jax.tree.leaves(direction), strict=True)
    )
    eps = 1e-6
    plus = jax.tree.map(lambda a, d: a + eps * d, primal, direction)
    minus = jax.tree.map(lambda a, d: a - eps * d, primal, direction)
    numeric = (float(loss(*plus)) - float(loss(*minus))) / (2 * eps)
    np.testing.assert_allclose(analytic, numeric, rtol=1e-6)


def test_carry_continues_and_unroll():
    """Two halves with the carry passed on equal one call; unroll=2 changes nothing."""
    cell = ct.CELLS["lstm"]
    params, xs = ct.random_params(cell), ct.random_inputs(shape=(ct.B, 6, ct.I))

    def loss(p, x):
        ys1, c1 = cells.scan(cell, p, x[:, :3], backward="fused")
        ys2, c2 = cells.scan(cell, p, x[:, 3:], carry=c1, backward="fused", unroll=2)
        return jnp.sum(ys1**2) + jnp.sum(ys2**2) + jnp.sum(c2.c)

    def loss_whole(p, x):
        ys, c = cells.scan(cell, p, x)
        return jnp.sum(ys**2) + jnp.sum(c.c)

    g = jax.jit(jax.grad(loss, argnums=(0, 1)))(params, xs)
    g_ref = jax.jit(jax.grad(loss_whole, argnums=(0, 1)))(params, xs)
    _assert_tree_close(g, g_ref, 1e-5)


@slow
def test_stack_passes_backward_through():
    stack = cells.Stack.uniform(cells.GRU(ct.H), num_layers=2)
    params = stack.init(jax.random.key(0), ct.I)
    xs = ct.random_inputs()

    def loss(p, backward):
        ys, _ = stack(p, xs, lengths=jnp.asarray(ct.LENGTHS), backward=backward)
        return jnp.sum(ys**2)

    g = jax.grad(loss)(params, "fused")
    g_ref = jax.grad(loss)(params, "autodiff")
    _assert_tree_close(g, g_ref, 1e-5)


@pytest.mark.parametrize("projection", ["hoisted", "in_loop"])
def test_bfloat16_compute_is_close(projection):
    cell = cells.LSTM(ct.H, compute_dtype="bfloat16")
    params, xs = ct.random_params(cell), ct.random_inputs()

    def loss(backward):
        def f(p):
            ys = cells.scan(cell, p, xs, backward=backward, projection=projection)[0]
            return jnp.sum(ys**2)

        return f

    g = jax.grad(loss("fused"))(params)
    g_ref = jax.grad(loss("autodiff"))(params)
    _assert_tree_close(g, g_ref, 3e-2)


def _declares_no_backward(cell) -> bool:
    """No hand-written backward, as the cell declares it (`Cell.backward_rule`): its class names
    no `fused_backward` (e.g. the MGU, the sLSTM, the parallel cells), or an option changes the
    forward the rule was derived for (layer norm, recurrent heads)."""
    return (
        type(cell).fused_backward is None
        or (isinstance(cell, cells_base.LayerNormOption) and cell.layer_norm)
        or (isinstance(cell, cells_base.HeadwiseOption) and cell.headwise)
    )


def test_supports_and_bad_option():
    without = {n for n, c in ct.CELLS.items() if _declares_no_backward(c)}
    assert {n for n, c in ct.CELLS.items() if not kernels.supports(c)} == without
    assert without and without != set(ct.CELLS)  # both kinds are among the tested cells
    cell = ct.CELLS["lstm"]
    with pytest.raises(ValueError, match="backward must be one of"):
        cells.scan(cell, ct.random_params(cell), ct.random_inputs(), backward="cudnn")


def _top_level_dots(fn, *args) -> int:
    """dot_generals outside any loop or custom_vjp in fn's jaxpr (the hoisted projection)."""
    return sum(e.primitive.name == "dot_general" for e in jax.make_jaxpr(fn)(*args).eqns)


def test_projection_option_and_auto_choice():
    cell = ct.CELLS["lstm"]
    params = ct.random_params(cell)
    for batch, auto_in_loop in [(1, False), (cells.sequence.IN_LOOP_MIN_BATCH, True)]:
        xs = jnp.ones((batch, 5, ct.I), jnp.float32)
        counts = {
            proj: _top_level_dots(
                lambda p, x, proj=proj: cells.scan(cell, p, x, backward="fused", projection=proj),
                params,
                xs,
            )
            for proj in ("hoisted", "in_loop", "auto")
        }
        assert counts["hoisted"] == 1 and counts["in_loop"] == 0
        assert counts["auto"] == counts["in_loop" if auto_in_loop else "hoisted"]
    with pytest.raises(ValueError, match="projection must be one of"):
        cells.scan(cell, params, xs, backward="fused", projection="per_step")


# Recurrent dropout and zoneout: (recurrent_dropout, zoneout, with an rng). Without an rng the
# dropout is off and zoneout is its expectation p * old + (1 - p) * new.
_REGULARIZERS = {
    "dropout": (0.4, 0.0, True),
    "zoneout": (0.0, (0.3, 0.5), True),
    "both": (0.3, 0.25, True),
    "zoneout_expectation": (0.0, 0.3, False),
}
_HAND_WRITTEN = [n for n in ct.CELL_IDS if kernels.supports(ct.CELLS[n])]
# Default: the LSTM (all options) and both GRU rules, the in-loop projection (the fused
# [dh', dx] product the mask must skip) included; the rest of the grid (Elman, IndRNN, ...) is
# slow.
_REG_DEFAULT = {
    ("lstm", "both", "in_loop"),
    ("lstm_all", "zoneout", "hoisted"),
    ("gru", "both", "in_loop"),
    ("gru_reset_before", "dropout", "hoisted"),
    ("lstm", "zoneout_expectation", "hoisted"),
}


@pytest.mark.parametrize(
    "name,regularizer,projection",
    [
        pytest.param(n, r, p, marks=() if (n, r, p) in _REG_DEFAULT else slow)
        for n in _HAND_WRITTEN
        for r in _REGULARIZERS
        for p in ("hoisted", "in_loop")
    ],
)
def test_fused_backward_equals_autodiff_with_recurrent_dropout_and_zoneout(
    x64, name, regularizer, projection
):
    """Same masks on both paths (drawn from the same keys), padding, reverse and resets:
    values and gradients w.r.t. params, inputs and the carry equal to float64 rounding."""
    cell = ct.CELLS[name]
    params = ct.random_params(cell, dtype=np.float64)
    xs = ct.random_inputs(dtype=np.float64)
    carry = ct.random_carry(cell, dtype=np.float64)
    rate, zoneout, with_rng = _REGULARIZERS[regularizer]
    resets = jnp.asarray(np.random.default_rng(3).random((ct.B, ct.T)) < 0.3)
    options = dict(
        recurrent_dropout=rate,
        zoneout=zoneout,
        rng=jax.random.key(11) if with_rng else None,
        resets=resets,
        initial_carry=ct.random_carry(cell, seed=5, dtype=np.float64),
    )
    lengths = jnp.asarray(ct.LENGTHS)
    fused = _loss_fn(
        cell, cells.scan, lengths, True, backward="fused", projection=projection, **options
    )
    auto = _loss_fn(cell, cells.scan, lengths, True, backward="autodiff", **options)
    v, g = _value_and_grads(fused, params, xs, carry)
    v_ref, g_ref = _value_and_grads(auto, params, xs, carry)
    np.testing.assert_allclose(v, v_ref, rtol=1e-12)
    _assert_tree_close(g, g_ref, 1e-10)
    # The regulariser acts: without it the loss differs.
    plain = _loss_fn(cell, cells.scan, lengths, True, resets=resets, backward="fused")
    assert abs(float(plain(params, xs, carry)) - float(v)) > 1e-6


def test_fused_backward_runs_the_hand_written_rule_under_regularizers():
    """The regularised fused path is the custom_vjp (not an autodiff fallback)."""
    cell = ct.CELLS["lstm"]
    params, xs = ct.random_params(cell), ct.random_inputs()

    def f(p):
        ys, _ = cells.scan(
            cell, p, xs, backward="fused", recurrent_dropout=0.3, zoneout=0.2,
            rng=jax.random.key(0),
        )  # fmt: skip
        return jnp.sum(ys)

    assert "custom_vjp_call" in str(jax.make_jaxpr(f)(params))
