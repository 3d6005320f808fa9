"""Layers written once against the cell contract: a multi-layer stack and a bidirectional wrapper.

Both are frozen dataclasses with the same functional shape as a cell's sequence path:

    stack = cells.Stack((cells.LSTM(256), cells.LSTM(256)), dropout=0.5)
    params = stack.init(key, input_size=128)                 # a tuple, one entry per layer
    ys, carries = stack(params, xs, lengths=lengths, rng=key)  # rng=None: no dropout

Dropout (inverted, rate `dropout`) is applied between layers only, i.e. on the non-recurrent
connections (Zaremba et al. 2014); the recurrent connections are never dropped. Put dropout on
the stack's input or output in the model around it, where it belongs to the task.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import jax
import jax.numpy as jnp

from cells import base
from cells import sequence as sequence_lib

_MERGES = ("concat", "sum")


def dropout(rng, rate: float, x):
    """Inverted dropout: zero each element with probability `rate`, scale the rest by 1/(1-rate).

    With rng None or rate 0 it is the identity (evaluation).
    """
    if rng is None or rate == 0.0:
        return x
    keep = jax.random.bernoulli(rng, 1.0 - rate, x.shape)
    return jnp.where(keep, x / (1.0 - rate), 0.0).astype(x.dtype)


@dataclasses.dataclass(frozen=True)
class Bidirectional:
    """Runs a forward and a backward cell over the same inputs and merges their outputs.

    The backward cell runs right to left over each sequence's valid part (`lengths`), so a
    right-padded batch gives the same outputs as each sequence run alone. The carry is the
    pair (forward carry, backward carry).

    Attributes:
      forward: the left-to-right cell.
      backward: the right-to-left cell (often the same hyper-parameters as `forward`).
      merge: 'concat' (outputs [B, T, Hf + Hb]) or 'sum' (needs Hf == Hb).
    """

    forward: base.Cell
    backward: base.Cell
    merge: str = "concat"

    def __post_init__(self):
        if self.merge not in _MERGES:
            raise ValueError(f"Bidirectional: merge must be one of {_MERGES}, got {self.merge!r}.")
        if self.merge == "sum" and self.forward.hidden_size != self.backward.hidden_size:
            raise ValueError(
                "Bidirectional: merge='sum' needs equal hidden sizes, got "
                f"{self.forward.hidden_size} and {self.backward.hidden_size}."
            )

    @property
    def output_size(self) -> int:
        if self.merge == "sum":
            return self.forward.hidden_size
        return self.forward.hidden_size + self.backward.hidden_size

    def init(self, key, input_size: int):
        k_f, k_b = jax.random.split(key)
        return {
            "forward": self.forward.init(k_f, input_size),
            "backward": self.backward.init(k_b, input_size),
        }

    def initial_carry(self, batch_size: int):
        return (self.forward.initial_carry(batch_size), self.backward.initial_carry(batch_size))

    def __call__(self, params, xs, *, carry=None, lengths=None, **scan_kwargs):
        carry_f, carry_b = (None, None) if carry is None else carry
        ys_f, carry_f = sequence_lib.scan(
            self.forward, params["forward"], xs, carry=carry_f, lengths=lengths, **scan_kwargs
        )
        ys_b, carry_b = sequence_lib.scan(
            self.backward,
            params["backward"],
            xs,
            carry=carry_b,
            lengths=lengths,
            reverse=True,
            **scan_kwargs,
        )
        ys = ys_f + ys_b if self.merge == "sum" else jnp.concatenate([ys_f, ys_b], axis=-1)
        return ys, (carry_f, carry_b)


Layer = Any  # a base.Cell or a Bidirectional


def _run_layer(layer: Layer, params, xs, carry, lengths, scan_kwargs):
    if isinstance(layer, Bidirectional):
        return layer(params, xs, carry=carry, lengths=lengths, **scan_kwargs)
    return sequence_lib.scan(layer, params, xs, carry=carry, lengths=lengths, **scan_kwargs)


def _output_size(layer: Layer) -> int:
    return layer.output_size if isinstance(layer, Bidirectional) else layer.hidden_size


@dataclasses.dataclass(frozen=True)
class Stack:
    """A multi-layer recurrent network: layer k's outputs are layer k+1's inputs.

    Attributes:
      layers: a tuple of cells (or `Bidirectional` wrappers), bottom first.
      dropout: rate of the dropout between consecutive layers, in [0, 1).
    """

    layers: tuple
    dropout: float = 0.0

    def __post_init__(self):
        if not isinstance(self.layers, tuple) or not self.layers:
            raise ValueError(
                f"Stack: layers must be a non-empty tuple of cells, got {self.layers!r}."
            )
        for layer in self.layers:
            if not isinstance(layer, (base.Cell, Bidirectional)):
                raise ValueError(
                    f"Stack: every layer must be a cell or Bidirectional, got {layer!r}."
                )
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"Stack: dropout must lie in [0, 1), got {self.dropout!r}.")

    @classmethod
    def uniform(cls, cell: base.Cell, num_layers: int, dropout: float = 0.0) -> Stack:
        """`num_layers` copies of `cell`."""
        if isinstance(num_layers, bool) or not isinstance(num_layers, int) or num_layers < 1:
            raise ValueError(f"Stack: num_layers must be a positive int, got {num_layers!r}.")
        return cls(layers=(cell,) * num_layers, dropout=dropout)

    @property
    def output_size(self) -> int:
        return _output_size(self.layers[-1])

    def init(self, key, input_size: int) -> tuple:
        params = []
        for layer, k in zip(self.layers, jax.random.split(key, len(self.layers)), strict=True):
            params.append(layer.init(k, input_size))
            input_size = _output_size(layer)
        return tuple(params)

    def initial_carry(self, batch_size: int) -> tuple:
        return tuple(layer.initial_carry(batch_size) for layer in self.layers)

    def __call__(self, params, xs, *, carry=None, lengths=None, rng=None, **scan_kwargs):
        """Runs all layers. Returns (ys of the top layer [B, T, H_top], tuple of final carries).

        Args:
          params: `self.init(...)`'s tuple.
          xs: inputs [B, T, I].
          carry: a tuple of per-layer carries; default all zeros.
          lengths: optional [B] valid lengths (see `cells.scan`).
          rng: PRNG key for the dropout between layers; None means no dropout (evaluation).
          **scan_kwargs: unroll / remat, passed to `cells.scan`.
        """
        if len(params) != len(self.layers):
            raise ValueError(
                f"Stack: params has {len(params)} layers, the stack {len(self.layers)}."
            )
        # None per layer lets `cells.scan` pick the carry dtype (float64 under x64).
        carries = (None,) * len(self.layers) if carry is None else carry
        new_carries = []
        for k, (layer, p, c) in enumerate(zip(self.layers, params, carries, strict=True)):
            if k > 0:
                xs = dropout(None if rng is None else jax.random.fold_in(rng, k), self.dropout, xs)
            xs, c = _run_layer(layer, p, xs, c, lengths, scan_kwargs)
            new_carries.append(c)
        return xs, tuple(new_carries)
