"""The sequence driver: fused path == reference path == a loop of cell.step, jit == no jit, every
unroll; lengths, reverse, carry chaining, trace, compute dtype, GEMM structure, errors."""

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from cells_testing import (
    CELL_IDS,
    CELLS,
    LENGTHS,
    B,
    H,
    I,
    T,
    assert_close,
    every_cell_core_by_default,
    random_carry,
    random_inputs,
    random_params,
    rounding_tol,
)

import cells
from cells.sequence import reverse_index

ALL_CELLS = pytest.mark.parametrize("name", CELL_IDS)


# Each scan call costs one XLA compile, so unroll settings and jit are paired rather than
# crossed; test_jit_equals_eager compares jit with eager directly.
@ALL_CELLS
@pytest.mark.parametrize(
    "jit, unroll",
    [(False, 1), (True, 2), (True, True)],
    ids=["eager-unroll1", "jit-unroll2", "jit-unrollT"],
)
def test_fused_equals_reference(name, jit, unroll):
    """With lengths, reverse and a non-zero carry: the hardest combination, every unroll."""
    cell = CELLS[name]
    params, xs, carry = random_params(cell), random_inputs(), random_carry(cell)
    for reverse in (False, True):
        run = lambda p, x, c, lens, reverse=reverse: cells.scan(
            cell, p, x, carry=c, lengths=lens, reverse=reverse, unroll=unroll
        )
        ys, final = (jax.jit(run) if jit else run)(params, xs, carry, LENGTHS)
        ys_ref, final_ref = cells.reference_scan(
            cell, params, xs, carry=carry, lengths=LENGTHS, reverse=reverse
        )
        assert_close(ys, ys_ref, 2e-6, "outputs")
        jax.tree.map(lambda a, b: assert_close(a, b, 2e-6, "carry"), final, final_ref)


@ALL_CELLS
def test_scan_equals_loop_of_step(name):
    cell = CELLS[name]
    params, xs, carry = random_params(cell), random_inputs(), random_carry(cell)
    ys, final = cells.scan(cell, params, xs, carry=carry)
    c, hs = carry, []
    for t in range(T):
        c, h = cell.step(params, c, xs[:, t])
        hs.append(h)
    tol = rounding_tol(cell)
    assert_close(ys, jnp.stack(hs, axis=1), tol, "outputs")
    jax.tree.map(lambda a, b: assert_close(a, b, tol, "carry"), final, c)


@ALL_CELLS
def test_jit_equals_eager_traced_lengths_and_trace_padding(name):
    cell = CELLS[name]
    params, xs = random_params(cell), random_inputs()
    eager = cells.scan(cell, params, xs, lengths=LENGTHS, return_trace=True)
    jitted = jax.jit(lambda p, x, lens: cells.scan(cell, p, x, lengths=lens, return_trace=True))(
        params, xs, jnp.asarray(LENGTHS)
    )
    jax.tree.map(lambda a, b: assert_close(a, b, 1e-6), eager, jitted)
    ys, final, trace = eager
    expected = set(cell.gate_names)
    if isinstance(cell, cells.LSTM | cells.ConvLSTM):  # every gate (i = 1 - f when coupled), c
        expected = {"i", "f", "g", "o", "c"}
    if isinstance(cell, cells.SLSTM):  # the gates, the cell and the normaliser
        expected |= {"c", "n"}
    if isinstance(cell, cells.RGLRU):  # the gates, the value and the decay a_t
        expected |= {"a"}
    widths = dict.fromkeys(expected, cell.carry_sizes[-1])  # ConvLSTM: S*F
    if isinstance(cell, cells.MLSTM):  # the stabilised i, f (one per head), o and h~
        expected = {"i", "f", "o", "h_tilde"}
        widths = {"i": cell.num_heads, "f": cell.num_heads, "o": H, "h_tilde": H}
    assert set(trace) == expected
    assert all(v.shape == (B, T, widths[k]) for k, v in trace.items())
    for b, length in enumerate(LENGTHS):  # padding: zero outputs, zero gates
        assert not np.asarray(ys[b, length:]).any()
        assert all(not np.asarray(v[b, length:]).any() for v in trace.values())
    # The empty sequence (length 0) keeps its initial (zero) carry.
    assert all(not np.asarray(c[2]).any() for c in final)


