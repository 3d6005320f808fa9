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
Initialisation by the cell's init_scheme (`cells.initializers`): every scheme starts the
biases at 0 except 'torch' (b_r, b_z: a sum of two U(+-1/sqrt(H)) draws; b_n, b_hn: one each).

Options:

  layer_norm=True (Ba, Kiros & Hinton 2016; reset_after=True only): both products normalised
    over all three gate blocks together, the reset gate scaling the normalised candidate block:
        [a_r, a_z, a_n] = LN_x(x_t W_ih) + b,   [u_r, u_z, u_n] = LN_h(h_{t-1} W_hh)
        r_t = sigmoid(a_r + u_r),  z_t = sigmoid(a_z + u_z),  n_t = tanh(a_n + r_t * (u_n + b_hn))
    with ln_x_scale, ln_x_bias, ln_h_scale, ln_h_bias [3H] (scales 1, biases 0 at init; LN
    epsilon 1e-5). The hand-written backward does not cover it (backward='fused' runs autodiff).
  chrono_t_max=T > 2 (Tallec & Ollivier 2018): b_z ~ log(U[1, T - 1]) at init. z is the share
    of h_{t-1} kept (h_t = (1 - z) n + z h_{t-1}), so it plays the forget gate's role and takes
    the forget gate's positive sign.
  num_heads=NH > 1 (reset_after=True only; FlashRNN's multi-head GRU): W_hh block-diagonal
    over NH heads of D = H / NH units, stored w_hh [NH, D, 3D] (head k: its D units to its D
    columns of the r, z and n blocks), one batched [NH] matmul per step; backward='fused' runs
    autodiff.

`cells.get('gru_ln')` is the registered layer-normalised variant.
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
class GRU(base.LayerNormOption, base.HeadwiseOption, base.Cell):
    """GRU cell. See the module docstring for the equations of both variants.

    Attributes:
      reset_after: True applies the reset gate after the recurrent matmul (cuDNN/PyTorch/Keras
        layout, one recurrent GEMM per step); False is Cho et al.'s original formulation.
      layer_norm, chrono_t_max: see the module docstring.
      num_heads: NH > 1 makes w_hh block-diagonal over NH heads (head-wise recurrence,
        `cells.base.HeadwiseOption`); 1 = dense.
    """

    reset_after: bool = True
    layer_norm: bool = False
    chrono_t_max: float = 0.0
    num_heads: int = 1

    num_gates: ClassVar[int] = 3
    gate_names: ClassVar[tuple[str, ...]] = ("r", "z", "n")
    fused_backward: ClassVar[type | None] = step_grads.GRUGrad

    def __post_init__(self):
        super().__post_init__()
        for flag in ("reset_after", "layer_norm"):
            if not isinstance(getattr(self, flag), bool):
                raise ValueError(f"GRU: {flag} must be True or False, got {getattr(self, flag)!r}.")
        if self.layer_norm and not self.reset_after:
            raise ValueError("GRU: layer_norm=True needs reset_after=True.")
        base.check_chrono(self, self.chrono_t_max)
        self.check_heads()
        if self.num_heads > 1 and not self.reset_after:
            raise ValueError("GRU: num_heads > 1 needs reset_after=True.")

    @property
    def is_plain(self) -> bool:
        """This class itself (no subclass) with no layer norm or heads, in either reset form;
        what the library kernels (oneDNN both forms, the Pallas kernels reset_after) compute."""
        return type(self) is GRU and not self.layer_norm and self.num_heads == 1

    @property
    def bias_terms(self):
        """Torch biases per block of b: b_ih + b_hh for r and z; b_n is b_ih[n] alone when
        b_hn holds b_hh[n] (reset_after), else both (a torch-style Cho GRU)."""
        return (2, 2, 1) if self.reset_after else (2, 2, 2)

    def _extra_params(self, key):
        if self.reset_after:
            return {"b_hn": self._draw_bias(key, (1,))}
        return {}

    def init(self, key, input_size: int):
        k_cell, k_chrono = jax.random.split(key)
        params = super().init(k_cell, input_size)
        h, dtype = self.hidden_size, self.param_dtype
        if self.layer_norm:
            for part in ("x", "h"):
                params[f"ln_{part}_scale"] = jnp.ones((3 * h,), dtype)
                params[f"ln_{part}_bias"] = jnp.zeros((3 * h,), dtype)
        if self.chrono_t_max:
            b_z = base.chrono_bias(k_chrono, self.chrono_t_max, h, dtype)
            params["b"] = params["b"].at[h : 2 * h].set(b_z)
        return params

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
            h_in = base.recurrent_input(params, h_prev)  # h_prev (dropped out, if asked)
            hrz = base.matmul(h_in, w_hh[:, : 2 * h], self.compute_dtype).astype(h_prev.dtype)
            hr, hz = jnp.split(hrz, 2, axis=-1)
            r = jax.nn.sigmoid(xr + hr)
            z = jax.nn.sigmoid(xz + hz)
            hn = base.matmul(r * h_in, w_hh[:, 2 * h :], self.compute_dtype)
            n = jnp.tanh(xn + hn.astype(h_prev.dtype))
        h = (1.0 - z) * n + z * h_prev
        return base.RNNState(h), h, {"r": r, "z": z, "n": n}

    def reference_step(self, params, carry, x_BxI):
        (h_prev,) = carry
        h_in = base.recurrent_input(params, h_prev)  # recurrent_dropout: the products only
        w_r, w_z, w_n = self.split_gates(params, "w_ih")
        u_r, u_z, u_n = self.split_gates(params, "w_hh")
        b_r, b_z, b_n = self.split_gates(params, "b")
        if self.layer_norm:  # normalised over all gate blocks together, then split
            xw = base.layer_norm(x_BxI @ params["w_ih"], params["ln_x_scale"], params["ln_x_bias"])
            hw = base.layer_norm(
                h_in @ self.recurrent_matrix(params), params["ln_h_scale"], params["ln_h_bias"]
            )
            (x_r, x_z, x_n), (h_r, h_z, h_n) = jnp.split(xw, 3, -1), jnp.split(hw, 3, -1)
            r = jax.nn.sigmoid(base.add_bias(x_r, b_r) + h_r)
            z = jax.nn.sigmoid(base.add_bias(x_z, b_z) + h_z)
            n = jnp.tanh(base.add_bias(x_n, b_n) + r * base.add_bias(h_n, params["b_hn"]))
            h = (1.0 - z) * n + z * h_prev
            return base.RNNState(h), h
        r = jax.nn.sigmoid(base.add_bias(x_BxI @ w_r, b_r) + h_in @ u_r)
        z = jax.nn.sigmoid(base.add_bias(x_BxI @ w_z, b_z) + h_in @ u_z)
        if self.reset_after:
            n = jnp.tanh(
                base.add_bias(x_BxI @ w_n, b_n) + r * base.add_bias(h_in @ u_n, params["b_hn"])
            )
        else:
            n = jnp.tanh(base.add_bias(x_BxI @ w_n, b_n) + (r * h_in) @ u_n)
        h = (1.0 - z) * n + z * h_prev
        return base.RNNState(h), h


@registry.register("gru_ln")
@dataclasses.dataclass(frozen=True)
class LayerNormGRU(GRU):
    """Layer-normalised GRU (Ba, Kiros & Hinton 2016), reset-after form."""

    layer_norm: bool = True
