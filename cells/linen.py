"""flax.linen modules over the cell core: params in the 'params' collection, math in `cells.scan`.

    rnn = cells.linen.RNN(cells.LSTM(64))
    variables = rnn.init(key, xs_BxTxI)                   # {'params': {'w_ih', 'w_hh', 'b'}}
    ys, carry = rnn.apply(variables, xs_BxTxI, lengths=lengths_B)

    net = cells.linen.Stack(cells.Stack.uniform(cells.GRU(64), 2, dropout=0.3))
    variables = net.init(key, xs_BxTxI)                   # {'params': {'layer_0': ..., 'layer_1'}}
    ys, carries = net.apply(variables, xs_BxTxI, deterministic=False, rngs={'dropout': key})

    lstm = nn.RNN(cells.linen.RNNCell(cells.LSTM(64)))    # any cell inside flax's own nn.RNN,
    ys = lstm.apply(lstm.init(key, xs_BxTxI), xs_BxTxI)   # nn.Bidirectional or nn.scan loops

The param trees are the functional dicts themselves (`variables['params']` is what
`cells.scan` takes; layer k of a stack is `variables['params'][f'layer_{k}']`; an `RNNCell`'s
are under its name, 'cell' inside nn.RNN), so params move freely between the functional API,
these modules and `cells.interop`. Initialisation is the cell's own `init` (same
distributions: glorot input weights, orthogonal recurrent blocks, forget bias).
`RNN(cell, learn_initial_carry=True)` adds learned initial states 'h0' (and 'c0'); `resets`
restarts episodes inside a sequence; one time step at a time (also as the first use, `init`):

    carry, h = rnn.apply(variables, carry, x_BxI, method="step")
    carry = net.apply(variables, batch_size, method="initial_carry")   # learned or zeros

In training (`deterministic=False`) the modules draw the 'dropout' rng whenever anything asks
for randomness: a stack's dropout between layers, or recurrent_dropout / zoneout passed
through to `cells.scan`.
"""

from __future__ import annotations

import math
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from cells import base, interop, layers
from cells.sequence import reverse_index
from cells.sequence import scan as run_scan


def _check_xs(xs) -> None:
    if getattr(xs, "ndim", None) != 3:
        shape = getattr(xs, "shape", xs)
        raise ValueError(f"xs must have rank 3 [batch, time, features], got shape {shape}.")


def _declare_params(module: nn.Module, draw, names) -> dict:
    """`module.param(name)` for each name, all from one draw of the whole init (`draw(key)`
    -> {name: array}). Outside init, flax evaluates an init function only abstractly, to
    check the stored shapes."""
    drawn = draw(module.make_rng("params")) if module.is_initializing() else None
    return {
        n: module.param(n, lambda key, n=n: (drawn if drawn is not None else draw(key))[n])
        for n in names
    }


def _flip_valid(a_BxTxF, lengths):
    """Each sequence's valid part reversed in time, the padding left at the end (flax's
    `flip_sequences`, the order in which flax's nn.RNN(reverse=True) returns outputs)."""
    steps = a_BxTxF.shape[1]
    if lengths is None:
        return jnp.flip(a_BxTxF, axis=1)
    idx_BxT = reverse_index(jnp.clip(jnp.asarray(lengths), 0, steps), steps)
    return jnp.take_along_axis(a_BxTxF, idx_BxT[:, :, None], axis=1)