# The chaining logic is the driver's, the same for every cell: one gated cell and the two-GEMM
# GRU here; properties_test chains every cell at random lengths.
@pytest.mark.parametrize("name", ["lstm", "gru_reset_before"])
@pytest.mark.parametrize("reverse", [False, True], ids=["forward", "reverse"])
def test_carry_chaining(name, reverse):
    """Two calls over T steps, the carry fed through, equal one call over 2T.

    Forward with lengths (each half gets its share of every length); reversed, the right half
    runs first, which is the same sequence only when the sequences fill the time axis.
    """
    cell = CELLS[name]
    params, xs = random_params(cell), random_inputs((B, 2 * T, I))
    lengths = np.full((B,), 2 * T) if reverse else np.array([2 * T, T + 2, 3])
    ys, final = cells.scan(cell, params, xs, lengths=lengths, reverse=reverse)
    left, right = (xs[:, :T], np.clip(lengths, 0, T)), (xs[:, T:], np.clip(lengths - T, 0, T))
    first, second = (right, left) if reverse else (left, right)
    ys_1, carry = cells.scan(cell, params, first[0], lengths=first[1], reverse=reverse)
    ys_2, carry = cells.scan(
        cell, params, second[0], carry=carry, lengths=second[1], reverse=reverse
    )
    chained = jnp.concatenate([ys_2, ys_1] if reverse else [ys_1, ys_2], axis=1)
    assert_close(chained, ys, 1e-6, "outputs")
    jax.tree.map(lambda a, b: assert_close(a, b, 1e-6, "carry"), carry, final)


@ALL_CELLS
def test_bfloat16_compute(name):
    """compute_dtype='bfloat16': matmul inputs bf16, carry and outputs float32, close to f32."""
    import dataclasses

    cell = CELLS[name]
    bf16 = dataclasses.replace(cell, compute_dtype="bfloat16")
    params, xs = random_params(cell), random_inputs()
    ys, final = cells.scan(bf16, params, xs, lengths=LENGTHS, reverse=True)
    ys32, final32 = cells.scan(cell, params, xs, lengths=LENGTHS, reverse=True)
    assert ys.dtype == jnp.float32 and all(c.dtype == jnp.float32 for c in final)
    err = assert_close(ys, ys32, 3e-2, "bf16 vs f32 outputs")  # bf16 has an 8-bit mantissa
    assert err > 0  # the option is not a no-op
    jax.tree.map(lambda a, b: assert_close(a, b, 3e-2, "bf16 vs f32 carry"), final, final32)
    dots = _dots(jax.make_jaxpr(lambda p, x: cells.scan(bf16, p, x))(params, xs).jaxpr)
    assert dots and all(all(v.aval.dtype == jnp.bfloat16 for v in eqn.invars) for eqn, _ in dots), (
        "every matmul must take bfloat16 inputs"
    )
    assert all(eqn.outvars[0].aval.dtype == jnp.float32 for eqn, _ in dots)


def _dots(jaxpr, in_loop=False):
    """All products (dot_general, and the ConvLSTM's conv_general_dilated) of a jaxpr,
    recursively, with whether they sit in a scan body."""
    found = []
    for eqn in jaxpr.eqns:
        if eqn.primitive.name in ("dot_general", "conv_general_dilated"):
            found.append((eqn, in_loop))
        for value in eqn.params.values():
            for sub in value if isinstance(value, tuple | list) else (value,):
                sub = getattr(sub, "jaxpr", sub)  # ClosedJaxpr -> Jaxpr
                if hasattr(sub, "eqns"):
                    found += _dots(sub, in_loop or eqn.primitive.name == "scan")
    return found


