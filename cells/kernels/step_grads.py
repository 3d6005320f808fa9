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
`new` the carry the cell computed (before zoneout), `d` its cotangent (including dL/dy_t).

Variational recurrent dropout (`cells.scan(..., recurrent_dropout=p)`) feeds h'' = h' m
(m: the per-sequence mask in rparams under `base.RECURRENT_MASK`) to the recurrent product
only, so the gradient reaching h' through that product is multiplied by m (`StepGrad.dropped`)
and the weight gradients read h'' (`StepGrad.recurrent_input`); other uses of h' (the GRU's
interpolation) keep the undropped h'.

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


class StepGrad:
    """Defaults shared by the step-gradient classes (each is built with its cell)."""

    dh_prev_is_dpre_w_hh = True  # dh_prev = dpre W_hh^T exactly (no extra terms)

    def __init__(self, cell):
        self.cell = cell

    def transposed(self, rparams):
        """What `backward_step` multiplies by, computed once outside the loop: W_hh^T."""
        return rparams["w_hh"].T

    def prepare(self, rparams, prev_TxB, new_TxB, saved_TxB):
        return saved_TxB

    @staticmethod
    def dropped(rparams, dh_in):
        """The gradient reaching h' through the recurrent product: times the dropout mask."""
        mask = rparams.get(base.RECURRENT_MASK)
        return dh_in if mask is None else dh_in * mask.astype(dh_in.dtype)

    @staticmethod
    def recurrent_input(rparams, h_TxBxH):
        """h' as the recurrent product saw it, all steps at once (the mask is the same at every
        step)."""
        mask = rparams.get(base.RECURRENT_MASK)
        return h_TxBxH if mask is None else h_TxBxH * mask.astype(h_TxBxH.dtype)[None]


class LSTMGrad(StepGrad):
    """LSTM with its options (not layer_norm); saves i, f, g, o and c_t.

    Forward, with a_* the gate pre-activations and the peephole terms p_* (0 without them):
        i = s(a_i + p_i c'), f = s(a_f + p_f c'), g = tanh(a_g)      (coupled: i = 1 - f)
        c = f c' + i g,  o = s(a_o + p_o c),  m = o tanh(c),  h = m W_hr  (or h = m)
    Backward (dh, dc: the cotangents of the carry leaving the step):
        dm = dh W_hr^T (or dh)           da_o = dm tanh(c) o(1-o)
        dc_tot = dc + dm o (1 - tanh(c)^2) + da_o p_o
        da_g = dc_tot i (1-g^2)          da_i = dc_tot g i(1-i)
        da_f = dc_tot c' f(1-f)          (coupled: da_f = dc_tot (c' - g) f(1-f), no da_i)
        dc' = dc_tot f + da_i p_i + da_f p_f
        dpre = [da_i, da_f, da_g, da_o],  dh' = dpre W_hh^T
    After the loop: dW_hh = sum h'^T dpre; dp_i = sum da_i c', dp_f = sum da_f c',
    dp_o = sum da_o c; dW_hr = sum m^T dh (dh of the step, carried to it from later steps).
    """

    def saved(self, gates):
        return {k: gates[k] for k in ("i", "f", "g", "o", "c")}

    def backward_step(self, rparams, w_hh_T, s, prev, new, d):
        cell = self.cell
        i, f, g, o, c = s["i"], s["f"], s["g"], s["o"], s["c"]
        tc = jnp.tanh(c)
        dm = _dot_t(d.h, rparams["w_hr"], cell.compute_dtype) if cell.proj_size else d.h
        da_o = dm * tc * o * (1.0 - o)
        dc = d.c + dm * o * (1.0 - tc * tc)
        if cell.peephole:
            p_i, p_f, p_o = (rparams["w_peep"][k : k + 1].astype(c.dtype) for k in range(3))
            dc = dc + da_o * p_o
        da_g = dc * i * (1.0 - g * g)
        if cell.coupled:
            da_f = dc * (prev.c - g) * f * (1.0 - f)
            blocks = [da_f, da_g, da_o]
            dc_prev = dc * f + (da_f * p_f if cell.peephole else 0.0)
        else:
            da_i = dc * g * i * (1.0 - i)
            da_f = dc * prev.c * f * (1.0 - f)
            blocks = [da_i, da_f, da_g, da_o]
            dc_prev = dc * f + (da_i * p_i + da_f * p_f if cell.peephole else 0.0)
        dpre_BxG = jnp.concatenate(blocks, axis=-1)
        dh_prev = self.dropped(
            rparams, base.matmul(dpre_BxG, w_hh_T, cell.compute_dtype).astype(d.h.dtype)
        )
        # With a projection, dW_hr needs each step's dh: carried to param_grads beside dpre.
        out = jnp.concatenate([dpre_BxG, d.h], axis=-1) if cell.proj_size else dpre_BxG
        return base.LSTMState(dh_prev, dc_prev), out

    def param_grads(self, rparams, prev_TxB, saved_TxB, dout_TxBxN):
        cell = self.cell
        gh = cell.num_gates * cell.hidden_size
        dpre_TxBxG = dout_TxBxN[..., :gh]
        grads = {"w_hh": weight_grad(self.recurrent_input(rparams, prev_TxB.h), dpre_TxBxG)}
        if cell.peephole:
            blocks = dict(
                zip(cell.gate_names, jnp.split(dpre_TxBxG, cell.num_gates, -1), strict=True)
            )
            c_prev, c = prev_TxB.c, saved_TxB["c"]
            dp_i = (
                jnp.zeros_like(c[0, 0]) if cell.coupled else jnp.sum(blocks["i"] * c_prev, (0, 1))
            )
            dp_f = jnp.sum(blocks["f"] * c_prev, axis=(0, 1))
            dp_o = jnp.sum(blocks["o"] * c, axis=(0, 1))
            grads["w_peep"] = jnp.stack([dp_i, dp_f, dp_o])
        if cell.proj_size:
            m_TxBxH = saved_TxB["o"] * jnp.tanh(saved_TxB["c"])
            grads["w_hr"] = weight_grad(m_TxBxH, dout_TxBxN[..., gh:])
        return grads, dpre_TxBxG


