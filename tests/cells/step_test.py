"""The step API, learned and broadcast initial carries, and the defects fixed with them:
donating a fresh carry, bfloat16 params, forward-mode AD through the fused backward, and
`jax.export` with a symbolic batch."""

import cells_testing as ct
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

import cells


@pytest.mark.parametrize("name", ["lstm", "lstmp", "gru_ln", "indrnn", "mgu"])
def test_cell_step_is_one_step_of_scan(name):
    cell = ct.CELLS[name]
    params, xs, carry = ct.random_params(cell), ct.random_inputs(), ct.random_carry(cell)
    ys, final = cells.scan(cell, params, xs, carry=carry)
    for t in range(ct.T):
        carry, h = cell.step(params, carry, xs[:, t])
        ct.assert_close(h, ys[:, t], 1e-6, f"step {t}")
    jax.tree.map(lambda a, b: ct.assert_close(a, b, 1e-6, "carry"), carry, final)


def test_cell_step_validates_like_scan():
    cell = ct.CELLS["lstm"]
    params, x = ct.random_params(cell), ct.random_inputs()[:, 0]
    carry = cell.initial_carry(ct.B)
    with pytest.raises(ValueError, match=r"LSTM.step: x must be \[batch, 4\]"):
        cell.step(params, carry, x[:, :3])
    with pytest.raises(ValueError, match=r"LSTM.step: carry must be a LSTMState"):
        cell.step(params, cell.initial_carry(ct.B + 1), x)
    with pytest.raises(ValueError, match="params must have keys"):
        cell.step({"w_ih": params["w_ih"]}, carry, x)
    with pytest.raises(ValueError, match="params must be a dict with 'w_ih'"):
        cell.step({}, carry, x)


def test_stack_step_equals_the_stack_and_refuses_bidirectional():
    stack = cells.Stack((cells.LSTM(5, proj_size=3), cells.GRU(4)), learn_initial_carry=True)
    params = stack.init(jax.random.key(0), ct.I)
    xs = ct.random_inputs()
    ys, finals = stack(params, xs)
    # Learned initial carries away from zero, so starting from zeros would show.
    params = jax.tree.map(lambda a: a + 0.3, params)
    ys, finals = stack(params, xs)
    # Start the stepping from the learned initial carry (what the stack uses without a carry):
    # stack.initial_carry(B) returned zeros before, 0.43 away from the stack in the issue.
    with pytest.raises(ValueError, match=r"pass the stack's params"):
        stack.initial_carry(ct.B)
    carry = stack.initial_carry(ct.B, params)
    for t in range(ct.T):
        carry, y = stack.step(params, carry, xs[:, t])
        ct.assert_close(y, ys[:, t], 1e-6, f"step {t}")
    bi = cells.Stack((cells.Bidirectional(cells.GRU(3), cells.GRU(3)),))
    with pytest.raises(ValueError, match="Bidirectional layer cannot run one step"):
        bi.step(bi.init(jax.random.key(0), ct.I), bi.initial_carry(ct.B), xs[:, 0])
    with pytest.raises(ValueError, match="carry must be a tuple of 2 per-layer carries"):
        stack(params, xs, carry=(stack.layers[0].initial_carry(ct.B),))


_REGULARIZERS = {
    "zoneout": {"zoneout": (0.3, 0.5)},
    "recurrent_dropout": {"recurrent_dropout": 0.4},
    "both": {"recurrent_dropout": 0.4, "zoneout": 0.2},
}


@pytest.mark.parametrize("with_rng", [True, False])
@pytest.mark.parametrize("regularizer", list(_REGULARIZERS))
@pytest.mark.parametrize("name", ["lstm", "slstm"])
def test_cell_step_applies_the_regularisers_as_scan_does(name, regularizer, with_rng):
    """Stepping t = 0, 1, ... with scan's key (or none: zoneout's expectation) is the scan: a
    model evaluated with zoneout generates with the same function (it ran the plain cell)."""
    cell = ct.CELLS[name]
    params, xs, carry = ct.random_params(cell), ct.random_inputs(), ct.random_carry(cell)
    options = dict(_REGULARIZERS[regularizer], rng=jax.random.key(4) if with_rng else None)
    ys, final = cells.scan(cell, params, xs, carry=carry, **options)
    plain, _ = cells.scan(cell, params, xs, carry=carry)
    if with_rng or "zoneout" in options:
        assert not np.allclose(ys, plain)
    for t in range(ct.T):
        carry, h = cell.step(params, carry, xs[:, t], t=t, **options)
        ct.assert_close(h, ys[:, t], 1e-6, f"step {t}")
    jax.tree.map(lambda a, b: ct.assert_close(a, b, 1e-6, "carry"), carry, final)