@ALL_CELLS
def test_one_input_gemm_outside_one_recurrent_gemm_per_step(name):
    cell = CELLS[name]
    jaxpr = jax.make_jaxpr(lambda p, x: cells.scan(cell, p, x, lengths=LENGTHS, reverse=True))(
        random_params(cell), random_inputs()
    ).jaxpr
    dots = _dots(jaxpr)
    outside = [e for e, in_loop in dots if not in_loop]
    inside = [e for e, in_loop in dots if in_loop]
    if isinstance(cell, cells.MLSTM):  # x W_ih at once, then the memory's products per chunk
        projections = [e for e, in_loop in dots if e.invars[0].aval.shape == (B, T, I)]
        assert len(projections) == 1 and projections[0] in outside
        return
    assert len(outside) == 1  # x W_ih for all B*T rows at once
    if isinstance(cell, cells.ConvLSTM):  # one convolution of all B*T frames [B*T, *S, .]
        assert outside[0].invars[0].aval.shape[:-1] == (B * T, *cell.spatial_shape)
    else:
        assert outside[0].invars[0].aval.shape == (B, T, I)
    # One [B, H] x [H, G*H] GEMM per step; Cho's GRU needs its reset gate before the n block,
    # the LSTM's projection one more [B, H] x [H, P], and the IndRNN none (u * h, elementwise).
    expected = 2 if name == "gru_reset_before" else 1
    if getattr(cell, "proj_size", 0):
        expected = 2
    if isinstance(cell, cells.IndRNN | cells.LinearRecurrentCell):  # u * h; a parallel scan
        expected = 0
    assert len(inside) == expected


@pytest.mark.parametrize("name", ["lstm", "gru_reset_before"])  # remat wraps any cell's step alike
def test_remat_same_values_and_grads(name):
    cell = CELLS[name]
    params, xs = random_params(cell), random_inputs()

    def loss(p, remat):
        ys, _ = cells.scan(cell, p, xs, lengths=LENGTHS, remat=remat)
        return jnp.sum(ys**2)

    v1, g1 = jax.value_and_grad(loss)(params, False)
    v2, g2 = jax.value_and_grad(loss)(params, True)
    assert_close(v2, v1, 1e-6)
    jax.tree.map(lambda a, b: assert_close(a, b, 1e-5), g2, g1)


@ALL_CELLS
def test_fused_grads_equal_reference_grads(name):
    cell = CELLS[name]
    params, xs, carry = random_params(cell), random_inputs(), random_carry(cell)

    def loss(scan_fn, p, c):
        ys, final = scan_fn(cell, p, xs, carry=c, lengths=LENGTHS, reverse=True)
        return jnp.sum(jnp.sin(ys)) + sum(jnp.sum(a**2) for a in final)

    g = jax.grad(lambda p, c: loss(cells.scan, p, c), argnums=(0, 1))(params, carry)
    g_ref = jax.grad(lambda p, c: loss(cells.reference_scan, p, c), argnums=(0, 1))(params, carry)
    jax.tree.map(lambda a, b: assert_close(a, b, 1e-5), g, g_ref)


def test_reverse_index():
    idx = np.asarray(reverse_index(jnp.array([4, 2, 0]), 4))
    np.testing.assert_array_equal(idx, [[3, 2, 1, 0], [1, 0, 2, 3], [0, 1, 2, 3]])
    np.testing.assert_array_equal(np.asarray(reverse_index(None, 3)), [[2, 1, 0]])


def test_default_carry_is_zeros_float32_and_float64_under_x64(x64):
    cell = cells.LSTM(H)
    params = random_params(cell)
    _, final = cells.scan(cell, params, random_inputs(), lengths=np.zeros(B, np.int32))
    assert all(c.dtype == jnp.float32 and not np.asarray(c).any() for c in final)
    params64 = jax.tree.map(lambda a: a.astype(jnp.float64), params)
    ys, final = cells.scan(cell, params64, random_inputs(dtype=np.float64))
    assert ys.dtype == jnp.float64 and all(c.dtype == jnp.float64 for c in final)


@every_cell_core_by_default()
def test_float64_params_run_in_float64_from_every_carry_source(name, x64):
    """Carries follow the params' dtype: a float32 carry, initial carry or learned carry with
    float64 params crashed the GRU ('carry input and carry output must have equal types') and
    ran the LSTM in float32; now every source runs in float64 and matches the float64 spec."""
    cell = dataclasses.replace(CELLS[name], param_dtype=jnp.float64)
    params = random_params(cell, dtype=np.float64)
    xs = random_inputs(dtype=np.float64)
    carry32 = random_carry(cell, dtype=np.float32)
    init32 = jax.tree.map(lambda a: 0.5 * a, carry32)
    resets = jnp.zeros((B, T), bool).at[:, 2].set(True)
    sources = {
        "carry and initial_carry": dict(carry=carry32, initial_carry=init32),
        "cell.initial_carry": dict(carry=cell.initial_carry(B)),
    }
    for source, kwargs in sources.items():
        kwargs["resets"] = resets
        ys, final = cells.scan(cell, params, xs, **kwargs)
        carries = {k: v for k, v in kwargs.items() if k != "resets"}
        as64 = {k: jax.tree.map(lambda a: a.astype(jnp.float64), v) for k, v in carries.items()}
        ys_ref, final_ref = cells.reference_scan(cell, params, xs, **(kwargs | as64))
        assert ys.dtype == jnp.float64 and all(f.dtype == jnp.float64 for f in final), source
        assert_close(ys, ys_ref, 1e-12, source)
    stack = cells.Stack((cell,), learn_initial_carry=True)
    stack_params = stack.init(jax.random.key(0), I)
    assert stack_params[0]["h0"].dtype == jnp.float64
    stack_params = jax.tree.map(lambda a: a + 0.25, stack_params)
    ys, (final,) = stack(stack_params, xs)
    assert ys.dtype == jnp.float64 and all(f.dtype == jnp.float64 for f in final)
    stepped = stack.step(stack_params, stack.initial_carry(B, stack_params), xs[:, 0])[1]
    assert_close(stepped, ys[:, 0], 1e-12, "stack step from the learned carry")


