"""Flax modules (cells.nnx, cells.linen) are the functional path with params held for you."""

import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from cells_testing import (
    CELLS,
    LENGTHS,
    B,
    H,
    I,
    T,
    every_cell_core_by_default,
    random_carry,
    random_inputs,
)
from flax import nnx

import cells

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
    _equal(module.apply(variables, xs, **kwargs), cells.scan(cell, params, xs, **kwargs))
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
