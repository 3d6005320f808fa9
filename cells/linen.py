"""flax.linen modules over the cell core: params in the 'params' collection, math in `cells.scan`.

    rnn = cells.linen.RNN(cells.LSTM(64))
    variables = rnn.init(key, xs_BxTxI)                   # {'params': {'w_ih', 'w_hh', 'b'}}
    ys, carry = rnn.apply(variables, xs_BxTxI, lengths=lengths_B)

    net = cells.linen.Stack(cells.Stack.uniform(cells.GRU(64), 2, dropout=0.3))
    variables = net.init(key, xs_BxTxI)                   # {'params': {'layer_0': ..., 'layer_1'}}
    ys, carries = net.apply(variables, xs_BxTxI, deterministic=False, rngs={'dropout': key})

The param trees are the functional dicts themselves (`variables['params']` is what
`cells.scan` takes; layer k of a stack is `variables['params'][f'layer_{k}']`), so params move
freely between the functional API, these modules and `cells.interop`. Initialisation is the
cell's own `init` (same distributions: glorot input weights, orthogonal recurrent blocks,
forget bias). `RNN(cell, learn_initial_carry=True)` adds learned initial states 'h0' (and
'c0'); `resets` restarts episodes inside a sequence; one time step at a time:

    carry, h = rnn.apply(variables, carry, x_BxI, method="step")
"""

from __future__ import annotations

from typing import Any

import flax.linen as nn

from cells import base, layers
from cells.sequence import scan as run_scan


def _check_xs(xs) -> None:
    if getattr(xs, "ndim", None) != 3:
        shape = getattr(xs, "shape", xs)
        raise ValueError(f"xs must have rank 3 [batch, time, features], got shape {shape}.")


class RNN(nn.Module):
    """One recurrent layer: `cell` run over [B, T, I] inputs by `cells.scan`.

    Attributes:
      cell: the cell (a frozen dataclass, so the module stays hashable).
    """

    cell: base.Cell
    learn_initial_carry: bool = False

    def step(self, carry, x):
        """One time step with the bound params: (carry, h [B, H]). Use with method='step'."""
        own, _ = layers.split_initial_carry(self.cell, dict(self.variables["params"]))
        return self.cell.step(own, carry, x)

    @nn.compact
    def __call__(
        self,
        xs,
        *,
        carry=None,
        lengths=None,
        resets=None,
        reverse=False,
        return_trace=False,
        **scan_kwargs,
    ) -> tuple[Any, ...]:
        """`cells.scan(self.cell, params, xs, ...)`: (ys [B, T, H], carry[, trace])."""
        if not isinstance(self.cell, base.Cell):
            raise ValueError(f"cells.linen.RNN: cell must be a cells cell, got {self.cell!r}.")
        _check_xs(xs)
        input_size = xs.shape[-1]
        # One draw of the cell's own init, handed out name by name. (Outside init, flax only
        # evaluates the init function abstractly, to check the stored shapes.)
        full = self.cell.init(self.make_rng("params"), input_size) if self.is_initializing() else {}
        params = {
            name: self.param(name, lambda key, n=name: (full or self.cell.init(key, input_size))[n])
            for name in sorted(self.cell.param_shapes(input_size))
        }
        learned = None
        if self.learn_initial_carry:
            zeros = layers.initial_carry_params(self.cell)
            carry0 = {n: self.param(n, lambda key, n=n: zeros[n]) for n in sorted(zeros)}
            _, learned = layers.split_initial_carry(self.cell, carry0)
        return run_scan(
            self.cell,
            params,
            xs,
            carry=carry,
            initial_carry=learned,
            lengths=lengths,
            resets=resets,
            reverse=reverse,
            return_trace=return_trace,
            **scan_kwargs,
        )


class Stack(nn.Module):
    """A `cells.Stack` (layers, dropout between layers, bidirectional layers) as a linen module.

    Attributes:
      stack: the `cells.Stack`.
    """

    stack: layers.Stack

    def step(self, carry, x):
        """One time step of every layer with the bound params (no dropout); method='step'."""
        params = self.variables["params"]
        layer_params = tuple(params[f"layer_{k}"] for k in range(len(self.stack.layers)))
        return self.stack.step(layer_params, carry, x)

    @nn.compact
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
          carry: per-layer carries; default zeros.
          lengths: optional [B] valid lengths.
          resets: optional bool [B, T]: restart every layer's carry before step t.
          deterministic: True (default) disables dropout; False draws from the 'dropout' rng.
          **scan_kwargs: further `cells.scan` options (unroll, remat, backward).
        """
        if not isinstance(self.stack, layers.Stack):
            raise ValueError(f"cells.linen.Stack: stack must be a cells.Stack, got {self.stack!r}.")
        _check_xs(xs)
        input_size = xs.shape[-1]
        full = (
            self.stack.init(self.make_rng("params"), input_size) if self.is_initializing() else ()
        )
        params = tuple(
            self.param(f"layer_{k}", lambda key, k=k: (full or self.stack.init(key, input_size))[k])
            for k in range(len(self.stack.layers))
        )
        use_dropout = not deterministic and self.stack.dropout > 0.0
        rng = self.make_rng("dropout") if use_dropout else None
        return self.stack(
            params, xs, carry=carry, lengths=lengths, resets=resets, rng=rng, **scan_kwargs
        )
