"""Flax NNX modules over the cell core: the params live in `nnx.Param`s, the math is `cells.scan`.

    from flax import nnx

    rnn = cells.nnx.RNN(cells.LSTM(64), input_size=32, rngs=nnx.Rngs(0))
    ys, carry = rnn(xs_BxTxI, lengths=lengths_B)          # == cells.scan(cell, rnn.params, ...)

    net = cells.nnx.Stack(cells.Stack.uniform(cells.GRU(64), 2, dropout=0.3), 32, rngs=nnx.Rngs(0))
    ys, carries = net(xs_BxTxI, rngs=nnx.Rngs(dropout=1))  # no rngs: no dropout (evaluation)

Both modules hold a cell (or `cells.Stack`) as a static, hashable attribute and their params
under the same names as the functional dicts (`w_ih`, `w_hh`, `b`, `b_hn`), so `.params` gives
exactly what `cells.scan` / `cells.Stack` take, and `from_params` wraps params made elsewhere
(e.g. by `cells.interop`). They work with `nnx.jit`, `nnx.grad` and `nnx.Optimizer`.
`RNN(..., learn_initial_carry=True)` adds learned initial states 'h0' (and 'c0'); `resets`
restarts episodes inside a sequence; `.initial_carry(B)` (the learned carries, or zeros) and
`.step(carry, x)` run one time step at a time. Given `rngs`, a call draws `rngs.dropout()`
whenever anything asks for randomness: a stack's dropout between layers, or recurrent_dropout
/ zoneout passed through to `cells.scan` (without rngs: evaluation).
"""

from __future__ import annotations

from typing import Any

from flax import nnx

from cells import base, layers
from cells.sequence import scan as run_scan


def _check_source(input_size, rngs, params, what: str) -> None:
    new = input_size is not None and rngs is not None
    existing = params is not None and input_size is None and rngs is None
    if (params is None and new) or existing:
        return
    raise ValueError(
        f"{what}: pass either input_size and rngs (new params) or params (existing ones), "
        f"got input_size={input_size!r}, rngs={'set' if rngs is not None else None}, "
        f"params={'set' if params is not None else None}."
    )


class RNN(nnx.Module):
    """One recurrent layer: `cell` run over [B, T, I] inputs by `cells.scan`.

    Attributes:
      cell: the cell (static).
      w_ih, w_hh, b (and b_hn for GRU reset_after=True): `nnx.Param`s, the cell's params.
    """

    def __init__(
        self,
        cell: base.Cell,
        input_size: int | None = None,
        *,
        rngs: nnx.Rngs | None = None,
        params: base.Params | None = None,
        learn_initial_carry: bool = False,
    ):
        if not isinstance(cell, base.Cell):
            raise ValueError(f"cells.nnx.RNN: cell must be a cells cell, got {cell!r}.")
        _check_source(input_size, rngs, params, "cells.nnx.RNN")
        if params is None:
            params = cell.init(rngs.params(), input_size)
            if learn_initial_carry:
                params = {**params, **layers.initial_carry_params(cell)}
        own, _ = layers.split_initial_carry(cell, params)
        cell.check_params(own)
        self.cell = cell
        self.param_names = tuple(sorted(params))
        for name in self.param_names:
            setattr(self, name, nnx.Param(params[name]))

    @classmethod
    def from_params(cls, cell: base.Cell, params: base.Params) -> RNN:
        """Wraps existing params (e.g. from `cells.interop`)."""
        return cls(cell, params=params)

    @property
    def params(self) -> base.Params:
        """The params as the plain dict the functional API takes (with 'h0'/'c0' when the
        initial carry is learned; `cells.Stack(learn_initial_carry=True)` takes it as is)."""
        return {name: getattr(self, name)[...] for name in self.param_names}

    def initial_carry(self, batch_size: int):
        """The carry a sequence starts from: the learned one broadcast, or zeros."""
        return layers.start_carry(self.cell, self.params, batch_size)

    def step(self, carry, x, *, rngs: nnx.Rngs | None = None, **step_kwargs):
        """One time step: `self.cell.step(params, carry, x [B, I])` -> (carry, h [B, H]).

        step_kwargs: recurrent_dropout / zoneout / t as `cells.Cell.step` (the regularisers as
        a call applies them; with rngs, recurrent_dropout / zoneout draw `rngs.dropout()`).
        """
        own, _ = layers.split_initial_carry(self.cell, self.params)
        if rngs is not None and "rng" not in step_kwargs and layers.draws_rng(0.0, step_kwargs):
            step_kwargs["rng"] = rngs.dropout()
        return self.cell.step(own, carry, x, **step_kwargs)

    def __call__(
        self,
        xs,
        *,
        carry=None,
        lengths=None,
        resets=None,
        reverse=False,
        return_trace=False,
        rngs: nnx.Rngs | None = None,
        **scan_kwargs,
    ) -> tuple[Any, ...]:
        """`cells.scan(self.cell, self.params, xs, ...)`: (ys [B, T, H], carry[, trace]).

        rngs: recurrent_dropout / zoneout (in scan_kwargs) draw from `rngs.dropout()`; None
        (or an explicit `rng=`) as `cells.scan`.
        """
        own, learned = layers.split_initial_carry(self.cell, self.params)
        if rngs is not None and "rng" not in scan_kwargs and layers.draws_rng(0.0, scan_kwargs):
            scan_kwargs["rng"] = rngs.dropout()
        return run_scan(
            self.cell,
            own,
            xs,
            carry=carry,
            initial_carry=learned,
            lengths=lengths,
            resets=resets,
            reverse=reverse,
            return_trace=return_trace,
            **scan_kwargs,
        )