@pytest.mark.parametrize("kind", ["stack", "residual"])
def test_stack_step_applies_the_regularisers_as_the_stack_does(kind):
    cell = cells.LSTM(4)
    if kind == "stack":
        stack = cells.Stack.uniform(cell, 2, dropout=0.3, locked_dropout=True)
    else:
        stack = cells.ResidualStack.uniform(cell, 2, dropout=0.3, locked_dropout=True)
    params = stack.init(jax.random.key(0), ct.I)
    xs = ct.random_inputs()
    for rng in (jax.random.key(9), None):
        options = {"zoneout": 0.3, "recurrent_dropout": 0.2}
        ys, finals = stack(params, xs, rng=rng, **options)
        carry = stack.initial_carry(ct.B)
        for t in range(ct.T):
            carry, y = stack.step(params, carry, xs[:, t], rng=rng, t=t, **options)
            ct.assert_close(y, ys[:, t], 1e-5, f"step {t}")
        jax.tree.map(lambda a, b: ct.assert_close(a, b, 1e-5, "carry"), carry, finals)


def test_stacks_take_per_layer_initial_carries():
    """`initial_carry=` of a stack is a tuple of per-layer carries (a TypeError from dict()
    before, and ResidualStack said 'carry must be a RNNState')."""
    xs = ct.random_inputs()
    for stack in (
        cells.Stack.uniform(cells.GRU(4), 2),
        cells.ResidualStack.uniform(cells.GRU(4), 2),
    ):
        params = stack.init(jax.random.key(0), ct.I)
        init = tuple(cells.RNNState(jnp.full((ct.B, 4), 0.5)) for _ in range(2))
        resets = jnp.zeros((ct.B, ct.T), bool).at[:, 3].set(True)
        a, _ = stack(params, xs, initial_carry=init, resets=resets)
        b, _ = stack(params, xs, carry=init, initial_carry=init, resets=resets)
        c, _ = stack(params, xs, resets=resets)
        np.testing.assert_array_equal(a, b)
        assert not np.allclose(a, c)
        with pytest.raises(ValueError, match="initial_carry must be a tuple of 2 per-layer"):
            stack(params, xs, initial_carry=init[0])
    learned = cells.Stack.uniform(cells.GRU(4), 2, learn_initial_carry=True)
    with pytest.raises(ValueError, match="the initial carry is learned"):
        learned(learned.init(jax.random.key(0), ct.I), xs, initial_carry=init)


