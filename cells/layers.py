"""Layers written once against the cell contract: a multi-layer stack and a bidirectional wrapper.

Both are frozen dataclasses with the same functional shape as a cell's sequence path:

    stack = cells.Stack((cells.LSTM(256), cells.LSTM(256)), dropout=0.5)
    params = stack.init(key, input_size=128)                 # a tuple, one entry per layer
    ys, carries = stack(params, xs, lengths=lengths, rng=key)  # rng=None: no dropout

Dropout (inverted, rate `dropout`) is applied between layers only, i.e. on the non-recurrent
connections (Zaremba et al. 2014); the recurrent connections are never dropped. Put dropout on
the stack's input or output in the model around it, where it belongs to the task.

`Stack(..., learn_initial_carry=True)` adds a learned initial state to every layer: params
'h0' (and 'c0' for the LSTM) [H] beside the cell's own, broadcast over the batch, used when no
carry is passed and wherever `resets` restarts an episode. `Stack.step` runs one time step of
every layer, for autoregressive generation.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import jax
import jax.numpy as jnp

from cells import base, regularization
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
        if self.merge == "sum" and self.forward.output_size != self.backward.output_size:
            raise ValueError(
                "Bidirectional: merge='sum' needs equal output sizes, got "
                f"{self.forward.output_size} and {self.backward.output_size}."
            )

    @property
    def output_size(self) -> int:
        if self.merge == "sum":
            return self.forward.output_size
        return self.forward.output_size + self.backward.output_size

    def init(self, key, input_size: int):
        k_f, k_b = jax.random.split(key)
        return {
            "forward": self.forward.init(k_f, input_size),
            "backward": self.backward.init(k_b, input_size),
        }

    def initial_carry(self, batch_size: int):
        return (self.forward.initial_carry(batch_size), self.backward.initial_carry(batch_size))

    def __call__(
        self,
        params,
        xs,
        *,
        carry=None,
        initial_carry=None,
        lengths=None,
        resets=None,
        **scan_kwargs,
    ):
        carry_f, carry_b = (None, None) if carry is None else carry
        init_f, init_b = (None, None) if initial_carry is None else initial_carry
        rng = scan_kwargs.pop("rng", None)  # recurrent dropout / zoneout: one key per direction
        kwargs = dict(lengths=lengths, resets=resets, **scan_kwargs)
        ys_f, carry_f = sequence_lib.scan(
            self.forward,
            params["forward"],
            xs,
            carry=carry_f,
            initial_carry=init_f,
            rng=None if rng is None else jax.random.fold_in(rng, 0),
            **kwargs,
        )
        ys_b, carry_b = sequence_lib.scan(
            self.backward,
            params["backward"],
            xs,
            carry=carry_b,
            initial_carry=init_b,
            reverse=True,
            rng=None if rng is None else jax.random.fold_in(rng, 1),
            **kwargs,
        )
        ys = ys_f + ys_b if self.merge == "sum" else jnp.concatenate([ys_f, ys_b], axis=-1)
        return ys, (carry_f, carry_b)


Layer = Any  # a base.Cell or a Bidirectional
# `cells.scan` options that draw from an rng: a stack gives each layer its own key for them.
_RECURRENT_OPTIONS = {"recurrent_dropout", "zoneout"}


def draws_rng(dropout: float, scan_kwargs: dict) -> bool:
    """Whether a stack (or one layer) run with these settings needs an rng in training: the
    between-layer `dropout`, or scan_kwargs' recurrent_dropout or zoneout (p or (p_h, p_c)),
    is positive. Without one all three run their evaluation form (identity, identity, the
    zoneout expectation), so the flax modules (`cells.linen`, `cells.nnx`) draw a key by it.

        draws_rng(0.0, {"zoneout": (0.0, 0.1)})     # True
        draws_rng(0.0, {"unroll": 2})               # False
    """
    zoneout = scan_kwargs.get("zoneout", 0.0)
    rates = zoneout if isinstance(zoneout, tuple | list) else (zoneout,)
    return dropout > 0.0 or scan_kwargs.get("recurrent_dropout", 0.0) > 0.0 or max(rates) > 0.0


def layer_scan_kwargs(scan_kwargs: dict, rng, layer: int) -> dict:
    """`scan_kwargs` for layer `layer` of a stack: with recurrent_dropout / zoneout among them
    and an rng, that layer's own key (Stack and ResidualStack alike)."""
    if rng is None or not _RECURRENT_OPTIONS & set(scan_kwargs):
        return scan_kwargs
    return {**scan_kwargs, "rng": jax.random.fold_in(rng, 10_000 + layer)}