# -- errors: ValueError at trace time, naming the argument and what is valid ------------------

LSTM = cells.LSTM(H)
P = random_params(LSTM)
XS = random_inputs()

ERRORS = {
    "hidden_size_zero": (lambda: cells.LSTM(0), "hidden_size must be a positive int, got 0"),
    "hidden_size_negative": (lambda: cells.GRU(-3), "hidden_size must be a positive int, got -3"),
    "hidden_size_float": (lambda: cells.SimpleRNN(2.5), "hidden_size must be a positive int"),
    "hidden_size_bool": (lambda: cells.LSTM(True), "hidden_size must be a positive int"),
    "input_size": (lambda: LSTM.init(jax.random.key(0), 0), "input_size must be a positive int"),
    "batch_size": (lambda: LSTM.initial_carry(-1), "batch_size must be an int >= 0, got -1"),
    "w_ih_scalar": (
        lambda: cells.scan(LSTM, {**P, "w_ih": jnp.float32(1.0)}, XS),
        r"params\['w_ih'\] must be a 2-D array \[input_size, 4 \* hidden_size\].*got shape \(\)",
    ),
    "w_ih_scalar_step": (
        lambda: LSTM.step({**P, "w_ih": 1.0}, LSTM.initial_carry(B), XS[:, 0]),
        r"params\['w_ih'\] must be a 2-D array",
    ),
    "remat_hoisted": (
        lambda: cells.scan(
            cells.MinGRU(H), random_params(cells.MinGRU(H)), XS, remat=True, mode="hoisted"
        ),
        r"remat=True recomputes each step of mode='sequential'; mode='hoisted' has no steps",
    ),  # fmt: skip
    "remat_parallel": (
        lambda: cells.scan(
            cells.MinLSTM(H), random_params(cells.MinLSTM(H)), XS, remat=True, mode="parallel"
        ),
        r"mode='parallel' has no steps",
    ),  # fmt: skip
    "initial_carry": (
        lambda: cells.scan(LSTM, P, XS, initial_carry=LSTM.initial_carry(B + 1)),
        r"initial_carry must be a LSTMState of arrays",
    ),
    "zoneout_array": (
        lambda: cells.scan(LSTM, P, XS, zoneout=np.array([0.1, 0.2])),
        r"zoneout must be a number in \[0, 1\]",
    ),
    "recurrent_dropout_traced": (
        lambda: jax.jit(lambda p: cells.scan(LSTM, P, XS, recurrent_dropout=p))(0.1),
        r"recurrent_dropout must be a concrete number in \[0, 1\) \(it selects the code path\)",
    ),
    "activation": (
        lambda: cells.SimpleRNN(H, activation="sigmoid"),
        r"activation must be one of \['relu', 'tanh'\], got 'sigmoid'",
    ),
    "reset_after": (lambda: cells.GRU(H, reset_after="yes"), "reset_after must be True or False"),
    "compute_dtype": (
        lambda: cells.LSTM(H, compute_dtype="int8"),
        r"compute_dtype must be one of \('float32', 'bfloat16', 'float16', 'float64'\)",
    ),
    "param_dtype": (lambda: cells.LSTM(H, param_dtype="int32"), "param_dtype must be one of"),
    "xs_rank": (
        lambda: cells.scan(LSTM, P, XS[0]),
        r"xs must have rank 3 \[batch, time, features\]",
    ),
    "xs_features": (
        lambda: cells.scan(LSTM, P, XS[..., :2]),
        "xs has 2 features but the params were made for input_size=4",
    ),
    "lengths_too_long": (
        lambda: cells.scan(LSTM, P, XS, lengths=[T + 1, 1, 1]),
        rf"lengths must lie in \[0, {T}\] \(the time dimension of xs\), got min 1 and max {T + 1}",
    ),
    "lengths_negative": (
        lambda: cells.scan(LSTM, P, XS, lengths=[-1, 1, 1]),
        rf"lengths must lie in \[0, {T}\]",
    ),
    "lengths_shape": (
        lambda: cells.scan(LSTM, P, XS, lengths=[1, 1]),
        r"lengths must have shape \[3\]",
    ),
    "lengths_dtype": (
        lambda: cells.scan(LSTM, P, XS, lengths=[1.0, 2.0, 3.0]),
        "lengths must be integers",
    ),
    "unroll": (lambda: cells.scan(LSTM, P, XS, unroll=0), "unroll must be a positive int"),
    "carry": (
        lambda: cells.scan(LSTM, P, XS, carry=LSTM.initial_carry(B + 1)),
        r"carry must be a LSTMState of arrays \(\(3, 6\), \(3, 6\)\)",
    ),
    "carry_type": (
        lambda: cells.scan(LSTM, P, XS, carry=cells.RNNState(jnp.zeros((B, H)))),
        "carry must be a LSTMState",
    ),
    "params": (
        lambda: cells.scan(cells.GRU(H), P, XS),
        r"params must have keys \['b', 'b_hn', 'w_hh', 'w_ih'\]",
    ),
    "params_hidden_size": (
        lambda: cells.scan(cells.LSTM(H + 1), P, XS),
        r"params\['b'\] must have shape \(28,\) for hidden_size=7, got \(24,\)",
    ),
    "reverse": (lambda: cells.scan(LSTM, P, XS, reverse="yes"), "reverse must be True or False"),
    "return_trace": (lambda: cells.scan(LSTM, P, XS, return_trace=1), "return_trace must be True"),
    "reference_reverse": (
        lambda: cells.reference_scan(LSTM, P, XS, reverse=None),
        "reverse must be True or False",
    ),
    "cell": (lambda: cells.scan("lstm", P, XS), "cell must be a cells.Cell"),
}