@pytest.mark.parametrize("batch, steps", [(0, ct.T), (ct.B, 0)])
def test_empty_batches_and_sequences_run_on_every_path(batch, steps):
    """B = 0 and T = 0 are valid everywhere (as T = 0 was): scan, the fused backward (its
    gradient crashed at T = 0), the linear modes, pallas (read out of bounds at T = 0), the
    reference, the step and the stacks. Outputs [B, T, H]; the carry passes through."""
    xs = jnp.ones((batch, steps, ct.I))
    for name in ("lstm", "mingru"):  # the fused backward's code is shared by its cells
        cell = ct.CELLS[name]
        params, carry = ct.random_params(cell), ct.random_carry(cell, batch)
        modes = ("sequential", "hoisted", "parallel") if name == "mingru" else ("auto",)
        for mode in modes:
            for backward in ("autodiff", "fused") if name == "lstm" else ("autodiff",):
                ys, final = cells.scan(cell, params, xs, carry=carry, mode=mode, backward=backward)
                assert ys.shape == (batch, steps, cell.output_size)

                def final_h(p, c, cell=cell, mode=mode, backward=backward):
                    return jnp.sum(
                        cells.scan(cell, p, xs, carry=c, mode=mode, backward=backward)[1].h
                    )

                grads = jax.grad(final_h, argnums=(0, 1))(params, carry)
                if steps == 0:
                    np.testing.assert_array_equal(grads[1].h, 1.0)  # the carry passes through
        ys_ref, _ = cells.reference_scan(cell, params, xs, carry=carry)
        assert ys_ref.shape == (batch, steps, cell.output_size)
        if name == "lstm":  # zoneout (0, 0) is the plain cell: accepted (refused before)
            wide = cells.LSTM(16)
            wide_params = wide.init(jax.random.key(0), ct.I)
            ys, _ = cells.scan(wide, wide_params, xs, backend="pallas", zoneout=(0.0, 0.0))
            assert ys.shape == (batch, steps, 16)
            with pytest.raises(ValueError, match="backend='pallas' does not implement zoneout"):
                cells.scan(wide, wide_params, xs, backend="pallas", zoneout=(0.0, 0.1))
    cell = ct.CELLS["lstm"]
    _, h = cell.step(ct.random_params(cell), cell.initial_carry(batch), jnp.ones((batch, ct.I)))
    assert h.shape == (batch, ct.H)
    for stack in (cells.Stack.uniform(cell, 2), cells.ResidualStack.uniform(cell, 2)):
        ys, _ = stack(stack.init(jax.random.key(0), ct.I), xs, backward="fused")
        assert ys.shape == (batch, steps, ct.H)


def test_nnx_and_linen_step_and_learned_initial_carry():
    xs = ct.random_inputs()
    rnn = cells.nnx.RNN(cells.GRU(5), ct.I, rngs=nnx.Rngs(0), learn_initial_carry=True)
    assert set(rnn.param_names) == {"w_ih", "w_hh", "b", "b_hn", "h0"}
    rnn.h0[...] = jnp.linspace(-1.0, 1.0, 5)
    ys, _ = rnn(xs)
    carry = rnn.initial_carry(ct.B)
    np.testing.assert_allclose(carry.h[1], np.linspace(-1.0, 1.0, 5))
    for t in range(ct.T):
        carry, h = rnn.step(carry, xs[:, t])
        ct.assert_close(h, ys[:, t], 1e-6)
    grads = nnx.grad(lambda m: jnp.sum(m(xs)[0] ** 2))(rnn)
    assert np.asarray(grads["h0"][...]).any()  # the learned state is trained

    module = cells.linen.RNN(cells.LSTM(5), learn_initial_carry=True)
    variables = module.init(jax.random.key(0), xs)
    assert {"h0", "c0"} <= set(variables["params"])
    ys, _ = module.apply(variables, xs)
    carry = cells.LSTM(5).initial_carry(ct.B)  # h0 = c0 = 0 at init
    carry, h = module.apply(variables, carry, xs[:, 0], method="step")
    ct.assert_close(h, ys[:, 0], 1e-6)
    stack = cells.linen.Stack(cells.Stack.uniform(cells.GRU(4), 2))
    variables = stack.init(jax.random.key(1), xs)
    ys, _ = stack.apply(variables, xs)
    carries, y = stack.apply(variables, stack.stack.initial_carry(ct.B), xs[:, 0], method="step")
    ct.assert_close(y, ys[:, 0], 1e-6)


@pytest.mark.parametrize("shape", ["[H]", "[1, H]"])
def test_scan_broadcasts_an_initial_carry_of_one_row(shape):
    cell = ct.CELLS["lstmp"]
    params, xs = ct.random_params(cell), ct.random_inputs()
    rows = [jnp.linspace(0.1, 0.5, n) for n in cell.carry_sizes]
    one = cell.carry_type(*(r if shape == "[H]" else r[None] for r in rows))
    full = cell.carry_type(*(jnp.broadcast_to(r, (ct.B, r.shape[0])) for r in rows))
    np.testing.assert_array_equal(
        cells.scan(cell, params, xs, carry=one)[0], cells.scan(cell, params, xs, carry=full)[0]
    )


