"""cells.regularization: masks, expectations, evaluation mode and the AR/TAR formulas."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from cells_testing import assert_close, random_carry, random_inputs, random_params

import cells
from cells import regularization as reg


def test_locked_dropout_keeps_one_mask_per_sequence_over_time():
    x = jnp.ones((4, 7, 16))
    y = np.asarray(reg.locked_dropout(jax.random.key(0), 0.5, x))
    assert set(np.unique(y)) <= {0.0, 2.0}
    np.testing.assert_array_equal(y, np.broadcast_to(y[:, :1], y.shape))  # constant in time
    assert not all(np.array_equal(y[0, 0], y[b, 0]) for b in range(1, 4))  # fresh per sequence
    again = np.asarray(reg.locked_dropout(jax.random.key(1), 0.5, x))
    assert not np.array_equal(y, again)


@pytest.mark.parametrize(
    "fn,shape",
    [
        (reg.locked_dropout, (64, 3, 64)),
        (reg.embedding_dropout, (4096, 8)),
    ],
)
def test_inverted_masks_preserve_the_expectation(fn, shape):
    x = jnp.full(shape, 3.0)
    means = [float(jnp.mean(fn(jax.random.key(k), 0.3, x))) for k in range(20)]
    assert abs(np.mean(means) - 3.0) < 0.05


def test_no_dropout_without_an_rng_or_at_rate_zero():
    x = random_inputs()
    embed = x[0]
    params = random_params(cells.LSTM(6))
    for rng, rate in [(None, 0.5), (jax.random.key(0), 0.0)]:
        assert reg.locked_dropout(rng, rate, x) is x
        assert reg.embedding_dropout(rng, rate, embed) is embed
        assert reg.weight_drop(rng, rate, params) is params
    with pytest.raises(ValueError, match="rate must be a number in \\[0, 1\\)"):
        reg.locked_dropout(jax.random.key(0), 1.0, x)


def test_embedding_dropout_drops_whole_word_types():
    embed = jnp.ones((50, 8))
    dropped = np.asarray(reg.embedding_dropout(jax.random.key(3), 0.5, embed))
    rows = dropped.sum(axis=1)
    assert set(np.unique(rows)) == {0.0, 16.0}  # a row is all zeros or all 2s


@pytest.mark.parametrize("cell", [cells.LSTM(6), cells.GRU(6), cells.LSTM(6, num_heads=2)])
def test_weight_drop_is_one_mask_on_w_hh_and_keeps_the_fused_backward(cell):
    params, xs = random_params(cell), random_inputs()
    rng = jax.random.key(4)
    dropped = reg.weight_drop(rng, 0.5, params)
    w, dw = np.asarray(params["w_hh"]), np.asarray(dropped["w_hh"])
    kept = dw != 0
    np.testing.assert_allclose(dw[kept], 2.0 * w[kept], rtol=1e-6)  # scaled by 1 / (1 - p)
    assert 0.3 < kept.mean() < 0.7
    for name in params:
        if name != "w_hh":
            assert dropped[name] is params[name]

    def loss(p, backward):
        ys, _ = cells.scan(cell, reg.weight_drop(rng, 0.5, p), xs, backward=backward)
        return jnp.sum(ys * jnp.cos(ys))

    with pytest.warns() if cell.num_heads > 1 else _nothing():
        g_fused = jax.grad(loss)(params, "fused")
    g_auto = jax.grad(loss)(params, "autodiff")
    for k in params:
        assert_close(g_fused[k], g_auto[k], 1e-5, k)
    # Dropped connections get no gradient.
    assert not np.asarray(g_auto["w_hh"])[~kept].any()


class _nothing:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


def test_weight_drop_refuses_cells_without_a_recurrent_matrix():
    params = random_params(cells.MinGRU(6))
    with pytest.raises(ValueError, match="nothing to drop"):
        reg.weight_drop(jax.random.key(0), 0.5, params)


def test_ar_and_tar_equal_their_formulas():
    rng = np.random.default_rng(0)
    ys = rng.standard_normal((3, 6, 4))
    mask = np.array([[True] * 6, [True] * 4 + [False] * 2, [True] + [False] * 5])
    ar = reg.activation_regularization(jnp.asarray(ys), 2.0)
    np.testing.assert_allclose(float(ar), 2.0 * np.mean(ys**2), rtol=1e-6)
    tar = reg.temporal_activation_regularization(jnp.asarray(ys), 1.5)
    np.testing.assert_allclose(float(tar), 1.5 * np.mean(np.diff(ys, axis=1) ** 2), rtol=1e-6)
    valid = ys[mask]
    ar_masked = reg.activation_regularization(jnp.asarray(ys), 2.0, jnp.asarray(mask))
    np.testing.assert_allclose(float(ar_masked), 2.0 * np.mean(valid**2), rtol=1e-6)
    pairs = mask[:, 1:] & mask[:, :-1]
    diffs = np.diff(ys, axis=1)[pairs]
    tar_masked = reg.temporal_activation_regularization(jnp.asarray(ys), 1.5, jnp.asarray(mask))
    np.testing.assert_allclose(float(tar_masked), 1.5 * np.mean(diffs**2), rtol=1e-6)
    assert float(reg.activation_regularization(jnp.asarray(ys), 0.0)) == 0.0


def _mask(rng, rate, shape):
    keep = jax.random.bernoulli(jax.random.fold_in(rng, 0), 1.0 - rate, shape)
    return np.asarray(keep, np.float64) / (1.0 - rate)


def test_recurrent_dropout_masks_h_in_the_recurrent_product_only():
    """Against float64 NumPy: the LSTM step with h * m in h W_hh (one mask for all steps)."""
    import reference_numpy

    cell = cells.LSTM(6)
    params, xs = random_params(cell), random_inputs()
    rng = jax.random.key(3)
    ys, final = cells.scan(cell, params, xs, recurrent_dropout=0.4, rng=rng)
    m = _mask(rng, 0.4, (xs.shape[0], 6))
    p = {k: np.asarray(v, np.float64) for k, v in params.items()}
    h = c = np.zeros((xs.shape[0], 6))
    outs = []
    for t in range(xs.shape[1]):
        (h, c), out, _ = reference_numpy.lstm_step(p, (h * m, c), np.asarray(xs[:, t], np.float64))
        outs.append(out)
    assert_close(ys, np.stack(outs, 1), 1e-5, "outputs")
    plain, _ = cells.scan(cell, params, xs)
    assert not np.allclose(ys, plain)
    # Without an rng (evaluation) there is no dropout.
    no_rng, _ = cells.scan(cell, params, xs, recurrent_dropout=0.4)
    np.testing.assert_array_equal(np.asarray(no_rng), np.asarray(plain))


def test_recurrent_dropout_leaves_the_grus_interpolation_undropped():
    cell = cells.GRU(6, reset_after=False)  # Cho's form: two recurrent products
    params, xs = random_params(cell), random_inputs()
    rng = jax.random.key(4)
    ys, _ = cells.scan(cell, params, xs, recurrent_dropout=0.3, rng=rng)
    m = _mask(rng, 0.3, (xs.shape[0], 6))
    p = {k: np.asarray(v, np.float64) for k, v in params.items()}
    sig = lambda v: 1.0 / (1.0 + np.exp(-v))
    wr, wz, wn = np.split(p["w_ih"], 3, axis=1)
    ur, uz, un = np.split(p["w_hh"], 3, axis=1)
    br, bz, bn = np.split(p["b"], 3)
    h, outs = np.zeros((xs.shape[0], 6)), []
    for t in range(xs.shape[1]):
        x, hm = np.asarray(xs[:, t], np.float64), h * m
        r, z = sig(x @ wr + hm @ ur + br), sig(x @ wz + hm @ uz + bz)
        n = np.tanh(x @ wn + bn + (r * hm) @ un)
        h = (1.0 - z) * n + z * h  # the carried h itself is not dropped
        outs.append(h)
    assert_close(ys, np.stack(outs, 1), 1e-5, "outputs")


@pytest.mark.parametrize("cell", [cells.LSTM(6), cells.GRU(6), cells.SLSTM(6, num_heads=2)])
def test_zoneout_zero_is_the_plain_cell_and_one_keeps_the_carry(cell):
    """(The sLSTM's expectation mixes its true state: test_slstm_zoneout_mixes_the_true_state.)"""
    params, xs = random_params(cell), random_inputs()
    carry = cell.carry_type(*(jnp.full((xs.shape[0], n), 0.3) for n in cell.carry_sizes))
    plain, plain_final = cells.scan(cell, params, xs, carry=carry)
    zero, zero_final = cells.scan(cell, params, xs, carry=carry, zoneout=0.0, rng=jax.random.key(0))
    np.testing.assert_array_equal(np.asarray(zero), np.asarray(plain))
    kept, kept_final = cells.scan(cell, params, xs, carry=carry, zoneout=1.0, rng=jax.random.key(0))
    np.testing.assert_allclose(np.asarray(kept), 0.3, rtol=1e-6)  # h never changes
    for a, b in zip(kept_final, carry, strict=True):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    if isinstance(cell, cells.SLSTM):
        return
    # Evaluation (no rng): the expectation p * old + (1 - p) * new, step by step.
    p_h, p_c = 0.25, 0.6
    ev, _ = cells.scan(cell, params, xs, carry=carry, zoneout=(p_h, p_c))
    state, outs = carry, []
    for t in range(xs.shape[1]):
        new, _ = cell.step(params, state, xs[:, t])
        state = type(new)(*(
            (p_h if k == 0 else p_c) * o + (1 - (p_h if k == 0 else p_c)) * n
            for k, (n, o) in enumerate(zip(new, state, strict=True))
        ))  # fmt: skip
        outs.append(state[0])
    assert_close(ev, jnp.stack(outs, 1), 1e-5, "expected zoneout")


def _slstm_true_state_zoneout(cell, params, xs, carry, p_h, p_c):
    """Float64 NumPy: the sLSTM on its unstabilised state C = c e^m, N = n e^m (i = exp(i~),
    f = sigmoid(f~), C = f C' + i tanh(z~), N = f N' + i, h = sigmoid(o~) C / N), zoneout's
    expectation taken on h, C and N: the function its stabilised form must compute."""
    f64 = lambda a: np.asarray(a, np.float64)  # noqa: E731
    w_ih, r, b = f64(params["w_ih"]), f64(cell.recurrent_matrix(params)), f64(params["b"])
    h, c, n, m = (f64(a) for a in carry)
    big_c, big_n = c * np.exp(m), n * np.exp(m)
    outs = []
    for t in range(xs.shape[1]):
        i_, f_, z_, o_ = np.split(f64(xs[:, t]) @ w_ih + h @ r + b, 4, axis=-1)
        new_c = big_c / (1 + np.exp(-f_)) + np.exp(i_) * np.tanh(z_)
        new_n = big_n / (1 + np.exp(-f_)) + np.exp(i_)
        new_h = new_c / new_n / (1 + np.exp(-o_))
        big_c = p_c * big_c + (1 - p_c) * new_c
        big_n = p_c * big_n + (1 - p_c) * new_n
        h = p_h * h + (1 - p_h) * new_h
        outs.append(h)
    return np.stack(outs, 1)


def test_slstm_zoneout_mixes_the_true_state(x64):
    """Evaluation: the expectation of zoneout on the sLSTM's true state (h, C, N), not field by
    field on the stabilised (c, n, m), which mixed scales (|h| up to 13, NaN in float64)."""
    cell = cells.SLSTM(6, num_heads=2)
    params = random_params(cell, dtype=np.float64)
    xs = random_inputs(dtype=np.float64)
    carry = cell.carry_type(
        *(jnp.full((xs.shape[0], 6), v, jnp.float64) for v in (0.1, 0.2, 1.0, 0.5))
    )
    ys, _ = cells.scan(cell, params, xs, carry=carry, zoneout=(0.25, 0.6))
    expected = _slstm_true_state_zoneout(cell, params, xs, carry, 0.25, 0.6)
    assert_close(ys, expected, 1e-12, "sLSTM zoneout expectation")


@pytest.mark.parametrize("with_rng", [True, False])
def test_slstm_zoneout_keeps_h_bounded(with_rng):
    """|h| <= 1 as in the plain sLSTM, with default init (|h| reached 13 before) and with a
    large trained-like R (2.8e3 before), masks or expectation; gradients finite."""
    cell = cells.SLSTM(8, num_heads=2)
    params = cell.init(jax.random.key(0), 4)
    big_r = {**params, "w_hh": 3.0 * jax.random.normal(jax.random.key(3), params["w_hh"].shape)}
    xs = jnp.ones((4, 40, 4))
    rng = jax.random.key(1) if with_rng else None
    for p in (params, big_r):
        ys, _ = cells.scan(cell, p, xs, zoneout=(0.0, 0.5), rng=rng)
        assert float(jnp.abs(ys).max()) <= 1.0
    grads = jax.grad(lambda q: jnp.sum(cells.scan(cell, q, xs, zoneout=0.5, rng=rng)[0]))(big_r)
    assert all(bool(jnp.isfinite(g).all()) for g in grads.values())


def test_slstm_zoneout_masks_keep_or_update_a_units_state_together():
    cell = cells.SLSTM(8, num_heads=2)
    params = random_params(cell)
    carry = random_carry(cell)
    x = random_inputs((carry.h.shape[0], 1, params["w_ih"].shape[0]))[:, 0]
    new, _ = cell.step(params, carry, x)
    zoned, _ = cell.step(params, carry, x, zoneout=(0.0, 0.5), rng=jax.random.key(4), t=3)
    kept = [np.isclose(np.asarray(z), np.asarray(o)) & ~np.isclose(np.asarray(n), np.asarray(o))
            for z, o, n in zip(zoned[1:], carry[1:], new[1:], strict=True)]  # fmt: skip
    np.testing.assert_array_equal(kept[0], kept[1])
    np.testing.assert_array_equal(kept[0], kept[2])
    assert 0 < kept[0].mean() < 1


def test_rates_may_be_numpy_and_jax_scalars():
    """recurrent_dropout / zoneout as np.float32 or a concrete JAX scalar (refused before) give
    what the Python float does; a traced rate is refused in one line (test_errors)."""
    cell = cells.LSTM(6)
    params, xs, key = random_params(cell), random_inputs(), jax.random.key(3)
    expected, _ = cells.scan(cell, params, xs, recurrent_dropout=0.25, zoneout=0.5, rng=key)
    for kind in (np.float32, np.float64, jnp.asarray):
        ys, _ = cells.scan(
            cell, params, xs, recurrent_dropout=kind(0.25), zoneout=(kind(0.5), 0.5), rng=key
        )
        np.testing.assert_allclose(ys, expected, rtol=1e-6)
    x = jnp.ones((2, 3, 4))
    np.testing.assert_array_equal(
        reg.locked_dropout(key, np.float32(0.5), x), reg.locked_dropout(key, 0.5, x)
    )


def test_zoneout_masks_are_fresh_per_step_and_per_sequence():
    cell = cells.GRU(16)
    params, xs = random_params(cell, input_size=4), random_inputs((8, 20, 4))
    ys, _ = cells.scan(cell, params, xs, zoneout=0.5, rng=jax.random.key(1))
    kept = np.isclose(np.diff(np.asarray(ys), axis=1), 0.0)  # units that kept their value
    assert 0.3 < kept.mean() < 0.7
    assert not np.array_equal(kept[0, 0], kept[0, 1]) and not np.array_equal(kept[0], kept[1])


def test_recurrent_options_refuse_what_cannot_apply():
    # (The fused backward with these options: tests/cells/kernels_test.py.)
    cell = cells.LSTM(6)
    params, xs = random_params(cell), random_inputs()
    with pytest.raises(ValueError, match="no recurrent product to drop"):
        cells.scan(cells.MinGRU(6), random_params(cells.MinGRU(6)), xs, recurrent_dropout=0.2)
    with pytest.raises(ValueError, match="cannot apply them"):
        cells.scan(
            cells.MinGRU(6), random_params(cells.MinGRU(6)), xs, zoneout=0.2, mode="parallel"
        )
    with pytest.raises(ValueError, match="recurrent_dropout must be a number in"):
        cells.scan(cell, params, xs, recurrent_dropout=1.0)
    with pytest.raises(ValueError, match="zoneout must be p or"):
        cells.scan(cell, params, xs, zoneout=(0.1, 0.2, 0.3))
    ys, _ = cells.scan(cells.MinGRU(6), random_params(cells.MinGRU(6)), xs, zoneout=0.2)
    assert ys.shape == (xs.shape[0], xs.shape[1], 6)  # auto mode runs it step by step


@pytest.mark.parametrize("kind", ["stack", "residual"])
def test_a_stack_gives_each_layer_its_own_recurrent_masks(kind):
    if kind == "stack":
        stack = cells.Stack.uniform(cells.LSTM(6), 2)
    else:
        stack = cells.ResidualStack.uniform(cells.LSTM(4), 2)
    params = stack.init(jax.random.key(0), 4)
    xs = random_inputs()
    a, _ = stack(params, xs, rng=jax.random.key(5), recurrent_dropout=0.5)
    b, _ = stack(params, xs, rng=jax.random.key(5), recurrent_dropout=0.5)
    c, _ = stack(params, xs, rng=jax.random.key(6), recurrent_dropout=0.5)
    plain, _ = stack(params, xs, recurrent_dropout=0.5)  # no rng: no dropout
    np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    assert not np.allclose(a, c) and not np.allclose(a, plain)
