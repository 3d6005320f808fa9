"""Flax modules (cells.nnx, cells.linen) are the functional path with params held for you."""

import subprocess
import sys

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from cells_testing import (
    CELLS,
    CORE_CELL_IDS,
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
)
from flax import nnx

import cells
from cells import interop

# The modules wrap the functional path: one cell per family by default, every cell when slow.
CORE_BY_DEFAULT = every_cell_core_by_default()


def _equal(a, b):
    jax.tree.map(np.testing.assert_array_equal, a, b)


def test_import_cells_is_light():
    code = (
        "import sys, cells; "
        "heavy = [m for m in ('flax', 'torch', 'cells.nnx', 'cells.linen') if m in sys.modules]; "
        "assert not heavy, heavy; "
        "assert cells.nnx.RNN and cells.linen.RNN and 'flax.nnx' in sys.modules"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


# -- NNX -------------------------------------------------------------------------------------


@CORE_BY_DEFAULT
def test_nnx_rnn_equals_functional(name):
    cell = CELLS[name]
    rnn = cells.nnx.RNN(cell, I, rngs=nnx.Rngs(0))
    params = rnn.params
    assert set(params) == set(cell.param_shapes(I))
    assert all(isinstance(getattr(rnn, k), nnx.Param) for k in params)
    _equal(params, cell.init(nnx.Rngs(0).params(), I))  # the cell's own init, same key stream
    xs, carry = random_inputs(), random_carry(cell)
    kwargs = dict(carry=carry, lengths=LENGTHS, reverse=True, return_trace=True, unroll=2)
    _equal(rnn(xs, **kwargs), cells.scan(cell, params, xs, **kwargs))
    _equal(cells.nnx.RNN.from_params(cell, params).params, params)


def test_nnx_rnn_trains_with_nnx_optimizer_and_matches_functional_grads():
    cell = cells.GRU(H)
    rnn = cells.nnx.RNN(cell, I, rngs=nnx.Rngs(1))
    xs = random_inputs()
    loss_fn = lambda ys: jnp.mean((ys - 0.5) ** 2)
    grads = nnx.grad(lambda m: loss_fn(m(xs, lengths=LENGTHS)[0]))(rnn)
    expected = jax.grad(lambda p: loss_fn(cells.scan(cell, p, xs, lengths=LENGTHS)[0]))(rnn.params)
    got = {k: grads[k][...] for k in expected}
    jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-8), got, expected)

    optimizer = nnx.Optimizer(rnn, optax.sgd(0.5), wrt=nnx.Param)

    @nnx.jit
    def train_step(model, optimizer):
        loss, g = nnx.value_and_grad(lambda m: loss_fn(m(xs, lengths=LENGTHS)[0]))(model)
        optimizer.update(model, g)
        return loss

    losses = [float(train_step(rnn, optimizer)) for _ in range(5)]
    assert losses[-1] < losses[0]


def test_nnx_stack_equals_functional_with_dropout_and_bidirectional():
    stack = cells.Stack(
        (cells.Bidirectional(cells.LSTM(H), cells.GRU(H)), cells.SimpleRNN(H)), dropout=0.5
    )
    module = cells.nnx.Stack(stack, I, rngs=nnx.Rngs(0))
    params = module.params
    _equal(params, stack.init(nnx.Rngs(0).params(), I))
    assert set(nnx.state(module, nnx.Param)["layers"][0]) == {"forward", "backward"}
    xs = random_inputs()
    out = module(xs, lengths=LENGTHS)  # no rngs: no dropout
    _equal(out, stack(params, xs, lengths=LENGTHS))
    dropped = module(xs, lengths=LENGTHS, rngs=nnx.Rngs(dropout=3))
    _equal(dropped, stack(params, xs, lengths=LENGTHS, rng=nnx.Rngs(dropout=3).dropout()))
    assert np.abs(np.asarray(dropped[0] - out[0])).max() > 1e-3
    _equal(cells.nnx.Stack.from_params(stack, params).params, params)


def test_nnx_errors():
    with pytest.raises(ValueError, match="pass either input_size and rngs .new params. or params"):
        cells.nnx.RNN(cells.LSTM(H), I)
    with pytest.raises(ValueError, match="cell must be a cells cell"):
        cells.nnx.RNN("lstm", I, rngs=nnx.Rngs(0))
    with pytest.raises(ValueError, match="stack must be a cells.Stack"):
        cells.nnx.Stack(cells.LSTM(H), I, rngs=nnx.Rngs(0))