def test_a_fresh_carry_can_be_donated():
    """initial_carry gives every field its own buffer (h and c were one buffer before)."""
    cell = cells.LSTM(4)
    params = cell.init(jax.random.key(0), 3)
    xs = jnp.ones((2, 5, 3))
    step = jax.jit(lambda p, c, x: cells.scan(cell, p, x, carry=c)[1], donate_argnums=1)
    jax.block_until_ready(step(params, cell.initial_carry(2), xs))
    stack = cells.Stack.uniform(cell, 2)
    sparams = stack.init(jax.random.key(1), 3)
    run = jax.jit(lambda p, c, x: stack(p, x, carry=c)[1], donate_argnums=1)
    jax.block_until_ready(run(sparams, stack.initial_carry(2), xs))


@pytest.mark.slow
def test_bfloat16_params_init_and_fused_grads_keep_their_dtype():
    cell = cells.LSTM(8, param_dtype="bfloat16", peephole=True, proj_size=4)
    params = cell.init(jax.random.key(0), 3)
    assert all(v.dtype == jnp.bfloat16 for v in params.values())
    w = np.asarray(cells.GRU(8, param_dtype="bfloat16").init(jax.random.key(0), 3)["w_hh"][:, :8])
    np.testing.assert_allclose(w.astype(np.float32).T @ w, np.eye(8), atol=0.05)  # orthogonal
    xs = jnp.ones((2, 5, 3), jnp.bfloat16)

    def grads(backward):
        loss = lambda p: jnp.sum(cells.scan(cell, p, xs, backward=backward)[0].astype(jnp.float32))
        return jax.grad(loss)(params)

    fused, auto = grads("fused"), grads("autodiff")
    for name in params:
        assert fused[name].dtype == auto[name].dtype == jnp.bfloat16, name


def test_forward_mode_through_the_fused_backward_says_what_to_use():
    cell = cells.GRU(4)
    params = cell.init(jax.random.key(0), 3)
    xs = jnp.ones((2, 5, 3))
    f = lambda x, backward: jnp.sum(cells.scan(cell, params, x, backward=backward)[0])
    jax.jvp(lambda x: f(x, "autodiff"), (xs,), (xs,))  # forward mode through autodiff works
    with pytest.raises(TypeError, match="for forward-mode autodiff .* use backward='autodiff'"):
        jax.jvp(lambda x: f(x, "fused"), (xs,), (xs,))


@pytest.mark.parametrize("backward", ["autodiff", "fused"])
def test_export_with_a_symbolic_batch(backward):
    cell = cells.LSTM(4)
    params = cell.init(jax.random.key(0), 3)
    (b,) = jax.export.symbolic_shape("b")
    fn = jax.jit(lambda p, x: cells.scan(cell, p, x, backward=backward)[0])
    exported = jax.export.export(fn)(params, jax.ShapeDtypeStruct((b, 5, 3), jnp.float32))
    xs = jnp.ones((3, 5, 3))
    np.testing.assert_allclose(exported.call(params, xs), fn(params, xs), rtol=1e-6)


def test_nnx_and_linen_modules_pass_resets_through():
    xs = ct.random_inputs()
    resets = np.zeros((ct.B, ct.T), bool)
    resets[0, 2] = resets[1, 3] = True
    rnn = cells.nnx.RNN(cells.LSTM(5), ct.I, rngs=nnx.Rngs(0))
    want, _ = cells.scan(rnn.cell, rnn.params, xs, resets=resets)
    np.testing.assert_array_equal(rnn(xs, resets=resets)[0], want)
    assert not np.allclose(rnn(xs)[0], want)  # the resets did something
    stack = cells.linen.Stack(cells.Stack.uniform(cells.GRU(4), 2))
    variables = stack.init(jax.random.key(1), xs)
    layer_params = tuple(variables["params"][f"layer_{k}"] for k in range(2))
    want, _ = stack.stack(layer_params, xs, resets=resets)
    np.testing.assert_array_equal(stack.apply(variables, xs, resets=resets)[0], want)