class RNN(nn.Module):
    """One recurrent layer: `cell` run over [B, T, I] inputs by `cells.scan` (the fused path).

    It also takes flax `nn.RNN`'s options, with flax's meaning, as attributes or per call:
    `seq_lengths` (our `lengths`), `initial_carry` (the carry to start from, in flax's
    layout: (c, h) for an LSTM; our `carry=` takes the cell's `LSTMState(h, c)`), `init_key`
    (unused: the initial carry is zeros or learned), `time_major` ([T, B, I] in and out),
    `reverse`, `keep_order` and `return_carry`. Where flax's semantics differ from
    `cells.scan`'s, these follow flax:

      * reverse=True runs right to left over each sequence's valid part and, as in flax,
        returns the outputs in the order they were computed (each valid part reversed, the
        padding left at the end); keep_order=True puts them back at their input positions
        (`cells.scan(reverse=True)`'s order, what a bidirectional layer needs).
      * return_carry=None (the default): cells' return, (ys, carry[, trace]) with the cell's
        carry type. True: flax's (carry, ys[, trace]), the carry in flax's layout (the state
        after each sequence's last valid step). False: ys (or (ys, trace)) alone, which is
        nn.RNN's default: set it to switch from nn.RNN without touching the call sites.
      * outputs at padded steps (t >= lengths[b]) are zeros; flax's hold whatever the cell
        computed there.

        rnn = cells.linen.RNN(cells.LSTM(64), return_carry=True)   # nn.RNN(nn.LSTMCell(64), ..)
        (c, h), ys = rnn.apply(variables, xs_BxTxI, seq_lengths=lengths_B)

    recurrent_dropout / zoneout (`cells.scan` options) draw the 'dropout' rng when
    deterministic=False (default True: evaluation), unless an `rng=` is passed.

    Attributes:
      cell: the cell (a frozen dataclass, so the module stays hashable).
      learn_initial_carry: add learned initial carries 'h0' (and 'c0') [H], zeros at init.
      time_major, return_carry, reverse, keep_order: flax nn.RNN's, defaults for every call.
      unroll: `lax.scan`'s unroll (steps per loop iteration), as nn.RNN's attribute.
    """

    cell: base.Cell
    learn_initial_carry: bool = False
    time_major: bool = False
    return_carry: bool | None = None
    reverse: bool = False
    keep_order: bool = False
    unroll: int | bool = 1

    @nn.compact
    def _params(self, input_size: int):
        """(the cell's params, the learned initial carry or None), declared on first use."""
        draw = lambda key: self.cell.init(key, input_size)
        params = _declare_params(self, draw, sorted(self.cell.param_shapes(input_size)))
        if not self.learn_initial_carry:
            return params, None
        zeros = layers.initial_carry_params(self.cell)
        carry0 = {n: self.param(n, lambda key, n=n: zeros[n]) for n in sorted(zeros)}
        return params, layers.split_initial_carry(self.cell, carry0)[1]

    def initial_carry(self, batch_size: int):
        """The carry a sequence starts from: the learned one broadcast to [batch_size, H], or
        zeros. Bound: `rnn.apply(variables, batch_size, method='initial_carry')`."""
        params = dict(self.variables.get("params", {}))
        return layers.start_carry(self.cell, params, batch_size)

    def step(self, carry, x, *, deterministic: bool = True, **step_kwargs):
        """One time step, x [B, I] -> (carry, h [B, H]); method='step'. As a first use
        (`rnn.init(key, carry, x, method='step')`) it creates the params, sized from x.
        step_kwargs: recurrent_dropout / zoneout / t as `cells.Cell.step` (with
        deterministic=False they draw the 'dropout' rng, as a call does)."""
        own, _ = self._params(x.shape[-1])
        if "rng" not in step_kwargs and not deterministic and layers.draws_rng(0.0, step_kwargs):
            step_kwargs["rng"] = self.make_rng("dropout")
        return self.cell.step(own, carry, x, **step_kwargs)

    def __call__(
        self,
        xs,
        *,
        carry=None,
        lengths=None,
        resets=None,
        return_trace: bool = False,
        deterministic: bool = True,
        initial_carry=None,
        init_key=None,
        seq_lengths=None,
        return_carry: bool | None = None,
        time_major: bool | None = None,
        reverse: bool | None = None,
        keep_order: bool | None = None,
        **scan_kwargs,
    ) -> Any:
        """`cells.scan(self.cell, params, xs, ...)` with flax nn.RNN's options (class docstring).

        Args:
          xs: inputs [B, T, I] ([T, B, I] with time_major).
          carry: the cell's carry to start from; default the learned one or zeros.
          lengths: optional [B] valid lengths (flax: seq_lengths).
          resets: optional bool [B, T]: restart from the initial carry before step t.
          return_trace: also return the per-step gate activations.
          deterministic: False draws the 'dropout' rng for recurrent_dropout / zoneout.
          initial_carry: a carry in flax's layout, instead of `carry`.
          init_key: flax nn.RNN's; unused (the initial carry is zeros or learned).
          seq_lengths: flax nn.RNN's name for `lengths`.
          return_carry: flax nn.RNN's (None: the module's attribute).
          time_major: flax nn.RNN's (None: the module's attribute).
          reverse: flax nn.RNN's (None: the module's attribute).
          keep_order: flax nn.RNN's (None: the module's attribute).
          **scan_kwargs: further `cells.scan` options (unroll, backward, recurrent_dropout...).
        """
        if not isinstance(self.cell, base.Cell):
            raise ValueError(f"cells.linen.RNN: cell must be a cells cell, got {self.cell!r}.")
        del init_key  # flax seeds a cell's carry initializer with it; ours is zeros or learned
        time_major = self.time_major if time_major is None else time_major
        reverse = self.reverse if reverse is None else reverse
        keep_order = self.keep_order if keep_order is None else keep_order
        return_carry = self.return_carry if return_carry is None else return_carry
        _check_xs(xs)
        if seq_lengths is not None:
            if lengths is not None:
                raise ValueError("cells.linen.RNN: pass lengths or seq_lengths (flax's), not both.")
            lengths = seq_lengths
        if initial_carry is not None:
            if carry is not None:
                raise ValueError(
                    "cells.linen.RNN: pass carry (the cell's carry type) or initial_carry "
                    "(flax's layout), not both."
                )
            carry = interop.carry_from_flax(self.cell, initial_carry)
        xs_BxTxI = jnp.swapaxes(xs, 0, 1) if time_major else xs
        own, learned = self._params(xs_BxTxI.shape[-1])
        if "rng" not in scan_kwargs and not deterministic and layers.draws_rng(0.0, scan_kwargs):
            scan_kwargs["rng"] = self.make_rng("dropout")
        scan_kwargs.setdefault("unroll", self.unroll)
        ys, final, *trace = run_scan(
            self.cell,
            own,
            xs_BxTxI,
            carry=carry,
            initial_carry=learned,
            lengths=lengths,
            resets=resets,
            reverse=reverse,
            return_trace=return_trace,
            **scan_kwargs,
        )
        outputs = (ys, *trace)
        if reverse and not keep_order:
            outputs = jax.tree.map(lambda a: _flip_valid(a, lengths), outputs)
        if time_major:
            outputs = jax.tree.map(lambda a: jnp.swapaxes(a, 0, 1), outputs)
        if return_carry is None:
            return (outputs[0], final, *outputs[1:])
        if return_carry:
            return (interop.carry_to_flax(self.cell, final), *outputs)
        return outputs if return_trace else outputs[0]


