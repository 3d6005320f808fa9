"""Combinations drawn at random and checked against the specification.

Each example draws a cell (every registered cell and option set of `cells_testing.CELLS`), a
layer (the cell alone, a two-layer `cells.Stack`, a `cells.Bidirectional`), a carry source
(zeros, a given carry, an initial carry with or without resets, a learned or broadcast one),
a dtype, the backward, the mode, the projection, unroll, remat, lengths, the direction and a
regulariser (and, in a second test over the cells oneDNN runs, the backend 'onednn' or 'auto'),
and then either

  * the library refuses the combination in one line (a ValueError) exactly where it cannot
    apply (`_refusal` below says where), or
  * values and gradients (parameters, inputs and carries) equal the specification:
    `cells.reference_scan` (`cell.reference_step` in a Python loop, with the regularisers'
    same draws) run by autodiff, chained the same way for stacks and bidirectional layers.

So the next combination that is wrong is found by the suite, not by a user. The default run
draws a few examples (derandomized, the same in every run); `make test-all` draws many more.
"""

from __future__ import annotations

import dataclasses
import warnings

import cells_testing as ct
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import cells
from cells.kernels import onednn_rnn

_REGULARIZERS = {
    "none": {},
    "zoneout": {"zoneout": (0.3, 0.5), "rng": True},
    "zoneout_expectation": {"zoneout": 0.4},
    "recurrent_dropout": {"recurrent_dropout": 0.3, "rng": True},
    "both": {"recurrent_dropout": 0.25, "zoneout": 0.2, "rng": True},
}
_CARRY_SOURCES = ("zeros", "carry", "initial_carry", "initial_carry_resets", "learned")


@dataclasses.dataclass(frozen=True)
class Combination:
    name: str
    layer: str  # 'cell', 'stack', 'bidirectional'
    carry_source: str
    dtype: str
    backward: str
    mode: str
    projection: str
    unroll: int
    remat: bool
    lengths: tuple | None
    reverse: bool
    regularizer: str
    between_dropout: float
    backend: str = "xla"

    @property
    def cell(self) -> cells.Cell:
        return ct.CELLS[self.name]

    @property
    def linear(self) -> bool:
        return getattr(self.cell, "linear_in_h", False)


@st.composite
def combinations(draw, names=tuple(ct.CELL_IDS), backends=("xla",)) -> Combination:
    layer = draw(st.sampled_from(("cell", "stack", "bidirectional")))
    lengths = draw(st.none() | st.lists(st.integers(0, ct.T), min_size=ct.B, max_size=ct.B))
    return Combination(
        name=draw(st.sampled_from(names)),
        layer=layer,
        carry_source=draw(st.sampled_from(_CARRY_SOURCES)),
        dtype=draw(st.sampled_from(("float32", "float64"))),
        backward=draw(st.sampled_from(("autodiff", "fused"))),
        mode=draw(st.sampled_from(("auto", "sequential", "hoisted", "parallel"))),
        projection=draw(st.sampled_from(("auto", "hoisted", "in_loop"))),
        unroll=draw(st.sampled_from((1, 2))),
        remat=draw(st.booleans()),
        lengths=None if lengths is None else tuple(lengths),
        reverse=draw(st.booleans()),
        regularizer=draw(st.sampled_from(tuple(_REGULARIZERS))),
        between_dropout=draw(st.sampled_from((0.0, 0.3))) if layer == "stack" else 0.0,
        backend=draw(st.sampled_from(backends)) if len(backends) > 1 else backends[0],
    )


def _onednn_runs(c: Combination) -> bool:
    """Whether backend='onednn' runs every scan of `c` (cells.kernels.onednn_rnn's scope)."""
    layers = (c.cell, _top()) if c.layer == "stack" else (c.cell,)
    return (
        onednn_rnn.available()
        and all(onednn_rnn.cell_kind(cell) for cell in layers)
        and c.dtype == "float32"
        and c.lengths is None
        and c.carry_source != "initial_carry_resets"
        and c.regularizer == "none"
        and not c.remat
        and c.mode in ("auto", "sequential")
    )


def _refusal(c: Combination) -> str | None:
    """A regex of the messages `cells.scan` may refuse `c` with (any that applies), or None
    when it must run it."""
    regularized = c.regularizer != "none"
    reasons = []
    if c.mode in ("hoisted", "parallel"):
        if not c.linear or c.layer == "stack":  # the stack's top layer is an LSTM (_top)
            reasons.append("needs a cell whose recurrence is linear in h")
        if regularized:
            reasons.append("cannot apply them")
        if c.remat:
            reasons.append("has no steps to recompute")
    if "recurrent_dropout" in _REGULARIZERS[c.regularizer] and c.linear:
        reasons.append("has no recurrent product to drop")
    if c.backend == "onednn" and not _onednn_runs(c):
        reasons.append("backend='onednn' cannot run this call")
    return "|".join(reasons) or None


def _scan_options(c: Combination, rng) -> dict:
    options = {k: v for k, v in _REGULARIZERS[c.regularizer].items() if k != "rng"}
    if "rng" in _REGULARIZERS[c.regularizer]:
        options["rng"] = rng
    return options


