"""The GEMMs of our fused LSTM/GRU path with the gate math taken out: a floor for XLA:CPU.

`bench.py --impls=...,gemms-only` times this next to the real implementations. It
runs the same matrix products, in the same loops and shapes, as `cells.scan(...,
backward='fused')` with projection 'auto' (`cells.sequence.IN_LOOP_MIN_BATCH`), and replaces
every step's elementwise gate math by one cheap op that keeps the serial dependency:

    forward, per step t      g_t = x_t W_ih + h_{t-1} W_hh   (x_t W_ih hoisted for B < 8)
                             h_t = g_t[:, :H]
    backward, per step t     dpre_t = g_t + [dh_t, ..., dh_t]            (G copies)
                             [dh_{t-1}, dx_t] = dpre_t [W_hh; W_ih]^T    (LSTM, in-loop)
                             dh_{t-1} = dpre_t W_hh^T                    (otherwise)
    after the loop           dW_hh = sum_t h_{t-1}^T dpre_t,  dW_ih = sum_t x_t^T dpre_t,
                             db = sum_t dpre_t  (and dx = dpre W_ih^T where not in the loop;
                             GRU: also h_{t-1} W_hn over all steps, as its backward does)

Its outputs are not an LSTM's, so the bench skips the agreement check for it. What it
measures: how fast our path could be with XLA's own GEMMs if the gate math, the stores of the
activations and the loop bookkeeping cost nothing. In tokens/s, ours / gemms-only is about the
share of our time spent in GEMMs, and gemms-only / another implementation is the most that any
change to our gate math could bring against it.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from jax import lax

from cells import base, sequence
from cells.kernels import step_grads


def make(name: str, params, batch: int):
    """Returns apply(params, xs) -> ys for mode 'fwd' and a gradient function for 'fwd+bwd'."""
    hidden = params["w_hh"].shape[0]
    gates = params["w_hh"].shape[1] // hidden  # G: 4 for LSTM, 3 for GRU
    in_loop = batch >= sequence.IN_LOOP_MIN_BATCH
    fuse_dx = in_loop and name == "lstm"

    def forward(p, xs_TxBxI):
        xin = xs_TxBxI if in_loop else base.add_bias(xs_TxBxI @ p["w_ih"], p["b"])

        def body(h, x):
            g = (base.add_bias(x @ p["w_ih"], p["b"]) if in_loop else x) + h @ p["w_hh"]
            return g[:, :hidden], (g, h)

        h0 = jnp.zeros((xs_TxBxI.shape[1], hidden), xs_TxBxI.dtype)
        _, (gs, h_prev) = lax.scan(body, h0, xin)
        return gs, h_prev

    def apply(p, xs_BxTxI):
        gs, _ = forward(p, jnp.swapaxes(xs_BxTxI, 0, 1))
        return jnp.swapaxes(gs[..., :hidden], 0, 1)

    def grads(p, xs_BxTxI):
        xs = jnp.swapaxes(xs_BxTxI, 0, 1)
        gs, h_prev = forward(p, xs)
        w_T = (jnp.concatenate([p["w_hh"], p["w_ih"]], axis=0) if fuse_dx else p["w_hh"]).T

        def body(dh, g):
            dpre = g + jnp.concatenate([dh] * gates, axis=-1)
            out = dpre @ w_T
            return out[:, :hidden], (dpre, out[:, hidden:] if fuse_dx else None)

        _, (dpre, dxs) = lax.scan(body, jnp.zeros_like(h_prev[0]), gs, reverse=True)
        if not fuse_dx:
            dxs = dpre @ p["w_ih"].T
        d = {
            "w_hh": step_grads.weight_grad(h_prev, dpre),
            "w_ih": step_grads.weight_grad(xs, dpre),
            "b": jnp.sum(dpre, axis=(0, 1)),
        }
        if name == "gru":  # GRU's backward also rebuilds h_{t-1} W_hn, one GEMM over all steps
            d["b_hn"] = jnp.sum(h_prev @ p["w_hh"][:, 2 * hidden :], axis=(0, 1))
        return d, jnp.swapaxes(dxs, 0, 1)

    return jax.jit(apply), jax.jit(grads)