class RNNCell(nn.RNNCellBase):
    """Any cells cell as a flax RNN cell (`nn.RNNCellBase`): for flax's own `nn.RNN`,
    `nn.Bidirectional` and hand-written `nn.scan` loops (a decoder feeding back its output).

        lstm = nn.RNN(cells.linen.RNNCell(cells.LSTM(64)))   # was nn.RNN(nn.LSTMCell(64))
        variables = lstm.init(key, xs_BxTxI)                 # {'params': {'cell': w_ih, w_hh, b}}
        ys = lstm.apply(variables, xs_BxTxI, seq_lengths=lengths_B)
        # == cells.scan(cells.LSTM(64), variables['params']['cell'], xs_BxTxI, ...)[0]

    `__call__(carry, x [*batch, I]) -> (carry, h [*batch, H])` is one `cell.step`. The params
    are the cell's own (`cell.init`: the functional dict's names, shapes and distributions),
    so `cells.scan`, `cells.linen.RNN` and `cells.interop` take them as they are.

    The carry is in flax's layout: the tuple (c, h) for an LSTM carry, the array h for a
    one-state cell (GRU, Elman, MGU, IndRNN, MinGRU, ...), the cell's NamedTuple only where flax
    has no such cell (the sLSTM's (h, c, n, m)). `initialize_carry` returns what nn.LSTMCell's
    returns (zeros (c, h)). Why flax's and not `LSTMState(h, c)`: this module exists to sit
    where flax code expects a flax cell, and that code unpacks `c, h = carry`, builds
    `initial_carry=(c, h)` and hands carries between cells (a decoder started from its
    encoder's state); our NamedTuple there would swap h and c silently (both [B, H]). So it is
    a drop-in replacement for nn.LSTMCell / nn.GRUCell / nn.SimpleCell; convert a carry for
    `cells.scan` with `cells.interop.carry_from_flax(cell, carry)` (it refuses an LSTMState).

    Named RNNCell, not Cell: `cells.Cell` is the functional cells' base class (hyper-parameters
    only); this is the flax module around one, named after the flax contract it implements,
    as `cells.linen.RNN` is named after nn.RNN.

    Attributes:
      cell: any cells cell (`cells.LSTM(64)`, `cells.get('mingru')(64)`, ...).
    """

    cell: base.Cell

    @nn.compact
    def __call__(self, carry, x):
        if not isinstance(self.cell, base.Cell):
            raise ValueError(f"cells.linen.RNNCell: cell must be a cells cell, got {self.cell!r}.")
        batch, input_size = x.shape[:-1], x.shape[-1]
        draw = lambda key: self.cell.init(key, input_size)
        params = _declare_params(self, draw, sorted(self.cell.param_shapes(input_size)))
        ours = interop.carry_from_flax(self.cell, carry)
        flat = type(ours)(*(a.reshape(-1, a.shape[-1]) for a in ours))
        new, h = self.cell.step(params, flat, x.reshape(-1, input_size))
        new = type(new)(*(a.reshape(*batch, a.shape[-1]) for a in new))
        return interop.carry_to_flax(self.cell, new), h.reshape(*batch, h.shape[-1])

    @nn.nowrap
    def initialize_carry(self, rng, input_shape: tuple[int, ...]):
        """Zeros in flax's layout for inputs of shape [*batch, I] (rng unused, as with
        nn.LSTMCell's default carry_init)."""
        del rng
        batch = tuple(input_shape[:-1])
        zeros = self.cell.initial_carry(math.prod(batch))
        zeros = type(zeros)(*(a.reshape(*batch, a.shape[-1]) for a in zeros))
        return interop.carry_to_flax(self.cell, zeros)

    @property
    def num_feature_axes(self) -> int:
        return 1


