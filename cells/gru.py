"""Gated recurrent unit (Cho et al. 2014), in both published variants. Gate order r, z, n.

reset_after=True (cuDNN, PyTorch nn.GRU, Keras default; flax GRUCell): the reset gate scales
the recurrent product, so one [H, 3H] GEMM per step serves all gates:

    r_t = sigmoid(x_t W_ir + b_r + h_{t-1} W_hr)
    z_t = sigmoid(x_t W_iz + b_z + h_{t-1} W_hz)
    n_t = tanh   (x_t W_in + b_n + r_t * (h_{t-1} W_hn + b_hn))
    h_t = (1 - z_t) * n_t + z_t * h_{t-1}

reset_after=False (Cho et al. 2014, eq. 5-8): the reset gate scales h before the product,
so a step needs a second GEMM after r is known:

    n_t = tanh(x_t W_in + b_n + (r_t * h_{t-1}) W_hn)

Parameters: w_ih [I, 3H] = [W_ir | W_iz | W_in], w_hh [H, 3H] likewise, b [3H] = [b_r | b_z |
b_n], and for reset_after=True also b_hn [H], the recurrent bias inside the reset product
(the recurrent r/z biases of PyTorch are folded into b; `cells.interop` does the bookkeeping).
"""

from __future__ import annotations

import dataclasses
from typing import ClassVar

import jax
import jax.numpy as jnp

from cells import base, registry
from cells.kernels import step_grads


@registry.register("gru")
@dataclasses.dataclass(frozen=True)
class GRU(base.Cell):
    """GRU cell. See the module docstring for the equations of both variants.

    Attributes:
      reset_after: True applies the reset gate after the recurrent matmul (cuDNN/PyTorch/Keras
        layout, one recurrent GEMM per step); False is Cho et al.'s original formulation.
    """

    reset_after: bool = True

    num_gates: ClassVar[int] = 3
    gate_names: ClassVar[tuple[str, ...]] = ("r", "z", "n")
    fused_backward: ClassVar[type | None] = step_grads.GRUGrad

    def __post_init__(self):
        super().__post_init__()
        if not isinstance(self.reset_after, bool):
            raise ValueError(f"GRU: reset_after must be True or False, got {self.reset_after!r}.")

    def _extra_params(self):
        if self.reset_after:
            return {"b_hn": jnp.zeros((self.hidden_size,), self.param_dtype)}
        return {}

    def fused_step(self, params, carry, xp_Bx3H):
        (h_prev,) = carry
        xr, xz, xn = jnp.split(xp_Bx3H.astype(h_prev.dtype), 3, axis=-1)
        if self.reset_after:
            hr, hz, hn = jnp.split(self.recurrent(params, h_prev).astype(h_prev.dtype), 3, -1)
            r = jax.nn.sigmoid(xr + hr)
            z = jax.nn.sigmoid(xz + hz)
            n = jnp.tanh(xn + r * base.add_bias(hn, params["b_hn"]))
        else:
            h = self.hidden_size
            w_hh = params["w_hh"]
            hrz = base.matmul(h_prev, w_hh[:, : 2 * h], self.compute_dtype).astype(h_prev.dtype)
            hr, hz = jnp.split(hrz, 2, axis=-1)
            r = jax.nn.sigmoid(xr + hr)
            z = jax.nn.sigmoid(xz + hz)
            hn = base.matmul(r * h_prev, w_hh[:, 2 * h :], self.compute_dtype)
            n = jnp.tanh(xn + hn.astype(h_prev.dtype))
        h = (1.0 - z) * n + z * h_prev
        return base.RNNState(h), h, {"r": r, "z": z, "n": n}

    def reference_step(self, params, carry, x_BxI):
        (h_prev,) = carry
        w_r, w_z, w_n = self.split_gates(params, "w_ih")
        u_r, u_z, u_n = self.split_gates(params, "w_hh")
        b_r, b_z, b_n = self.split_gates(params, "b")
        r = jax.nn.sigmoid(base.add_bias(x_BxI @ w_r, b_r) + h_prev @ u_r)
        z = jax.nn.sigmoid(base.add_bias(x_BxI @ w_z, b_z) + h_prev @ u_z)
        if self.reset_after:
            n = jnp.tanh(
                base.add_bias(x_BxI @ w_n, b_n) + r * base.add_bias(h_prev @ u_n, params["b_hn"])
            )
        else:
            n = jnp.tanh(base.add_bias(x_BxI @ w_n, b_n) + (r * h_prev) @ u_n)
        h = (1.0 - z) * n + z * h_prev
        return base.RNNState(h), h
