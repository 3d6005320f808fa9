"""Minimal gated unit (Zhou, Wu, Zhang & Zhou 2016), in flax.linen's MGUCell form.

One gate f does the work of the GRU's reset and update gates. Gate order f, n:

    f_t = sigmoid(x_t W_if + b_f + h_{t-1} W_hf)
    n_t = tanh   (x_t W_in + b_n + f_t * (h_{t-1} W_hn + b_hn))
    h_t = (1 - f_t) * n_t + f_t * h_{t-1}

This is flax.linen.MGUCell (reset_gate=True): f keeps the old state, and it scales the
recurrent product after the matmul, so one [H, 2H] GEMM per step serves both blocks (the
GRU's reset-after layout). Zhou et al. write the reset inside the product, (f_t * h_{t-1}) W_hn,
and let f_t weight the candidate instead of the old state; the two forms have the same gate
count and parameters but are not the same function. `cells.interop.from_flax` / `to_flax`
convert losslessly to and from flax's MGUCell.

Parameters: w_ih [I, 2H] = [W_if | W_in], w_hh [H, 2H] = [W_hf | W_hn], b [2H] = [b_f | b_n],
b_hn [H]. The forget bias starts at `forget_bias` when given, else at the init_scheme's: 1.0
under 'cells' (the default) and 'flax' (MGUCell's forget_bias_init), so h is kept early on;
0.0 under 'keras' (no MGU there: its zero-bias rule); drawn under 'torch' (as a torch-style
GRU: b_f = b_ih + b_hh, b_n and b_hn one U(+-1/sqrt(H)) draw each). See `cells.initializers`.
There is no hand-written backward: backward='fused' runs autodiff (with a warning).
"""

from __future__ import annotations

import dataclasses
from typing import ClassVar

import jax
import jax.numpy as jnp

from cells import base, registry


@registry.register("mgu")
@dataclasses.dataclass(frozen=True)
class MGU(base.Cell):
    """Minimal gated unit. See the module docstring.

    Attributes:
      forget_bias: initial value of the gate bias b_f; None (default): the init_scheme's
        (1.0 'cells' and 'flax', 0.0 'keras', drawn 'torch').
    """

    forget_bias: float | None = None

    num_gates: ClassVar[int] = 2
    gate_names: ClassVar[tuple[str, ...]] = ("f", "n")
    bias_terms: ClassVar[tuple[int, ...]] = (2, 1)  # torch-style: b_ih + b_hh for f, b_ih[n]
    # b_f under each init_scheme when forget_bias is None (None: drawn).
    scheme_forget_bias: ClassVar[dict[str, float | None]] = {
        "cells": 1.0,
        "flax": 1.0,
        "keras": 0.0,
        "torch": None,
    }

    def __post_init__(self):
        super().__post_init__()
        base.check_forget_bias(self)

    def _init_bias(self, key):
        b = super()._init_bias(key)
        b_f = self.forget_bias
        if b_f is None:
            b_f = self.scheme_forget_bias[self.init_scheme]
        return b if b_f is None else b.at[: self.hidden_size].set(b_f)

    def _extra_params(self, key):
        return {"b_hn": self._draw_bias(key, (1,))}

    def fused_step(self, params, carry, xp_Bx2H):
        (h_prev,) = carry
        x_f, x_n = jnp.split(xp_Bx2H.astype(h_prev.dtype), 2, axis=-1)
        h_f, h_n = jnp.split(self.recurrent(params, h_prev).astype(h_prev.dtype), 2, axis=-1)
        f = jax.nn.sigmoid(x_f + h_f)
        n = jnp.tanh(x_n + f * base.add_bias(h_n, params["b_hn"]))
        h = (1.0 - f) * n + f * h_prev
        return base.RNNState(h), h, {"f": f, "n": n}

    def reference_step(self, params, carry, x_BxI):
        (h_prev,) = carry
        h_in = base.recurrent_input(params, h_prev)  # recurrent_dropout: the products only
        w_f, w_n = self.split_gates(params, "w_ih")
        u_f, u_n = self.split_gates(params, "w_hh")
        b_f, b_n = self.split_gates(params, "b")
        f = jax.nn.sigmoid(base.add_bias(x_BxI @ w_f, b_f) + h_in @ u_f)
        n = jnp.tanh(
            base.add_bias(x_BxI @ w_n, b_n) + f * base.add_bias(h_in @ u_n, params["b_hn"])
        )
        h = (1.0 - f) * n + f * h_prev
        return base.RNNState(h), h