def _inputs(c: Combination, rng_np):
    dtype = np.float64 if c.dtype == "float64" else np.float32
    xs = jnp.asarray(rng_np.standard_normal((ct.B, ct.T, ct.I)), dtype)
    lengths = None if c.lengths is None else jnp.asarray(c.lengths)
    resets = None
    if c.carry_source == "initial_carry_resets":
        resets = jnp.asarray(rng_np.random((ct.B, ct.T)) < 0.3)
    return xs, lengths, resets


def _carries(cell, c: Combination, rng_np, dtype):
    """(carry, initial_carry) for one cell by the drawn source (float32 whatever the dtype:
    carries run in the wider of theirs and the params', so float64 must win)."""

    def draw(batch_shape):
        fields = (rng_np.standard_normal(batch_shape + (n,)) * 0.5 for n in cell.carry_sizes)
        fields = [jnp.asarray(f, jnp.float32) for f in fields]
        if isinstance(cell, cells.SLSTM):  # a reachable state: n > 0 where c != 0
            fields[2] = jnp.abs(fields[2]) + 1.0
        return cell.carry_type(*fields)

    if c.carry_source == "carry":
        return draw((ct.B,)), None
    if c.carry_source.startswith("initial_carry"):
        return None, draw((ct.B,))
    if c.carry_source == "learned":
        return None, draw(())  # [H] fields, broadcast over the batch
    return None, None


def _layer_params(cell, seed, dtype, input_size=ct.I):
    wide = np.float64 if dtype == "float64" else np.float32
    return ct.random_params(cell, input_size=input_size, seed=seed, dtype=wide)


def _top():
    """The stack's second layer."""
    return cells.LSTM(5)


def _stack_rng(c: Combination, rng):
    """The key a stack is called with: for its regularisers' masks and between-layer dropout."""
    return rng if "rng" in _REGULARIZERS[c.regularizer] or c.between_dropout else None


def _build(c: Combination, rng_np):
    """The model as (params, run(params, xs, carry, initial, scan_kwargs, spec) -> (ys, carry))."""
    cell = c.cell
    if c.layer == "cell":
        params = _layer_params(cell, 0, c.dtype)
        carry, initial = _carries(cell, c, rng_np, c.dtype)
        return params, carry, initial
    if c.layer == "bidirectional":
        params = {
            "forward": _layer_params(cell, 0, c.dtype),
            "backward": _layer_params(cell, 1, c.dtype),
        }
        carry_f, init_f = _carries(cell, c, rng_np, c.dtype)
        carry_b, init_b = _carries(cell, c, rng_np, c.dtype)
        carry = None if carry_f is None else (carry_f, carry_b)
        initial = None if init_f is None else (init_f, init_b)
        return params, carry, initial
    # A two-layer stack: the cell, then an LSTM on its outputs.
    top = _top()
    params = [_layer_params(cell, 0, c.dtype), _layer_params(top, 1, c.dtype, cell.output_size)]
    carries = [_carries(layer, c, rng_np, c.dtype) for layer in (cell, top)]
    if c.carry_source == "learned":  # the stack's own learned initial carries, h0 / c0
        params = [
            {**p, **{f"{f}0": a for f, a in zip(layer.carry_type._fields, init, strict=True)}}
            for p, layer, (_, init) in zip(params, (cell, top), carries, strict=True)
        ]
        return tuple(params), None, None
    carry = None if carries[0][0] is None else tuple(cr for cr, _ in carries)
    initial = None if carries[0][1] is None else tuple(i for _, i in carries)
    return tuple(params), carry, initial


def _model_run(c: Combination, params, xs, carry, initial, lengths, resets, rng):
    """The library under test, every option as drawn."""
    kwargs = dict(
        lengths=lengths, resets=resets, backward=c.backward, mode=c.mode,
        projection=c.projection, unroll=c.unroll, remat=c.remat, backend=c.backend,
        **_scan_options(c, rng),
    )  # fmt: skip
    cell = c.cell
    if c.layer == "cell":
        return cells.scan(
            cell, params, xs, carry=carry, initial_carry=initial, reverse=c.reverse, **kwargs
        )
    if c.layer == "bidirectional":
        bi = cells.Bidirectional(cell, cell)
        return bi(params, xs, carry=carry, initial_carry=initial, **kwargs)
    stack = cells.Stack(
        (cell, _top()), dropout=c.between_dropout, learn_initial_carry=c.carry_source == "learned"
    )
    kwargs.pop("rng", None)
    return stack(params, xs, carry=carry, initial_carry=initial, rng=_stack_rng(c, rng), **kwargs)