# -- Linen -----------------------------------------------------------------------------------


@CORE_BY_DEFAULT
def test_linen_rnn_equals_functional(name):
    cell = CELLS[name]
    module = cells.linen.RNN(cell)
    xs, carry = random_inputs(), random_carry(cell)
    variables = module.init(jax.random.key(0), xs)
    params = variables["params"]
    assert jax.tree.map(jnp.shape, params) == cell.param_shapes(I)
    if name == "lstm":
        np.testing.assert_array_equal(params["b"][H : 2 * H], 1.0)  # the cell's own init
    kwargs = dict(carry=carry, lengths=LENGTHS, reverse=True, return_trace=True, unroll=2)
    got = module.apply(variables, xs, keep_order=True, **kwargs)  # cells.scan's reverse order
    _equal(got, cells.scan(cell, params, xs, **kwargs))
    if name == "lstm":  # and under jit (one cell is enough: the module code is cell-agnostic)
        jitted = jax.jit(lambda v, x: module.apply(v, x, lengths=LENGTHS))(variables, xs)
        _equal(jitted, cells.scan(cell, params, xs, lengths=LENGTHS))


def test_linen_stack_equals_functional_and_dropout():
    stack = cells.Stack((cells.LSTM(H), cells.Bidirectional(cells.GRU(H), cells.GRU(H))), 0.5)
    module = cells.linen.Stack(stack)
    xs = random_inputs()
    variables = module.init(jax.random.key(0), xs)
    params = tuple(variables["params"][f"layer_{k}"] for k in range(2))
    assert jax.tree.structure(params) == jax.tree.structure(stack.init(jax.random.key(0), I))
    out = module.apply(variables, xs, lengths=LENGTHS)  # deterministic by default
    _equal(out, stack(params, xs, lengths=LENGTHS))
    key = jax.random.key(4)
    dropped = module.apply(
        variables, xs, lengths=LENGTHS, deterministic=False, rngs={"dropout": key}
    )
    assert np.abs(np.asarray(dropped[0] - out[0])).max() > 1e-3
    assert dropped[0].shape == (B, T, 2 * H)


def test_linen_errors():
    with pytest.raises(ValueError, match="xs must have rank 3"):
        cells.linen.RNN(cells.LSTM(H)).init(jax.random.key(0), jnp.zeros((T, I)))
    with pytest.raises(ValueError, match="stack must be a cells.Stack"):
        cells.linen.Stack(cells.LSTM(H)).init(jax.random.key(0), random_inputs())


# -- Randomness in training: recurrent dropout and zoneout reach the stack modules -------------

# A stack with no dropout between layers: only the scan options ask for an rng.
RNG_STACK = cells.Stack((cells.LSTM(H), cells.GRU(H)))
SCAN_RANDOMNESS = pytest.mark.parametrize(
    "option", [{"recurrent_dropout": 0.5}, {"zoneout": (0.0, 0.4)}], ids=["rec_dropout", "zoneout"]
)


def _differs(a, b):
    assert np.abs(np.asarray(a) - np.asarray(b)).max() > 1e-4


@SCAN_RANDOMNESS
def test_nnx_stack_training_draws_the_rng_for_recurrent_dropout_and_zoneout(option):
    module = cells.nnx.Stack(RNG_STACK, I, rngs=nnx.Rngs(0))
    xs = random_inputs()
    train = module(xs, lengths=LENGTHS, rngs=nnx.Rngs(dropout=3), **option)
    key = nnx.Rngs(dropout=3).dropout()
    _equal(train, RNG_STACK(module.params, xs, lengths=LENGTHS, rng=key, **option))
    _differs(train[0], module(xs, lengths=LENGTHS, **option)[0])  # no rngs: evaluation


class _DropoutKey(nn.Module):
    """The key a top-level linen module's first make_rng('dropout') returns."""

    def __call__(self):
        return self.make_rng("dropout")


