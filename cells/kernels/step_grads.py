"""Hand-written backward of one recurrent step, per cell, for `cells.kernels.sequence_vjp`.

Each class below knows, for one cell type:

  * `saved(gates)`: which of `cell.fused_step`'s gate activations the forward pass keeps,
  * `prepare(...)`: residuals cheaper to rebuild after the forward loop than inside it,
  * `backward_step(...)`: the gradient of one step, with the serial chain reduced to the
    recurrent GEMM(s) of that step (one for LSTM, GRU reset_after=True and the Elman RNN; two
    for GRU reset_after=False, as in its forward),
  * `param_grads(...)`: dW_hh (and db_hn) as single [H, T*B] x [T*B, G*H] GEMMs after the loop.

Notation: d<x> is dL/d<x>; "pre" is a gate's pre-activation; sigmoid' = s (1 - s),
tanh' = 1 - t^2. Carries are the cell's NamedTuples; `prev` is the carry entering the step,
`new` the carry leaving it, `d` the cotangent of `new` (already including dL/dy_t).

A cell class names its rule as `fused_backward = step_grads.LSTMGrad` (see
`cells.Cell.backward_rule`); a new cell with a hand-written backward adds its class here or in
its own file, with the derivation in the docstring.
"""

from __future__ import annotations

import jax.numpy as jnp

from cells import base


def _dot_t(dx_BxN, w_KxN, compute_dtype):
    """dx @ w^T (the transpose of a forward x @ w), float32 accumulation."""
    return base.matmul(dx_BxN, w_KxN.T, compute_dtype).astype(dx_BxN.dtype)


def weight_grad(x_TxBxK, dy_TxBxN):
    """sum_t x_t^T dy_t: one GEMM with contraction over time and batch together."""
    t, b, k = x_TxBxK.shape
    n = dy_TxBxN.shape[-1]
    return jnp.matmul(x_TxBxK.reshape(t * b, k).T, dy_TxBxN.reshape(t * b, n))


class LSTMGrad:
    """LSTM: c = f c' + i g, h = o tanh(c); saves i, f, g, o (c comes from the carries).

    do = dh tanh(c)                 dc_tot = dc + dh o (1 - tanh(c)^2)
    di = dc_tot g    df = dc_tot c'    dg = dc_tot i    dc' = dc_tot f
    dpre = [di i(1-i), df f(1-f), dg (1-g^2), do o(1-o)],   dh' = dpre W_hh^T
    """

    dh_prev_is_dpre_w_hh = True  # dh_prev = dpre W_hh^T exactly (no extra terms)

    def __init__(self, cell):
        self.cell = cell

    def saved(self, gates):
        return {k: gates[k] for k in ("i", "f", "g", "o")}

    def prepare(self, rparams, prev_TxB, new_TxB, saved_TxB):
        return saved_TxB

    def backward_step(self, rparams, w_hh_T, s, prev, new, d):
        i, f, g, o = s["i"], s["f"], s["g"], s["o"]
        tc = jnp.tanh(new.c)
        do = d.h * tc
        dc = d.c + d.h * o * (1.0 - tc * tc)
        dpre_Bx4H = jnp.concatenate(
            [
                dc * g * i * (1.0 - i),
                dc * prev.c * f * (1.0 - f),
                dc * i * (1.0 - g * g),
                do * o * (1.0 - o),
            ],
            axis=-1,
        )
        dh_prev = base.matmul(dpre_Bx4H, w_hh_T, self.cell.compute_dtype).astype(d.h.dtype)
        return base.LSTMState(dh_prev, dc * f), dpre_Bx4H

    def param_grads(self, rparams, prev_TxB, saved_TxB, dxp_TxBx4H):
        return {"w_hh": weight_grad(prev_TxB.h, dxp_TxBx4H)}, dxp_TxBx4H


