"""sLSTM (Beck, Pöppel, Spanring, Auer, Prudnikova, Kopp, Klambauer, Brandstetter & Hochreiter
2024, "xLSTM: Extended Long Short-Term Memory"): exponential input and forget gates with a
normaliser state and a stabiliser, and head-wise memory mixing. The vanilla equations of the
official code (NX-AI/xlstm, blocks/slstm/src/vanilla/slstm.py), gate order i, f, z, o:

    [i~, f~, z~, o~] = x_t W_ih + h_{t-1} R + b                pre-activations
    m_t  = max(i~_t, m_{t-1} + log sigmoid(f~_t))              stabiliser (m_t = i~_t when
                                                               n_{t-1} = 0: the first step)
    i'_t = exp(i~_t - m_t),   f'_t = exp(m_{t-1} + log sigmoid(f~_t) - m_t)
    c_t  = f'_t c_{t-1} + i'_t tanh(z~_t)                      cell
    n_t  = f'_t n_{t-1} + i'_t                                 normaliser
    h_t  = sigmoid(o~_t) c_t / n_t                             hidden state

The stabiliser rescales c and n by the same factor exp(-m_t), so h equals the unstabilised
h = sigmoid(o~) c / n with i = exp(i~), f = sigmoid(f~) (the forget gate is exp(log sigmoid),
i.e. sigmoid); the exponentials stay finite on any sequence (i' <= 1, f' <= 1, and n_t >= 1
after the first step). The first-step rule is applied per unit (where n_{t-1} == 0), which
equals the official `all(n == 0)` test at the start of a sequence and after a reset.

R is block-diagonal over `num_heads` heads of D = H / NH units: w_hh [NH, D, 4D], head k maps
its own D units to its own D columns of the i, f, z, o blocks (`cells.base.HeadwiseOption`;
NH = 1 is a dense R, still stored [1, H, 4H]). w_ih [I, 4H] and b [4H] are gate-major.
The carry is `SLSTMState(h, c, n, m)`.

Initialisation as the xLSTM code's defaults: recurrent weights zero (`recurrent_weight_init=
'zeros'`), biases zero except the forget gate's "powerlaw_blockdependent" rule for a single
block, b_f[k*D + j] = 5 - 12 (j / (D - 1))^0.3 in every head (from +5, long memory, down to
-7); w_ih and the other biases by the init_scheme (`cells.initializers`; 'cells': Glorot
uniform and zero; the xLSTM block's head-wise input projections are a block-level choice, not
the cell's). R = 0 and the power-law bias are the class defaults `recurrent_init=zeros` and
`powerlaw_bias=True`, so they hold under every scheme (pass `recurrent_init=None` or
`powerlaw_bias=False` to leave R or b_f to the scheme). There is no hand-written backward:
backward='fused' runs autodiff.
"""

from __future__ import annotations

import dataclasses
from typing import ClassVar

import jax
import jax.numpy as jnp

from cells import base, registry, regularization


def powerlaw_forget_bias(head_dim: int, num_heads: int, dtype) -> jax.Array:
    """b_f = 5 - 12 (j / (D - 1))^0.3 for unit j of each head (xLSTM's single-block rule)."""
    j = jnp.arange(head_dim, dtype=jnp.float32) / max(head_dim - 1, 1)
    return jnp.tile(5.0 - 12.0 * j**0.3, num_heads).astype(dtype)