@SCAN_RANDOMNESS
def test_linen_stack_training_draws_the_rng_for_recurrent_dropout_and_zoneout(option):
    module = cells.linen.Stack(RNG_STACK)
    xs = random_inputs()
    variables = module.init(jax.random.key(0), xs)
    params = (variables["params"]["layer_0"], variables["params"]["layer_1"])
    rngs = {"dropout": jax.random.key(4)}
    train = module.apply(variables, xs, deterministic=False, rngs=rngs, **option)
    key = _DropoutKey().apply({}, rngs=rngs)
    _equal(train, RNG_STACK(params, xs, rng=key, **option))
    _differs(train[0], module.apply(variables, xs, **option)[0])  # deterministic: evaluation


def test_linen_and_nnx_rnn_draw_the_rng_for_recurrent_dropout():
    cell, xs = cells.GRU(H), random_inputs()
    rnn = cells.nnx.RNN(cell, I, rngs=nnx.Rngs(0))
    key = nnx.Rngs(dropout=3).dropout()
    want = cells.scan(cell, rnn.params, xs, recurrent_dropout=0.5, rng=key)
    _equal(rnn(xs, recurrent_dropout=0.5, rngs=nnx.Rngs(dropout=3)), want)
    module = cells.linen.RNN(cell)
    variables, rngs = module.init(jax.random.key(0), xs), {"dropout": jax.random.key(4)}
    got = module.apply(variables, xs, recurrent_dropout=0.5, deterministic=False, rngs=rngs)
    key = _DropoutKey().apply({}, rngs=rngs)
    _equal(got, cells.scan(cell, variables["params"], xs, recurrent_dropout=0.5, rng=key))


# -- Learned initial carries: initial_carry and step start where the full call starts -------


def _learned_stack_params():
    """A 2-layer stack with learned initial carries, h0/c0 moved away from their zero init."""
    stack = cells.Stack((cells.LSTM(H), cells.GRU(H)), learn_initial_carry=True)
    params = stack.init(jax.random.key(0), I)
    rng = np.random.default_rng(7)
    params = tuple(
        {
            k: v + 0.5 * rng.standard_normal(v.shape) if k in ("h0", "c0") else v
            for k, v in p.items()
        }
        for p in params
    )
    return stack, params


def _step_through(step, carry, xs):
    ys = []
    for t in range(xs.shape[1]):
        carry, y = step(carry, xs[:, t])
        ys.append(y)
    return jnp.stack(ys, axis=1)


def test_nnx_stack_initial_carry_is_the_learned_one():
    stack, params = _learned_stack_params()
    module = cells.nnx.Stack.from_params(stack, params)
    xs = random_inputs()
    ys, _ = module(xs)
    carry = module.initial_carry(B)
    np.testing.assert_array_equal(carry[0].c[1], params[0]["c0"])
    assert_close(_step_through(module.step, carry, xs), ys, 1e-6, "steps from initial_carry")


def test_linen_stack_initial_carry_is_the_learned_one():
    stack, params = _learned_stack_params()
    module = cells.linen.Stack(stack)
    xs = random_inputs()
    variables = {"params": {f"layer_{k}": p for k, p in enumerate(params)}}
    ys, _ = module.apply(variables, xs)
    carry = module.apply(variables, B, method="initial_carry")
    np.testing.assert_array_equal(carry[1].h[2], params[1]["h0"])
    step = lambda c, x: module.apply(variables, c, x, method="step")
    assert_close(_step_through(step, carry, xs), ys, 1e-6, "steps from initial_carry")