class Stack(nn.Module):
    """A `cells.Stack` (layers, dropout between layers, bidirectional layers) as a linen module.

    Attributes:
      stack: the `cells.Stack`.
    """

    stack: layers.Stack

    @nn.compact
    def _params(self, input_size: int) -> tuple:
        """The per-layer params tuple (params 'layer_0', ...), declared on first use."""
        names = [f"layer_{k}" for k in range(len(self.stack.layers))]
        draw = lambda key: dict(zip(names, self.stack.init(key, input_size), strict=True))
        params = _declare_params(self, draw, names)
        return tuple(params[n] for n in names)

    def initial_carry(self, batch_size: int) -> tuple:
        """The per-layer carries a sequence starts from: with learn_initial_carry, every
        layer's learned h0 (c0) broadcast to [batch_size, H], else zeros. Needs the bound
        params: `net.apply(variables, batch_size, method='initial_carry')`."""
        params = self.variables.get("params")
        names = [f"layer_{k}" for k in range(len(self.stack.layers))]
        layer_params = tuple(params[n] for n in names) if params else None
        return self.stack.initial_carry(batch_size, layer_params)

    def step(self, carry, x, *, deterministic: bool = True, **step_kwargs):
        """One time step of every layer (`cells.Stack.step`), method='step': (carries, top
        output [B, H]); step_kwargs: recurrent_dropout / zoneout / t as `cells.Stack.step`
        (deterministic: zoneout's expectation, what evaluation computes); with
        deterministic=False the 'dropout' rng is drawn as in a call. As a first use (init) it
        creates the params, sized from x [B, I]."""
        params = self._params(x.shape[-1])
        use_rng = not deterministic and layers.draws_rng(self.stack.dropout, step_kwargs)
        rng = self.make_rng("dropout") if use_rng else None
        return self.stack.step(params, carry, x, rng=rng, **step_kwargs)

    def __call__(
        self,
        xs,
        *,
        carry=None,
        lengths=None,
        resets=None,
        deterministic: bool = True,
        **scan_kwargs,
    ):
        """Runs the stack: (ys of the top layer [B, T, H], tuple of per-layer carries).

        Args:
          xs: inputs [B, T, I].
          carry: per-layer carries; default zeros (or the learned initial carries).
          lengths: optional [B] valid lengths.
          resets: optional bool [B, T]: restart every layer's carry before step t.
          deterministic: True (default) is evaluation: no dropout, zoneout's expectation.
            False draws the 'dropout' rng when the between-layer dropout, recurrent_dropout
            or zoneout asks for randomness (each layer gets its own key, as `cells.Stack`).
          **scan_kwargs: further `cells.scan` options (unroll, remat, backward,
            recurrent_dropout, zoneout).
        """
        if not isinstance(self.stack, layers.Stack):
            raise ValueError(f"cells.linen.Stack: stack must be a cells.Stack, got {self.stack!r}.")
        _check_xs(xs)
        params = self._params(xs.shape[-1])
        use_rng = not deterministic and layers.draws_rng(self.stack.dropout, scan_kwargs)
        rng = self.make_rng("dropout") if use_rng else None
        return self.stack(
            params, xs, carry=carry, lengths=lengths, resets=resets, rng=rng, **scan_kwargs
        )
