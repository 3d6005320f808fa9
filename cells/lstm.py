"""Long short-term memory (Hochreiter & Schmidhuber 1997; forget gate: Gers et al. 2000), with
the variants the literature compares, combinable.

The gate order is PyTorch's, i, f, g, o, in every fused array:

    i_t = sigmoid(x_t W_ii + b_i + h_{t-1} W_hi)      input gate
    f_t = sigmoid(x_t W_if + b_f + h_{t-1} W_hf)      forget gate
    g_t = tanh   (x_t W_ig + b_g + h_{t-1} W_hg)      candidate cell
    o_t = sigmoid(x_t W_io + b_o + h_{t-1} W_ho)      output gate
    c_t = f_t * c_{t-1} + i_t * g_t                   memory cell
    h_t = o_t * tanh(c_t)                             hidden state

Parameters: w_ih [I, 4H] = [W_ii | W_if | W_ig | W_io], w_hh [H, 4H] likewise, and one bias
b [4H] = [b_i | b_f | b_g | b_o] (PyTorch's b_ih + b_hh; `cells.interop` splits it back).
The forget-gate bias starts at `forget_bias` when given, else at the init_scheme's: 1.0 under
'cells' (the default) and 'keras' (unit_forget_bias; Gers et al. 2000 / Jozefowicz et al.
2015: memory is kept at the start of training), 0.0 under 'flax' (LSTMCell's zero biases),
drawn like the other blocks under 'torch'. The weights: `cells.initializers`.

Options (any combination):

  peephole=True (Gers, Schraudolph & Schmidhuber 2002): the gates see the cell through
    diagonal weights w_peep [3, H] (rows i, f, o):
        i_t = sigmoid(... + p_i * c_{t-1}),  f_t = sigmoid(... + p_f * c_{t-1}),
        o_t = sigmoid(... + p_o * c_t)          (zeros at init; with coupled, the i row is unused)
  coupled=True (CIFG, Greff et al. 2017): no input gate, i_t = 1 - f_t; three gate blocks in
    the order (f, g, o): w_ih [I, 3H], w_hh [., 3H], b [3H].
  proj_size=P > 0 (LSTMP, Sak et al. 2014; PyTorch's nn.LSTM(proj_size=P)):
        h_t = (o_t * tanh(c_t)) W_hr,   W_hr = w_hr [H, P]
    so the carry's h and the output are [B, P] and w_hh is [P, G*H].
  layer_norm=True (Ba, Kiros & Hinton 2016): each product normalised over all gate blocks
    together, the cell normalised before the output tanh:
        pre_t = LN_x(x_t W_ih) + LN_h(h_{t-1} W_hh) + b,   h_t = o_t * tanh(LN_c(c_t))
    with ln_x_scale, ln_x_bias, ln_h_scale, ln_h_bias [G*H] and ln_c_scale, ln_c_bias [H]
    (scales start at 1, biases at 0); LN(v) = (v - mean(v)) / sqrt(var(v) + 1e-5) * s + b.
    The hand-written backward does not cover it: backward='fused' runs autodiff (warned).
  chrono_t_max=T > 0 (Tallec & Ollivier 2018): b_f ~ log(U[1, T - 1]) and b_i = -b_f at init
    (coupled: b_f only), for dependencies up to about T steps, over the scheme's draw of the
    other blocks; an explicit forget_bias with it is refused (it would be unused).
  num_heads=NH > 1 (head-wise recurrence, FlashRNN's multi-head LSTM; Beck et al. 2024): W_hh
    block-diagonal over NH heads of D = H / NH units, stored w_hh [NH, D, G*D] (head k: its D
    units to its D columns of each gate block, order i, f, g, o), so a step does one batched
    [NH] matmul of NH*D*G*D weights instead of H*G*H. Not with proj_size; backward='fused' runs
    autodiff.

`cells.get('lstm_peephole')`, `'lstm_cifg'`, `'lstmp'` and `'lstm_ln'` are the registered
variants (the same class with that option on by default).
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
class LSTM(base.LayerNormOption, base.HeadwiseOption, base.Cell):
    """LSTM cell with forget gate and optional variants. See the module docstring.

    Attributes:
      forget_bias: initial value of the forget-gate bias b_f; None (default): the
        init_scheme's (1.0 'cells' and 'keras', 0.0 'flax', drawn 'torch'); 0.0 as in Zaremba.
      peephole: diagonal peephole connections from the cell to the gates.
      coupled: couple the input gate to the forget gate, i = 1 - f (CIFG).
      proj_size: P > 0 projects the output to P units (LSTMP); 0 = no projection.
      layer_norm: layer-normalise the two products and the cell (LN-LSTM).
      chrono_t_max: T > 2 initialises the gate biases by the chrono rule; 0 = off.
      num_heads: NH > 1 makes w_hh block-diagonal over NH heads, stored [NH, H/NH, G*H/NH]
        (head-wise recurrence; see `cells.base.HeadwiseOption`); 1 = dense.
    """

    forget_bias: float | None = None
    peephole: bool = False
    coupled: bool = False
    proj_size: int = 0
    layer_norm: bool = False
    chrono_t_max: float = 0.0
    num_heads: int = 1

    carry_type = base.LSTMState
    fused_backward = step_grads.LSTMGrad
    # b_f under each init_scheme when forget_bias is None (None: drawn like the other blocks).
    scheme_forget_bias: ClassVar[dict[str, float | None]] = {
        "cells": 1.0,
        "keras": 1.0,
        "flax": 0.0,
        "torch": None,
    }

    def __post_init__(self):
        super().__post_init__()
        name = type(self).__name__
        for flag in ("peephole", "coupled", "layer_norm"):
            if not isinstance(getattr(self, flag), bool):
                raise ValueError(
                    f"{name}: {flag} must be True or False, got {getattr(self, flag)!r}."
                )
        p = self.proj_size
        if isinstance(p, bool) or not isinstance(p, int) or p < 0:
            raise ValueError(f"{name}: proj_size must be an int >= 0 (0: none), got {p!r}.")
        base.check_forget_bias(self)
        base.check_chrono(self, self.chrono_t_max)
        if self.chrono_t_max and self.forget_bias is not None:
            raise ValueError(
                f"{name}: forget_bias={self.forget_bias!r} with chrono_t_max="
                f"{self.chrono_t_max!r}: chrono sets b_f; pass one of them."
            )
        self.check_heads()
        if self.num_heads > 1 and self.proj_size:
            raise ValueError(f"{name}: num_heads > 1 needs proj_size=0 (no projection).")

    # -- layout --------------------------------------------------------------------------------
    @property
    def gate_names(self) -> tuple[str, ...]:
        return ("f", "g", "o") if self.coupled else ("i", "f", "g", "o")

    @property
    def num_gates(self) -> int:
        return len(self.gate_names)

    @property
    def output_size(self) -> int:
        return self.proj_size or self.hidden_size

    @property
    def is_plain(self) -> bool:
        """The classic LSTM: this class itself (no subclass) with no peephole, coupling,
        projection, layer norm or heads; what the library kernels (cuDNN, oneDNN, the Pallas
        kernels) compute."""
        return type(self) is LSTM and not (
            self.peephole or self.coupled or self.proj_size or self.layer_norm or self.num_heads > 1
        )

    def _block(self, name: str) -> slice:
        """Columns of gate `name` in the fused [.., G*H] arrays."""
        k, h = self.gate_names.index(name), self.hidden_size
        return slice(k * h, (k + 1) * h)

    # -- parameters ------------------------------------------------------------------------------
    def init(self, key, input_size: int):
        k_cell, k_extra, k_chrono = jax.random.split(key, 3)
        params = super().init(k_cell, input_size)
        h, gh, dtype = self.hidden_size, self.num_gates * self.hidden_size, self.param_dtype
        if self.proj_size:
            params["w_hr"] = self._init_kernel(k_extra, (h, self.proj_size))
        if self.peephole:
            params["w_peep"] = jnp.zeros((3, h), dtype)
        if self.layer_norm:
            for part, size in (("x", gh), ("h", gh), ("c", h)):
                params[f"ln_{part}_scale"] = jnp.ones((size,), dtype)
                params[f"ln_{part}_bias"] = jnp.zeros((size,), dtype)
        if self.chrono_t_max:
            b_f = base.chrono_bias(k_chrono, self.chrono_t_max, h, dtype)
            b = params["b"].at[self._block("f")].set(b_f)
            if not self.coupled:
                b = b.at[self._block("i")].set(-b_f)
            params["b"] = b
        return params

    def _init_bias(self, key):
        b = super()._init_bias(key)
        b_f = self.forget_bias
        if b_f is None:
            b_f = self.scheme_forget_bias[self.init_scheme]
        return b if b_f is None else b.at[self._block("f")].set(b_f)

    # -- the fused path --------------------------------------------------------------------------
    def fused_step(self, params, carry, xp_BxG):
        """One step: a single [B, H_in] x [H_in, G*H] GEMM (plus [B, H] x [H, P] with
        proj_size), then elementwise gate math in float32."""
        h_BxP, c_BxH = carry
        hw_BxG = self.recurrent(params, h_BxP)  # LN_h(h W_hh) with layer_norm
        pre = dict(
            zip(
                self.gate_names,
                jnp.split((xp_BxG + hw_BxG).astype(c_BxH.dtype), self.num_gates, -1),
                strict=True,
            )
        )
        return self._gate_math(params, c_BxH, pre)

    def _gate_math(self, params, c_prev, pre):
        """The elementwise part of a step from the pre-activations {gate: [B, H]}."""
        p_i = p_f = p_o = None
        if self.peephole:
            p_i, p_f, p_o = (params["w_peep"][k : k + 1].astype(c_prev.dtype) for k in range(3))
        f = jax.nn.sigmoid(pre["f"] + (p_f * c_prev if self.peephole else 0.0))
        if self.coupled:
            i = 1.0 - f
        else:
            i = jax.nn.sigmoid(pre["i"] + (p_i * c_prev if self.peephole else 0.0))
        g = jnp.tanh(pre["g"])
        c = f * c_prev + i * g
        o = jax.nn.sigmoid(pre["o"] + (p_o * c if self.peephole else 0.0))
        c_out = (
            base.layer_norm(c, params["ln_c_scale"], params["ln_c_bias"]) if self.layer_norm else c
        )
        m = o * jnp.tanh(c_out)
        h = self._project(params, m).astype(c.dtype) if self.proj_size else m
        return base.LSTMState(h, c), h, {"i": i, "f": f, "g": g, "o": o, "c": c}

    def _project(self, params, m_BxH):
        return base.matmul(m_BxH, params["w_hr"], self.compute_dtype)

    # -- the specification -----------------------------------------------------------------------
    def reference_step(self, params, carry, x_BxI):
        """The equations, one gate at a time, with separate input and recurrent products."""
        h_prev, c_prev = carry
        h_in = base.recurrent_input(params, h_prev)  # recurrent_dropout acts here only
        w = dict(zip(self.gate_names, self.split_gates(params, "w_ih"), strict=True))
        u = dict(zip(self.gate_names, self.split_gates(params, "w_hh"), strict=True))
        b = dict(zip(self.gate_names, self.split_gates(params, "b"), strict=True))
        if self.layer_norm:  # normalised over all gate blocks together, then split
            xw = base.layer_norm(x_BxI @ params["w_ih"], params["ln_x_scale"], params["ln_x_bias"])
            hw = base.layer_norm(
                h_in @ self.recurrent_matrix(params), params["ln_h_scale"], params["ln_h_bias"]
            )
            xw = dict(zip(self.gate_names, jnp.split(xw, self.num_gates, -1), strict=True))
            hw = dict(zip(self.gate_names, jnp.split(hw, self.num_gates, -1), strict=True))
        else:
            xw = {k: x_BxI @ w[k] for k in self.gate_names}
            hw = {k: h_in @ u[k] for k in self.gate_names}
        pre = {k: base.add_bias(xw[k], b[k]) + hw[k] for k in self.gate_names}
        peep = params.get("w_peep")  # rows i, f, o, each [1, H] below
        f = jax.nn.sigmoid(pre["f"] + (peep[1:2] * c_prev if self.peephole else 0.0))
        if self.coupled:
            i = 1.0 - f
        else:
            i = jax.nn.sigmoid(pre["i"] + (peep[0:1] * c_prev if self.peephole else 0.0))
        g = jnp.tanh(pre["g"])
        c = f * c_prev + i * g
        o = jax.nn.sigmoid(pre["o"] + (peep[2:3] * c if self.peephole else 0.0))
        if self.layer_norm:
            h = o * jnp.tanh(base.layer_norm(c, params["ln_c_scale"], params["ln_c_bias"]))
        else:
            h = o * jnp.tanh(c)
        if self.proj_size:
            h = h @ params["w_hr"]
        return base.LSTMState(h, c), h


@registry.register("lstm_peephole")
@dataclasses.dataclass(frozen=True)
class PeepholeLSTM(LSTM):
    """LSTM with peephole connections (Gers, Schraudolph & Schmidhuber 2002)."""

    peephole: bool = True


@registry.register("lstm_cifg")
@dataclasses.dataclass(frozen=True)
class CIFGLSTM(LSTM):
    """Coupled input-forget gate LSTM, i = 1 - f (Greff et al. 2017)."""

    coupled: bool = True


@registry.register("lstmp")
@dataclasses.dataclass(frozen=True)
class LSTMP(LSTM):
    """LSTM with a recurrent projection (Sak et al. 2014): set proj_size = P > 0 (required)."""

    @classmethod
    def example_options(cls, hidden_size: int):
        return {"proj_size": max(1, hidden_size // 2)}

    def __post_init__(self):
        super().__post_init__()
        if self.proj_size <= 0:
            raise ValueError(
                "LSTMP: proj_size must be > 0 (the projected output size P; e.g. "
                "config.model.cell_options.proj_size=128)."
            )


@registry.register("lstm_ln")
@dataclasses.dataclass(frozen=True)
class LayerNormLSTM(LSTM):
    """Layer-normalised LSTM (Ba, Kiros & Hinton 2016)."""

    layer_norm: bool = True