@registry.register("slstm")
@dataclasses.dataclass(frozen=True)
class SLSTM(base.HeadwiseOption, base.Cell):
    """sLSTM cell (Beck et al. 2024). See the module docstring.

    Attributes:
      num_heads: NH, the number of heads of the block-diagonal recurrent matrix (divides H).
      powerlaw_bias: the xLSTM power-law forget-bias initialisation (default); False starts
        every bias at zero.
    """

    recurrent_init: base.Initializer | None = jax.nn.initializers.zeros
    num_heads: int = 1
    powerlaw_bias: bool = True

    num_gates: ClassVar[int] = 4
    gate_names: ClassVar[tuple[str, ...]] = ("i", "f", "z", "o")
    carry_type: ClassVar[type] = base.SLSTMState
    always_headwise: ClassVar[bool] = True
    bias_terms: ClassVar[tuple[int, ...]] = (1, 1, 1, 1)  # the xLSTM code's one bias per gate
    # Zoneout keeps or updates (c, n, m) of a unit together: one stabilised state (see
    # `zone_carry`); h draws its own mask.
    zoneout_groups: ClassVar[tuple[int, ...]] = (0, 1, 1, 1)

    def __post_init__(self):
        super().__post_init__()
        self.check_heads()
        if not isinstance(self.powerlaw_bias, bool):
            raise ValueError(
                f"SLSTM: powerlaw_bias must be True or False, got {self.powerlaw_bias!r}."
            )

    def _init_bias(self, key):
        h = self.hidden_size
        b = super()._init_bias(key)
        if self.powerlaw_bias:
            d = h // self.num_heads
            b = b.at[h : 2 * h].set(powerlaw_forget_bias(d, self.num_heads, self.param_dtype))
        return b

    def fused_step(self, params, carry, xp_Bx4H):
        pre = xp_Bx4H.astype(carry.c.dtype) + self.recurrent(params, carry.h).astype(carry.c.dtype)
        return self._gate_math(carry, *jnp.split(pre, 4, axis=-1))

    def _gate_math(self, carry, i_pre, f_pre, z_pre, o_pre):
        h_prev, c_prev, n_prev, m_prev = carry
        log_f_plus_m = m_prev + jax.nn.log_sigmoid(f_pre)
        m = jnp.where(n_prev == 0.0, i_pre, jnp.maximum(i_pre, log_f_plus_m))
        i = jnp.exp(i_pre - m)
        f = jnp.exp(log_f_plus_m - m)
        z = jnp.tanh(z_pre)
        o = jax.nn.sigmoid(o_pre)
        c = f * c_prev + i * z
        n = f * n_prev + i
        h = o * c / n
        return base.SLSTMState(h, c, n, m), h, {"i": i, "f": f, "z": z, "o": o, "c": c, "n": n}

    def zone_carry(self, new, old, weights):
        """Zoneout of the stabilised state. (c, n, m) stand for the true state C = c e^m,
        N = n e^m, so mixing c, n and m with independent masks or weights (the generic
        field-by-field rule) mixes scales and can blow up |h|. With masks, one mask per unit
        keeps or updates (c, n, m) together (`zoneout_groups`). The expectation (no rng) mixes
        the true states, p C_old + (1 - p) C_new and the same for N, stabilised by
        m = max(m_old, m_new) (m_new alone where the old state is empty, n_old = 0):

            c = p c_old e^(m_old - m) + (1 - p) c_new e^(m_new - m),   n likewise,

        so |c| <= n holds as in a plain step, and with it |h| = |o c / n| <= 1.
        """
        w_h, w_state = weights[0], weights[1]
        h = regularization.zoneout(new, old, (w_h, None, None, None)).h
        if w_state is None or not isinstance(w_state, float):  # none, or one mask per unit
            kept = regularization.zoneout(new, old, (w_h, w_state, w_state, w_state))
            return kept._replace(h=h)
        p = w_state
        empty = old.n == 0.0
        m = jnp.where(empty, new.m, jnp.maximum(old.m, new.m))
        # exp only where the old state counts (where(empty, 0, exp(.)) alone would send NaN
        # through the unselected branch's gradient).
        scale_old = jnp.where(empty, 0.0, jnp.exp(jnp.where(empty, 0.0, old.m - m)))
        scale_new = jnp.exp(new.m - m)
        c = p * scale_old * old.c + (1.0 - p) * scale_new * new.c
        n = p * scale_old * old.n + (1.0 - p) * scale_new * new.n
        return base.SLSTMState(h, c, n, m)

    def reference_step(self, params, carry, x_BxI):
        w = self.split_gates(params, "w_ih")
        u = self.split_gates(params, "w_hh")  # the dense block-diagonal R, gate by gate
        b = self.split_gates(params, "b")
        h_in = base.recurrent_input(params, carry.h)  # recurrent_dropout acts here
        pre = [x_BxI @ w[k] + h_in @ u[k] + b[k][None] for k in range(4)]
        new, h, _ = self._gate_math(carry, *pre)
        return new, h
