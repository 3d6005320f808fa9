"""Long short-term memory (Hochreiter & Schmidhuber 1997; forget gate: Gers et al. 2000).

The gate order is PyTorch's, i, f, g, o, in every fused array:

    i_t = sigmoid(x_t W_ii + b_i + h_{t-1} W_hi)      input gate
    f_t = sigmoid(x_t W_if + b_f + h_{t-1} W_hf)      forget gate
    g_t = tanh   (x_t W_ig + b_g + h_{t-1} W_hg)      candidate cell
    o_t = sigmoid(x_t W_io + b_o + h_{t-1} W_ho)      output gate
    c_t = f_t * c_{t-1} + i_t * g_t                   memory cell
    h_t = o_t * tanh(c_t)                             hidden state

Parameters: w_ih [I, 4H] = [W_ii | W_if | W_ig | W_io], w_hh [H, 4H] likewise, and one bias
b [4H] = [b_i | b_f | b_g | b_o] (PyTorch's b_ih + b_hh; `cells.interop` splits it back).
The forget-gate bias starts at `forget_bias` (1.0 by default, Gers et al. 2000 / Jozefowicz
et al. 2015) so that memory is kept at the start of training.
"""

from __future__ import annotations

import dataclasses
from typing import ClassVar

import jax
import jax.numpy as jnp

from cells import base, registry
from cells.kernels import step_grads


@registry.register("lstm")
@dataclasses.dataclass(frozen=True)
class LSTM(base.Cell):
    """LSTM cell with forget gate. See the module docstring for the equations.

    Attributes:
      forget_bias: initial value of the forget-gate bias b_f (default 1.0; 0.0 as in Zaremba).
    """

    forget_bias: float = 1.0

    num_gates: ClassVar[int] = 4
    gate_names: ClassVar[tuple[str, ...]] = ("i", "f", "g", "o")
    carry_type: ClassVar[type] = base.LSTMState
    fused_backward: ClassVar[type | None] = step_grads.LSTMGrad

    def _init_bias(self):
        h = self.hidden_size
        b = jnp.zeros((4 * h,), self.param_dtype)
        return b.at[h : 2 * h].set(self.forget_bias)

    def fused_step(self, params, carry, xp_Bx4H):
        """One step: a single [B, H] x [H, 4H] GEMM, then elementwise gate math in float32."""
        h_BxH, c_BxH = carry
        gates_Bx4H = (xp_Bx4H + self.recurrent(params, h_BxH)).astype(c_BxH.dtype)
        i, f, g, o = jnp.split(gates_Bx4H, 4, axis=-1)
        i, f, g, o = jax.nn.sigmoid(i), jax.nn.sigmoid(f), jnp.tanh(g), jax.nn.sigmoid(o)
        c = f * c_BxH + i * g
        h = o * jnp.tanh(c)
        return base.LSTMState(h, c), h, {"i": i, "f": f, "g": g, "o": o, "c": c}

    def reference_step(self, params, carry, x_BxI):
        """The equations, one gate at a time, with separate input and recurrent products."""
        h_prev, c_prev = carry
        w_i, w_f, w_g, w_o = self.split_gates(params, "w_ih")
        u_i, u_f, u_g, u_o = self.split_gates(params, "w_hh")
        b_i, b_f, b_g, b_o = self.split_gates(params, "b")
        i = jax.nn.sigmoid(base.add_bias(x_BxI @ w_i, b_i) + h_prev @ u_i)
        f = jax.nn.sigmoid(base.add_bias(x_BxI @ w_f, b_f) + h_prev @ u_f)
        g = jnp.tanh(base.add_bias(x_BxI @ w_g, b_g) + h_prev @ u_g)
        o = jax.nn.sigmoid(base.add_bias(x_BxI @ w_o, b_o) + h_prev @ u_o)
        c = f * c_prev + i * g
        h = o * jnp.tanh(c)
        return base.LSTMState(h, c), h