@pytest.mark.parametrize("case", list(ERRORS))
def test_errors(case):
    fn, message = ERRORS[case]
    with pytest.raises(ValueError, match=message):
        fn()


@pytest.mark.parametrize("case", ["xs_rank", "xs_features", "carry", "params_hidden_size"])
def test_errors_at_trace_time_under_jit(case):
    """The same checks fire while tracing under jit (shapes are static)."""
    fn, message = ERRORS[case]
    with pytest.raises(ValueError, match=message):
        jax.jit(fn)()


def test_traced_lengths_beyond_t_are_clipped_not_nan():
    cell = CELLS["lstm"]
    params, xs = random_params(cell), random_inputs()
    run = jax.jit(lambda lens: cells.scan(cell, params, xs, lengths=lens, reverse=True)[0])
    got = run(jnp.asarray([T + 3, 2, -1]))
    want = run(jnp.asarray([T, 2, 0]))
    assert np.isfinite(np.asarray(got)).all()
    np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("backward", ["autodiff", "fused"])
def test_nan_and_inf_in_padded_steps_reach_no_value_or_gradient(backward):
    cell = CELLS["lstm"]
    params, xs = random_params(cell), np.array(random_inputs())
    for b, length in enumerate(LENGTHS):
        xs[b, length:] = np.nan if b % 2 else np.inf
    clean = np.where(np.arange(T)[None, :, None] < LENGTHS[:, None, None], xs, 0.0)

    def loss(p, x):
        ys, final = cells.scan(cell, p, x, lengths=LENGTHS, backward=backward)
        return jnp.sum(ys**2) + jnp.sum(final.c)

    got = jax.grad(loss, argnums=(0, 1))(params, jnp.asarray(xs))
    want = jax.grad(loss, argnums=(0, 1))(params, jnp.asarray(clean))
    for a, b in zip(jax.tree.leaves(got), jax.tree.leaves(want), strict=True):
        assert np.isfinite(np.asarray(a)).all()
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7)