class GRUGrad:
    """GRU, both variants; saves r, z, n.

    reset_after=True (a = h' W_hn + b_hn, rebuilt after the forward loop as one GEMM):
        dn = dh (1-z)   dz = dh (h' - n)   dpre_n = dn (1-n^2)   dr = dpre_n a
        dpre_rz = [dr r(1-r), dz z(1-z)]
        dh' = dh z + [dpre_rz, dpre_n r] W_hh^T          (one GEMM)
    reset_after=False (forward n = tanh(x_n + (r h') W_hn)):
        d(r h') = dpre_n W_hn^T;  dr = d(r h') h'
        dh' = dh z + d(r h') r + dpre_rz W_hrz^T          (two GEMMs, as in the forward)
    """

    dh_prev_is_dpre_w_hh = False  # dh_prev has the extra terms dh z (+ d(r h') r) above

    def __init__(self, cell):
        self.cell = cell
        self.h = cell.hidden_size

    def saved(self, gates):
        return {k: gates[k] for k in ("r", "z", "n")}

    def prepare(self, rparams, prev_TxB, new_TxB, saved_TxB):
        if not self.cell.reset_after:
            return saved_TxB
        w_hn = rparams["w_hh"][:, 2 * self.h :]
        a = base.matmul(prev_TxB.h, w_hn, self.cell.compute_dtype).astype(prev_TxB.h.dtype)
        return dict(saved_TxB, a=base.add_bias(a, rparams["b_hn"]))

    def backward_step(self, rparams, w_hh_T, s, prev, new, d):
        r, z, n = s["r"], s["z"], s["n"]
        dn = d.h * (1.0 - z)
        dpre_z = d.h * (prev.h - n) * z * (1.0 - z)
        dpre_n = dn * (1.0 - n * n)
        cdt = self.cell.compute_dtype
        if self.cell.reset_after:
            dpre_r = dpre_n * s["a"] * r * (1.0 - r)
            dhw_Bx3H = jnp.concatenate([dpre_r, dpre_z, dpre_n * r], axis=-1)
            dh_prev = d.h * z + base.matmul(dhw_Bx3H, w_hh_T, cdt).astype(d.h.dtype)
        else:
            w_hrz_T, w_hn_T = w_hh_T[: 2 * self.h], w_hh_T[2 * self.h :]
            drh = base.matmul(dpre_n, w_hn_T, cdt).astype(d.h.dtype)
            dpre_r = drh * prev.h * r * (1.0 - r)
            dpre_rz = jnp.concatenate([dpre_r, dpre_z], axis=-1)
            dh_prev = d.h * z + drh * r + base.matmul(dpre_rz, w_hrz_T, cdt).astype(d.h.dtype)
        return base.RNNState(dh_prev), jnp.concatenate([dpre_r, dpre_z, dpre_n], axis=-1)

    def param_grads(self, rparams, prev_TxB, saved_TxB, dxp_TxBx3H):
        h = self.h
        dpre_rz, dpre_n = dxp_TxBx3H[..., : 2 * h], dxp_TxBx3H[..., 2 * h :]
        if self.cell.reset_after:
            dhn = dpre_n * saved_TxB["r"]
            dhw = jnp.concatenate([dpre_rz, dhn], axis=-1)
            grads = {"w_hh": weight_grad(prev_TxB.h, dhw), "b_hn": jnp.sum(dhn, axis=(0, 1))}
        else:
            dw_rz = weight_grad(prev_TxB.h, dpre_rz)
            dw_n = weight_grad(saved_TxB["r"] * prev_TxB.h, dpre_n)
            grads = {"w_hh": jnp.concatenate([dw_rz, dw_n], axis=1)}
        return grads, dxp_TxBx3H


class SimpleRNNGrad:
    """Elman RNN: h = act(pre); nothing saved beyond the carries.

    dpre = dh (1 - h^2) for tanh, dh [h > 0] for relu;   dh' = dpre W_hh^T
    """

    dh_prev_is_dpre_w_hh = True  # dh_prev = dpre W_hh^T exactly (no extra terms)

    def __init__(self, cell):
        self.cell = cell

    def saved(self, gates):
        return {}

    def prepare(self, rparams, prev_TxB, new_TxB, saved_TxB):
        return saved_TxB

    def backward_step(self, rparams, w_hh_T, s, prev, new, d):
        if self.cell.activation == "tanh":
            dpre = d.h * (1.0 - new.h * new.h)
        else:
            dpre = jnp.where(new.h > 0, d.h, 0.0)
        dh_prev = base.matmul(dpre, w_hh_T, self.cell.compute_dtype).astype(d.h.dtype)
        return base.RNNState(dh_prev), dpre

    def param_grads(self, rparams, prev_TxB, saved_TxB, dxp_TxBxH):
        return {"w_hh": weight_grad(prev_TxB.h, dxp_TxBxH)}, dxp_TxBxH