def test_module_steps_run_the_evaluated_model_with_zoneout():
    """Stepping a module with the call's zoneout (no rng: its expectation) equals the evaluated
    call, for nnx and linen, one layer and a stack (their steps took no regularisers)."""
    stack, params = _learned_stack_params()
    xs = random_inputs()
    options = {"zoneout": 0.3}
    nnx_stack = cells.nnx.Stack.from_params(stack, params)
    ys, _ = nnx_stack(xs, **options)
    step = lambda c, x: nnx_stack.step(c, x, **options)  # noqa: E731
    assert_close(_step_through(step, nnx_stack.initial_carry(B), xs), ys, 1e-6, "nnx stack")
    linen_stack = cells.linen.Stack(stack)
    variables = {"params": {f"layer_{k}": p for k, p in enumerate(params)}}
    ys, _ = linen_stack.apply(variables, xs, **options)
    step = lambda c, x: linen_stack.apply(variables, c, x, method="step", **options)  # noqa: E731
    carry = linen_stack.apply(variables, B, method="initial_carry")
    assert_close(_step_through(step, carry, xs), ys, 1e-6, "linen stack")
    cell = cells.LSTM(H)
    rnn = cells.nnx.RNN(cell, I, rngs=nnx.Rngs(0))
    ys, _ = rnn(xs, **options)
    step = lambda c, x: rnn.step(c, x, **options)  # noqa: E731
    assert_close(_step_through(step, cell.initial_carry(B), xs), ys, 1e-6, "nnx rnn")
    linen_rnn = cells.linen.RNN(cell)
    variables = linen_rnn.init(jax.random.key(0), xs)
    ys, _ = linen_rnn.apply(variables, xs, **options)
    step = lambda c, x: linen_rnn.apply(variables, c, x, method="step", **options)  # noqa: E731
    assert_close(_step_through(step, cell.initial_carry(B), xs), ys, 1e-6, "linen rnn")


def test_linen_step_as_first_use_creates_the_params():
    xs = random_inputs()
    rnn = cells.linen.RNN(cells.LSTM(H), learn_initial_carry=True)
    variables = rnn.init(jax.random.key(0), cells.LSTM(H).initial_carry(B), xs[:, 0], method="step")
    _equal(variables, rnn.init(jax.random.key(0), xs))  # the same params as a call would make
    carry = rnn.apply(variables, B, method="initial_carry")
    step = lambda c, x: rnn.apply(variables, c, x, method="step")
    assert_close(_step_through(step, carry, xs), rnn.apply(variables, xs)[0], 1e-6)
    net = cells.linen.Stack(cells.Stack.uniform(cells.GRU(H), 2))
    variables = net.init(jax.random.key(1), net.stack.initial_carry(B), xs[:, 0], method="step")
    _equal(variables, net.init(jax.random.key(1), xs))


# -- flax's own nn.RNN, nn.Bidirectional and nn.scan with any cell (RNNCell) ----------------


@pytest.mark.parametrize("name", CORE_CELL_IDS)
def test_rnn_cell_in_flax_nn_rnn_equals_scan(name):
    cell = CELLS[name]
    rnn = nn.RNN(cells.linen.RNNCell(cell), return_carry=True)
    xs, lengths = random_inputs(), np.array([T, 3, 1])
    variables = rnn.init(jax.random.key(0), xs)
    params = variables["params"]["cell"]
    assert jax.tree.map(jnp.shape, params) == cell.param_shapes(I)
    flax_carry, ys = rnn.apply(variables, xs, seq_lengths=jnp.asarray(lengths))
    want_ys, want_carry = cells.scan(cell, params, xs, lengths=lengths)
    for b, length in enumerate(lengths):
        assert_close(ys[b, :length], want_ys[b, :length], 1e-5, "outputs")
    carry = interop.carry_from_flax(cell, flax_carry)
    jax.tree.map(lambda a, b: assert_close(a, b, 1e-5, "carry"), carry, want_carry)


def test_rnn_cell_in_flax_bidirectional_equals_cells_bidirectional():
    fwd, bwd = cells.LSTM(H), cells.GRU(H)
    bi = nn.Bidirectional(nn.RNN(cells.linen.RNNCell(fwd)), nn.RNN(cells.linen.RNNCell(bwd)))
    xs, lengths = random_inputs(), np.array([T, 3, 1])
    variables = bi.init(jax.random.key(0), xs)
    params = {
        "forward": variables["params"]["forward_rnn"]["cell"],
        "backward": variables["params"]["backward_rnn"]["cell"],
    }
    ys = bi.apply(variables, xs, seq_lengths=jnp.asarray(lengths))
    want, _ = cells.Bidirectional(fwd, bwd)(params, xs, lengths=lengths)
    for b, length in enumerate(lengths):
        assert_close(ys[b, :length], want[b, :length], 1e-5, "outputs")


class _ScanLoop(nn.Module):
    """A hand-written nn.scan over a cell, as flax decoders are written."""

    cell: nn.RNNCellBase

    @nn.compact
    def __call__(self, carry, xs_BxTxI):
        scan = nn.scan(
            lambda cell, c, x: cell(c, x),
            variable_broadcast="params",
            split_rngs={"params": False},
            in_axes=1,
            out_axes=1,
        )
        return scan(self.cell, carry, xs_BxTxI)