def _run_layer(layer: Layer, params, xs, carry, init, lengths, resets, scan_kwargs):
    kwargs = dict(carry=carry, initial_carry=init, lengths=lengths, resets=resets, **scan_kwargs)
    if isinstance(layer, Bidirectional):
        return layer(params, xs, **kwargs)
    return sequence_lib.scan(layer, params, xs, **kwargs)


def carry_param_names(cell: base.Cell) -> tuple[str, ...]:
    """'h0' (and 'c0'): the learned initial carry's parameter names, one per carry field."""
    return tuple(f"{field}0" for field in cell.carry_type._fields)


def initial_carry_params(cell: base.Cell, dtype=None) -> dict:
    """Zero learned initial carries {'h0': [H_out], ('c0': [H])} for `cell`, in the dtype its
    carry runs in (float32; float64 for a cell with float64 params)."""
    zeros = cell.initial_carry(1, dtype)
    return {n: z[0] for n, z in zip(carry_param_names(cell), zeros, strict=True)}


def split_initial_carry(cell: base.Cell, params):
    """(the cell's own params, the learned initial carry as the cell's carry type of [H]).

    The carry is None when `params` holds no learned initial carry.
    """
    names = carry_param_names(cell)
    if not all(n in params for n in names):
        return params, None
    own = {k: v for k, v in params.items() if k not in names}
    return own, cell.carry_type(*(params[n] for n in names))


def start_carry(cell: base.Cell, params, batch_size: int):
    """The carry a sequence of `cell` starts from: the learned one in `params` ('h0', 'c0')
    broadcast to [batch_size, H], or zeros in the params' carry dtype when they hold none."""
    _, learned = split_initial_carry(cell, params)
    if learned is None:
        return cell.initial_carry(batch_size, base.carry_dtype(params))
    return type(learned)(*(jnp.broadcast_to(a, (batch_size, a.shape[-1])) for a in learned))