def _spec_run(c: Combination, params, xs, carry, initial, lengths, resets, rng):
    """The specification: `cells.reference_scan` per layer, chained as the layers document."""
    options = _scan_options(c, rng)
    spec = dict(lengths=lengths, resets=resets)
    cell = c.cell
    if c.layer == "cell":
        return cells.reference_scan(
            cell, params, xs, carry=carry, initial_carry=initial, reverse=c.reverse,
            **spec, **options,
        )  # fmt: skip
    if c.layer == "bidirectional":
        outs = []
        for k, (direction, reverse) in enumerate((("forward", False), ("backward", True))):
            opts = dict(options)
            if "rng" in opts:
                opts["rng"] = jax.random.fold_in(rng, k)
            outs.append(
                cells.reference_scan(
                    cell,
                    params[direction],
                    xs,
                    reverse=reverse,
                    carry=None if carry is None else carry[k],
                    initial_carry=None if initial is None else initial[k],
                    **spec,
                    **opts,
                )  # fmt: skip
            )
        return jnp.concatenate([outs[0][0], outs[1][0]], -1), (outs[0][1], outs[1][1])
    stack_rng = _stack_rng(c, rng)
    options.pop("rng", None)
    finals = []
    for k, (layer, p) in enumerate(zip((cell, _top()), params, strict=True)):
        if k > 0 and stack_rng is not None:
            xs = cells.dropout(jax.random.fold_in(stack_rng, k), c.between_dropout, xs)
        init = None if initial is None else initial[k]
        if c.carry_source == "learned":
            names = [f"{f}0" for f in layer.carry_type._fields]
            init = layer.carry_type(*(p[n] for n in names))
            p = {n: v for n, v in p.items() if n not in names}
        opts = dict(options)
        if opts and stack_rng is not None:  # each layer's own key (cells.layers)
            opts["rng"] = jax.random.fold_in(stack_rng, 10_000 + k)
        xs, final = cells.reference_scan(
            layer, p, xs, carry=None if carry is None else carry[k], initial_carry=init,
            **spec, **opts,
        )  # fmt: skip
        finals.append(final)
    return xs, tuple(finals)


def _loss(run, c, params, xs, carry, initial, lengths, resets, rng):
    ys, final = run(c, params, xs, carry, initial, lengths, resets, rng)
    weights = jnp.cos(jnp.arange(ys.size, dtype=ys.dtype).reshape(ys.shape))
    return jnp.sum(jnp.sin(ys) * weights) + sum(jnp.sum(f**2) for f in jax.tree.leaves(final)), (
        ys,
        final,
    )


def check(c: Combination, seed: int = 0) -> None:
    rng_np = np.random.default_rng(seed)
    with jax.enable_x64(c.dtype == "float64"):
        xs, lengths, resets = _inputs(c, rng_np)
        params, carry, initial = _build(c, rng_np)
        rng = jax.random.key(seed)
        refusal = _refusal(c)
        if refusal:
            with pytest.raises(ValueError, match=refusal) as raised:
                _model_run(c, params, xs, carry, initial, lengths, resets, rng)
            assert "\n" not in str(raised.value)
            return
        grad = jax.value_and_grad(_loss, argnums=(2, 3, 4, 5), has_aux=True)
        with warnings.catch_warnings():  # the fused path's fallbacks warn once per class
            warnings.simplefilter("ignore", UserWarning)
            (_, (ys, final)), grads = grad(
                _model_run, c, params, xs, carry, initial, lengths, resets, rng
            )
        (_, (ys_ref, final_ref)), grads_ref = grad(
            _spec_run, c, params, xs, carry, initial, lengths, resets, rng
        )
    wide = c.dtype == "float64"
    tol = 1e-9 if wide else 2e-4
    expected_dtype = jnp.float64 if wide else jnp.float32
    assert ys.dtype == expected_dtype, (ys.dtype, c)
    assert all(f.dtype == expected_dtype for f in jax.tree.leaves(final)), c
    ct.assert_close(ys, ys_ref, tol, f"outputs {c}")
    jax.tree.map(lambda a, b: ct.assert_close(a, b, tol, f"carry {c}"), final, final_ref)
    for what, g, g_ref in zip(("params", "xs", "carry", "initial"), grads, grads_ref, strict=True):
        jax.tree.map(lambda a, b, w=what: ct.assert_close(a, b, 10 * tol, f"d{w} {c}"), g, g_ref)


_QUICK = settings(
    max_examples=15,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow],
)
_MANY = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@_QUICK
@given(combinations())
def test_drawn_combinations_equal_the_specification(combination):
    check(combination)


@pytest.mark.slow
@_MANY
@given(combinations(), st.integers(0, 2**16))
def test_many_drawn_combinations_equal_the_specification(combination, seed):
    check(combination, seed)


# The cells oneDNN runs (a stack's top layer is an LSTM), under backend='onednn' (runs or
# refuses in one line) and 'auto' (oneDNN or XLA, whichever it picks, always the same values).
_ONEDNN = combinations(names=("lstm", "gru", "gru_reset_before"), backends=("onednn", "auto"))


@settings(_QUICK, max_examples=10)
@given(_ONEDNN)
def test_drawn_onednn_combinations_equal_the_specification(combination):
    check(combination)


@pytest.mark.slow
@_MANY
@given(_ONEDNN, st.integers(0, 2**16))
def test_many_drawn_onednn_combinations_equal_the_specification(combination, seed):
    check(combination, seed)
