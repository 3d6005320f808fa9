"""minGRU and minLSTM (Feng, Tung, Ahmed, Bengio & Hajimirsadeghi 2024, "Were RNNs All We
Needed?"): the GRU and LSTM with the hidden state removed from the gates and the candidate, so
the recurrence is linear in h and the whole sequence can run as one parallel scan.

    minGRU:   z_t  = sigmoid(x_t W_z + b_z)          update gate
              h~_t = g(x_t W_h + b_h)                candidate
              h_t  = (1 - z_t) * h_{t-1} + z_t * h~_t

    minLSTM:  f_t = sigmoid(x_t W_f + b_f),  i_t = sigmoid(x_t W_i + b_i),  h~_t = g(x_t W_h + b_h)
              f'_t = f_t / (f_t + i_t),   i'_t = i_t / (f_t + i_t)      (normalised gates)
              h_t  = f'_t * h_{t-1} + i'_t * h~_t

g(x) = x + 0.5 for x >= 0 and sigmoid(x) otherwise: a positive, continuous activation (the
authors' code applies it in both the sequential and the parallel mode, so hidden states stay
positive, which their log-space scan needs; it is kept here for the same function in every
mode, although the linear-space scans of `cells.linear_scan` would not need it).

The minLSTM's normalised gates are computed as f'_t = sigmoid(log f_t - log i_t) and
i'_t = 1 - f'_t with log f_t = log_sigmoid(.) -- the same values as f / (f + i), without the
0 / 0 that the plain quotient gives when both gates underflow (pre-activations near -1e3).

Parameters: minGRU w_ih [I, 2H] = [W_z | W_h], b [2H]; minLSTM w_ih [I, 3H] = [W_f | W_i |
W_h], b [3H]; no recurrent matrix. Initialisation by the init_scheme (`cells.initializers`):
'cells' Glorot-uniform w_ih and zero b; 'torch' nn.Linear's U(+-1/sqrt(I)) for both, as the
authors' nn.Linear layers.

`cells.scan` computes every gate of every step at once and then solves the linear recurrence
(`cells.linear_scan`): mode='parallel' with an associative scan (O(log T) depth), 'hoisted'
with an elementwise loop (the least work; 'auto' picks it on CPU, where it measured faster);
mode='sequential' runs the same function step by step in `lax.scan` (what `cell.step` does for
generation).
"""

from __future__ import annotations

import dataclasses
from typing import ClassVar

import jax
import jax.numpy as jnp

from cells import linear_scan, registry


def g(x):
    """The minGRU/minLSTM candidate activation: x + 0.5 for x >= 0, sigmoid(x) below."""
    return jnp.where(x >= 0, x + 0.5, jax.nn.sigmoid(x))


@registry.register("mingru")
@dataclasses.dataclass(frozen=True)
class MinGRU(linear_scan.LinearRecurrentCell):
    """minGRU (Feng et al. 2024). See the module docstring. Gate order z, h~."""

    num_gates: ClassVar[int] = 2
    gate_names: ClassVar[tuple[str, ...]] = ("z", "h_tilde")

    def coefficients(self, params, xp):
        pre_z, pre_h = jnp.split(xp, 2, axis=-1)
        z = jax.nn.sigmoid(pre_z)
        h_tilde = g(pre_h)
        return 1.0 - z, z * h_tilde, {"z": z, "h_tilde": h_tilde}

    def reference_step(self, params, carry, x_BxI):
        (h_prev,) = carry
        w_z, w_h = self.split_gates(params, "w_ih")
        b_z, b_h = self.split_gates(params, "b")
        z = jax.nn.sigmoid(x_BxI @ w_z + b_z[None])
        h_tilde = g(x_BxI @ w_h + b_h[None])
        h = (1.0 - z) * h_prev + z * h_tilde
        return type(carry)(h), h


@registry.register("minlstm")
@dataclasses.dataclass(frozen=True)
class MinLSTM(linear_scan.LinearRecurrentCell):
    """minLSTM (Feng et al. 2024). See the module docstring. Gate order f, i, h~."""

    num_gates: ClassVar[int] = 3
    gate_names: ClassVar[tuple[str, ...]] = ("f", "i", "h_tilde")

    def coefficients(self, params, xp):
        pre_f, pre_i, pre_h = jnp.split(xp, 3, axis=-1)
        # f' = f / (f + i) = sigmoid(log f - log i): finite when both gates underflow.
        f_norm = jax.nn.sigmoid(jax.nn.log_sigmoid(pre_f) - jax.nn.log_sigmoid(pre_i))
        i_norm = 1.0 - f_norm
        h_tilde = g(pre_h)
        return f_norm, i_norm * h_tilde, {"f": f_norm, "i": i_norm, "h_tilde": h_tilde}

    def reference_step(self, params, carry, x_BxI):
        (h_prev,) = carry
        w_f, w_i, w_h = self.split_gates(params, "w_ih")
        b_f, b_i, b_h = self.split_gates(params, "b")
        f = jax.nn.sigmoid(x_BxI @ w_f + b_f[None])
        i = jax.nn.sigmoid(x_BxI @ w_i + b_i[None])
        h_tilde = g(x_BxI @ w_h + b_h[None])
        h = f / (f + i) * h_prev + i / (f + i) * h_tilde
        return type(carry)(h), h