@dataclasses.dataclass(frozen=True)
class Stack:
    """A multi-layer recurrent network: layer k's outputs are layer k+1's inputs.

    Attributes:
      layers: a tuple of cells (or `Bidirectional` wrappers), bottom first.
      dropout: rate of the dropout between consecutive layers, in [0, 1).
      learn_initial_carry: give every cell a learned initial carry ('h0', 'c0' params [H],
        zeros at init) used when no carry is passed and at every reset.
      locked_dropout: draw the between-layer dropout mask once per sequence and feature, the
        same at every step (variational dropout, Gal & Ghahramani 2016;
        `cells.regularization.locked_dropout`) instead of per element and step.
    """

    layers: tuple
    dropout: float = 0.0
    learn_initial_carry: bool = False
    locked_dropout: bool = False

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
        if not isinstance(self.locked_dropout, bool):
            raise ValueError(
                f"Stack: locked_dropout must be True or False, got {self.locked_dropout!r}."
            )
        if not isinstance(self.learn_initial_carry, bool):
            raise ValueError(
                "Stack: learn_initial_carry must be True or False, got "
                f"{self.learn_initial_carry!r}."
            )

    @classmethod
    def uniform(
        cls,
        cell: base.Cell,
        num_layers: int,
        dropout: float = 0.0,
        learn_initial_carry: bool = False,
        locked_dropout: bool = False,
    ) -> Stack:
        """`num_layers` copies of `cell`."""
        if isinstance(num_layers, bool) or not isinstance(num_layers, int) or num_layers < 1:
            raise ValueError(f"Stack: num_layers must be a positive int, got {num_layers!r}.")
        return cls((cell,) * num_layers, dropout, learn_initial_carry, locked_dropout)

    def _with_carry_params(self, layer: Layer, params):
        """A layer's params with zero learned initial carries added (learn_initial_carry)."""

        def add(cell, p):
            return {**p, **initial_carry_params(cell)}

        if isinstance(layer, Bidirectional):
            return {
                "forward": add(layer.forward, params["forward"]),
                "backward": add(layer.backward, params["backward"]),
            }
        return add(layer, params)

    def _split_layer(self, layer: Layer, params):
        """(the layer's cell params, its learned initial carry or None)."""
        if not self.learn_initial_carry:
            return params, None
        if isinstance(layer, Bidirectional):
            own_f, c0_f = split_initial_carry(layer.forward, params["forward"])
            own_b, c0_b = split_initial_carry(layer.backward, params["backward"])
            return {"forward": own_f, "backward": own_b}, (c0_f, c0_b)
        return split_initial_carry(layer, params)

    @property
    def output_size(self) -> int:
        return self.layers[-1].output_size

    def init(self, key, input_size: int) -> tuple:
        params = []
        for layer, k in zip(self.layers, jax.random.split(key, len(self.layers)), strict=True):
            p = layer.init(k, input_size)
            params.append(self._with_carry_params(layer, p) if self.learn_initial_carry else p)
            input_size = layer.output_size
        return tuple(params)

    def initial_carry(self, batch_size: int, params=None) -> tuple:
        """The per-layer carries a sequence starts from (what `__call__` starts from when no
        carry is passed, and the carry `step` takes first).

        With learn_initial_carry=True that is the learned h0 (and c0) of every layer, broadcast
        to [batch_size, H] in the params' dtype, so `params` is required; otherwise zeros
        (float32, or the dtype of `params` when they are wider, e.g. float64).
        """
        if self.learn_initial_carry and params is None:
            raise ValueError(
                "Stack(learn_initial_carry=True).initial_carry: pass the stack's params "
                "(stack.initial_carry(batch_size, params)): the initial carry is learned."
            )
        if params is not None:
            self._check_carries(params, None)
        carries = []
        for k, layer in enumerate(self.layers):
            layer_params = None if params is None else params[k]
            carries.append(self._layer_initial_carry(layer, layer_params, batch_size))
        return tuple(carries)

    def _layer_initial_carry(self, layer: Layer, params, batch_size: int):
        if isinstance(layer, Bidirectional):
            directions = (layer.forward, layer.backward), ("forward", "backward")
            return tuple(
                self._layer_initial_carry(
                    cell, None if params is None else params[name], batch_size
                )
                for cell, name in zip(*directions, strict=True)
            )
        if params is None:
            return layer.initial_carry(batch_size)
        return start_carry(layer, params, batch_size)

    def _check_carries(self, params, carry, what: str = "carry") -> None:
        if len(params) != len(self.layers):
            raise ValueError(
                f"Stack: params has {len(params)} layers, the stack {len(self.layers)}."
            )
        if carry is not None and (
            not isinstance(carry, tuple | list) or len(carry) != len(self.layers)
        ):
            raise ValueError(
                f"Stack: {what} must be a tuple of {len(self.layers)} per-layer carries "
                f"(stack.initial_carry(batch_size)), got {type(carry).__name__} of "
                f"{len(carry) if isinstance(carry, tuple | list) else 'one'}."
            )

    def step(self, params, carry, x, *, rng=None, recurrent_dropout=0.0, zoneout=0.0, t=0):
        """One time step of every layer: x [B, I] -> (tuple of carries, top output [B, H_top]).

        For autoregressive generation: feed each step's output (or a sample from it) back in.
        `carry` is a tuple of per-layer carries: `initial_carry(B, params)` (the learned ones
        with learn_initial_carry) or the carries a call of the stack returned. Dropout between
        layers with `rng` as in `__call__`; recurrent_dropout and zoneout as `cells.scan`
        applies them at its step t (`cells.Cell.step`), each layer with the key `__call__`
        gives it: without rng (evaluation) zoneout's expectation, so a model evaluated with
        zoneout generates with the same function. Bidirectional layers cannot step (their
        backward direction needs the future).
        """
        self._check_carries(params, carry)
        if carry is None:
            raise ValueError(
                "Stack.step: carry is required (stack.initial_carry(batch_size, params))."
            )
        recurrent = {"recurrent_dropout": recurrent_dropout, "zoneout": zoneout}
        new_carries = []
        for k, (layer, p, c) in enumerate(zip(self.layers, params, carry, strict=True)):
            if isinstance(layer, Bidirectional):
                raise ValueError("Stack.step: a Bidirectional layer cannot run one step at a time.")
            if k > 0:
                x = dropout(None if rng is None else jax.random.fold_in(rng, k), self.dropout, x)
            p, _ = self._split_layer(layer, p)
            c, x = layer.step(p, c, x, t=t, **layer_scan_kwargs(recurrent, rng, k))
            new_carries.append(c)
        return tuple(new_carries), x

    def __call__(
        self,
        params,
        xs,
        *,
        carry=None,
        initial_carry=None,
        lengths=None,
        resets=None,
        rng=None,
        **scan_kwargs,
    ):
        """Runs all layers. Returns (ys of the top layer [B, T, H_top], tuple of final carries).

        Args:
          params: `self.init(...)`'s tuple.
          xs: inputs [B, T, I].
          carry: a tuple of per-layer carries; default the initial carry.
          initial_carry: a tuple of per-layer carries every episode starts from (`resets`) and
            `carry` defaults to: zeros by default, the learned ones with learn_initial_carry
            (which then refuses another).
          lengths: optional [B] valid lengths (see `cells.scan`).
          resets: optional bool [B, T]: restart every layer's carry before step t (see
            `cells.scan`) from its initial carry.
          rng: PRNG key for the dropout between layers, and for `cells.scan`'s
            recurrent_dropout / zoneout when given in scan_kwargs (a key per layer); None means
            no dropout (evaluation).
          **scan_kwargs: unroll / remat / backward / recurrent_dropout / zoneout, passed to
            `cells.scan`.
        """
        self._check_carries(params, carry)
        self._check_carries(params, initial_carry, "initial_carry")
        if initial_carry is not None and self.learn_initial_carry:
            raise ValueError(
                "Stack: initial_carry= with learn_initial_carry=True: the initial carry is "
                "learned (params 'h0', 'c0'); pass carry= to start elsewhere."
            )
        # None per layer lets `cells.scan` pick the carry dtype (float64 under x64).
        carries = (None,) * len(self.layers) if carry is None else carry
        inits = (None,) * len(self.layers) if initial_carry is None else initial_carry
        new_carries = []
        for k, (layer, p, c, given) in enumerate(
            zip(self.layers, params, carries, inits, strict=True)
        ):
            if k > 0:
                key = None if rng is None else jax.random.fold_in(rng, k)
                if self.locked_dropout:
                    xs = regularization.locked_dropout(key, self.dropout, xs)
                else:
                    xs = dropout(key, self.dropout, xs)
            p, init = self._split_layer(layer, p)
            init = given if init is None else init
            kwargs = layer_scan_kwargs(scan_kwargs, rng, k)
            xs, c = _run_layer(layer, p, xs, c, init, lengths, resets, kwargs)
            new_carries.append(c)
        return xs, tuple(new_carries)