def test_rnn_cell_is_a_drop_in_for_nn_lstm_cell_in_an_nn_scan_loop():
    """Same carry layout as nn.LSTMCell ((c, h)): our cell with to_flax'd params gives flax's
    outputs from the same non-zero (c, h), inside one hand-written nn.scan."""
    cell, xs = cells.LSTM(H), random_inputs()
    ours = cells.linen.RNNCell(cell)
    flax_cell = nn.LSTMCell(H)
    zeros = ours.initialize_carry(jax.random.key(0), xs[:, 0].shape)
    want_zeros = flax_cell.initialize_carry(jax.random.key(0), xs[:, 0].shape)
    assert jax.tree.structure(zeros) == jax.tree.structure(want_zeros)
    _equal(zeros, want_zeros)
    carry = interop.carry_to_flax(cell, random_carry(cell))  # (c, h)
    variables = _ScanLoop(ours).init(jax.random.key(0), carry, xs)
    (c, h), ys = _ScanLoop(ours).apply(variables, carry, xs)
    flax_vars = {"params": {"cell": interop.to_flax(cell, variables["params"]["cell"])["params"]}}
    (want_c, want_h), want_ys = _ScanLoop(flax_cell).apply(flax_vars, carry, xs)
    assert_close(ys, want_ys, 1e-5, "outputs")
    assert_close(c, want_c, 1e-5, "c")
    assert_close(h, want_h, 1e-5, "h")
    assert_close(h, ys[:, -1], 1e-7, "h is the last output")


# -- cells.linen.RNN takes flax nn.RNN's keywords, with flax's meaning ------------------------

NN_RNN_OPTIONS = {
    "reverse": dict(reverse=True),
    "reverse_keep_order": dict(reverse=True, keep_order=True),
    "time_major": dict(time_major=True),
    "initial_carry_no_carry": dict(return_carry=False, initial_carry=True),
}


@pytest.mark.parametrize("option", list(NN_RNN_OPTIONS))
def test_linen_rnn_takes_nn_rnn_keywords_with_flax_meaning(option):
    kwargs = dict(NN_RNN_OPTIONS[option])
    cell = cells.LSTM(H)
    params, xs, lengths = random_params(cell), random_inputs(), jnp.asarray([T, 3, 1])
    if kwargs.pop("initial_carry", False):
        kwargs["initial_carry"] = interop.carry_to_flax(cell, random_carry(cell))
    kwargs.setdefault("return_carry", True)
    if kwargs.get("time_major"):
        xs = jnp.swapaxes(xs, 0, 1)
    flax_rnn = nn.RNN(nn.LSTMCell(H))
    flax_vars = {"params": {"cell": interop.to_flax(cell, params)["params"]}}
    want = flax_rnn.apply(flax_vars, xs, seq_lengths=lengths, **kwargs)
    got = cells.linen.RNN(cell).apply({"params": params}, xs, seq_lengths=lengths, **kwargs)
    assert jax.tree.structure(got) == jax.tree.structure(want)
    if kwargs["return_carry"]:
        jax.tree.map(lambda a, b: assert_close(a, b, 1e-5, "carry"), got[0], want[0])
        got, want = got[1], want[1]
    for b, length in enumerate(np.asarray(lengths)):
        valid = (slice(None, length), b) if kwargs.get("time_major") else (b, slice(None, length))
        assert_close(got[valid], want[valid], 1e-5, "outputs")


def test_linen_rnn_flax_keyword_errors():
    rnn, xs = cells.linen.RNN(cells.LSTM(H)), random_inputs()
    variables = rnn.init(jax.random.key(0), xs)
    with pytest.raises(ValueError, match="pass lengths or seq_lengths"):
        rnn.apply(variables, xs, lengths=LENGTHS, seq_lengths=LENGTHS)
    carry = cells.LSTM(H).initial_carry(B)
    with pytest.raises(ValueError, match="pass carry .* or initial_carry"):
        rnn.apply(variables, xs, carry=carry, initial_carry=interop.carry_to_flax(rnn.cell, carry))
    with pytest.raises(ValueError, match="already a cells LSTMState"):
        rnn.apply(variables, xs, initial_carry=carry)  # ours where flax's (c, h) belongs