def _to_variables(tree):
    """Nested dicts of arrays -> nnx.Dict of nnx.Param (so nnx finds them as state)."""
    if isinstance(tree, dict):
        return nnx.Dict({k: _to_variables(v) for k, v in tree.items()})
    return nnx.Param(tree)


def _to_arrays(tree):
    if isinstance(tree, nnx.Variable):
        return tree[...]
    return {k: _to_arrays(v) for k, v in tree.items()}


class Stack(nnx.Module):
    """A `cells.Stack` (layers, dropout between layers, bidirectional layers) as an NNX module.

    Attributes:
      stack: the `cells.Stack` (static).
      layers: one `nnx.Dict` of `nnx.Param`s per layer (for a `cells.Bidirectional` layer,
        {'forward': ..., 'backward': ...}).
    """

    def __init__(
        self,
        stack: layers.Stack,
        input_size: int | None = None,
        *,
        rngs: nnx.Rngs | None = None,
        params: tuple | None = None,
    ):
        if not isinstance(stack, layers.Stack):
            raise ValueError(f"cells.nnx.Stack: stack must be a cells.Stack, got {stack!r}.")
        _check_source(input_size, rngs, params, "cells.nnx.Stack")
        if params is None:
            params = stack.init(rngs.params(), input_size)
        if len(params) != len(stack.layers):
            raise ValueError(
                f"cells.nnx.Stack: params has {len(params)} layers, the stack {len(stack.layers)}."
            )
        self.stack = stack
        self.layers = nnx.List([_to_variables(p) for p in params])

    @classmethod
    def from_params(cls, stack: layers.Stack, params: tuple) -> Stack:
        """Wraps existing params (e.g. `cells.interop.stack_from_torch`'s)."""
        return cls(stack, params=params)

    @property
    def params(self) -> tuple:
        """The params as the tuple the functional `cells.Stack` takes."""
        return tuple(_to_arrays(layer) for layer in self.layers)

    def initial_carry(self, batch_size: int) -> tuple:
        """The per-layer carries a sequence starts from (what a call starts from without a
        carry, and what `step` takes first): with the stack's learn_initial_carry, every
        layer's learned h0 (c0) broadcast to [batch_size, H]; zeros otherwise."""
        return self.stack.initial_carry(batch_size, self.params)

    def step(self, carry, x, *, rngs: nnx.Rngs | None = None, **step_kwargs):
        """One time step of every layer (`cells.Stack.step`): (carries, top output [B, H]).

        step_kwargs: recurrent_dropout / zoneout / t as `cells.Stack.step` (without rngs:
        zoneout's expectation, what evaluation computes); rngs as in a call.
        """
        use_rng = rngs is not None and layers.draws_rng(self.stack.dropout, step_kwargs)
        rng = rngs.dropout() if use_rng else None
        return self.stack.step(self.params, carry, x, rng=rng, **step_kwargs)

    def __call__(
        self,
        xs,
        *,
        carry=None,
        lengths=None,
        resets=None,
        rngs: nnx.Rngs | None = None,
        **scan_kwargs,
    ):
        """Runs the stack: (ys of the top layer [B, T, H], tuple of per-layer carries).

        Args:
          xs: inputs [B, T, I].
          carry: per-layer carries; default zeros (or the stack's learned initial carries).
          lengths: optional [B] valid lengths.
          resets: optional bool [B, T]: restart every layer's carry before step t.
          rngs: training: `rngs.dropout()` is drawn when the between-layer dropout,
            recurrent_dropout or zoneout asks for randomness (each layer gets its own key, as
            `cells.Stack`). None is evaluation: no dropout, zoneout's expectation.
          **scan_kwargs: further `cells.scan` options (unroll, remat, backward,
            recurrent_dropout, zoneout).
        """
        use_rng = rngs is not None and layers.draws_rng(self.stack.dropout, scan_kwargs)
        rng = rngs.dropout() if use_rng else None
        return self.stack(
            self.params, xs, carry=carry, lengths=lengths, resets=resets, rng=rng, **scan_kwargs
        )