class GRUGrad(StepGrad):
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
        super().__init__(cell)
        self.h = cell.hidden_size

    def saved(self, gates):
        return {k: gates[k] for k in ("r", "z", "n")}

    def prepare(self, rparams, prev_TxB, new_TxB, saved_TxB):
        if not self.cell.reset_after:
            return saved_TxB
        w_hn = rparams["w_hh"][:, 2 * self.h :]
        h_in = self.recurrent_input(rparams, prev_TxB.h)
        a = base.matmul(h_in, w_hn, self.cell.compute_dtype).astype(prev_TxB.h.dtype)
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
            dh_in = base.matmul(dhw_Bx3H, w_hh_T, cdt).astype(d.h.dtype)
        else:
            w_hrz_T, w_hn_T = w_hh_T[: 2 * self.h], w_hh_T[2 * self.h :]
            drh = base.matmul(dpre_n, w_hn_T, cdt).astype(d.h.dtype)
            dpre_r = drh * base.recurrent_input(rparams, prev.h) * r * (1.0 - r)
            dpre_rz = jnp.concatenate([dpre_r, dpre_z], axis=-1)
            dh_in = drh * r + base.matmul(dpre_rz, w_hrz_T, cdt).astype(d.h.dtype)
        dh_prev = d.h * z + self.dropped(rparams, dh_in)
        return base.RNNState(dh_prev), jnp.concatenate([dpre_r, dpre_z, dpre_n], axis=-1)

    def param_grads(self, rparams, prev_TxB, saved_TxB, dxp_TxBx3H):
        h = self.h
        dpre_rz, dpre_n = dxp_TxBx3H[..., : 2 * h], dxp_TxBx3H[..., 2 * h :]
        h_in = self.recurrent_input(rparams, prev_TxB.h)
        if self.cell.reset_after:
            dhn = dpre_n * saved_TxB["r"]
            dhw = jnp.concatenate([dpre_rz, dhn], axis=-1)
            grads = {"w_hh": weight_grad(h_in, dhw), "b_hn": jnp.sum(dhn, axis=(0, 1))}
        else:
            dw_rz = weight_grad(h_in, dpre_rz)
            dw_n = weight_grad(saved_TxB["r"] * h_in, dpre_n)
            grads = {"w_hh": jnp.concatenate([dw_rz, dw_n], axis=1)}
        return grads, dxp_TxBx3H


def _activation_grad(activation: str, dh, h):
    """d act(pre) / d pre times dh, from the output h = act(pre): tanh 1 - h^2, relu [h > 0]."""
    if activation == "tanh":
        return dh * (1.0 - h * h)
    return jnp.where(h > 0, dh, 0.0)


class SimpleRNNGrad(StepGrad):
    """Elman RNN: h = act(pre); nothing saved beyond the carries.

    dpre = dh (1 - h^2) for tanh, dh [h > 0] for relu;   dh' = dpre W_hh^T
    """

    def saved(self, gates):
        return {}

    def backward_step(self, rparams, w_hh_T, s, prev, new, d):
        dpre = _activation_grad(self.cell.activation, d.h, new.h)
        dh_prev = base.matmul(dpre, w_hh_T, self.cell.compute_dtype).astype(d.h.dtype)
        return base.RNNState(self.dropped(rparams, dh_prev)), dpre

    def param_grads(self, rparams, prev_TxB, saved_TxB, dxp_TxBxH):
        return {
            "w_hh": weight_grad(self.recurrent_input(rparams, prev_TxB.h), dxp_TxBxH)
        }, dxp_TxBxH


class IndRNNGrad(StepGrad):
    """IndRNN: h = act(pre), pre = x W_ih + b + u_eff h' with u_eff = clip(u, -m, m) (m: the
    recurrent_max bound, none when 0). No GEMM in the loop:

    dpre = dh act'(pre);   dh' = dpre u_eff;   du = sum_t dpre h' (zero where u is clipped)
    """

    dh_prev_is_dpre_w_hh = False  # elementwise recurrence: no W_hh to fuse dx with

    def saved(self, gates):
        return {}

    def transposed(self, rparams):
        return self.cell.effective_u(rparams)

    def backward_step(self, rparams, u_H, s, prev, new, d):
        dpre = _activation_grad(self.cell.activation, d.h, new.h)
        return base.RNNState(self.dropped(rparams, dpre * u_H.astype(dpre.dtype)[None, :])), dpre

    def param_grads(self, rparams, prev_TxB, saved_TxB, dpre_TxBxH):
        du = jnp.sum(dpre_TxBxH * self.recurrent_input(rparams, prev_TxB.h), axis=(0, 1))
        bound = self.cell.recurrent_max
        if bound:
            du = jnp.where(jnp.abs(rparams["u"]) <= bound, du, 0.0)
        return {"u": du}, dpre_TxBxH
