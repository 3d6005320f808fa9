r"""The GPU variant of the Pallas LSTM/GRU kernels (`cells.kernels.pallas_rnn`), for Triton.

Why Triton rather than Mosaic GPU: jax 0.10's Mosaic GPU lowering has no `dot_general` for the
per-thread (lane) semantics a small recurrent matmul needs and targets Hopper's warpgroup
instructions, while Pallas' Triton lowering takes an ordinary `jnp.dot` on any NVIDIA (or AMD)
GPU that Triton supports; its custom call is compiled by XLA's GPU backend.

The same equations as the TPU kernels (gate order i, f, g, o and r, z, n), organised for a GPU:

    grid      one program per block of BATCH_BLOCK = 16 sequences (the programs run in parallel
              on the streaming multiprocessors; the batch is padded up with masked rows)
    per program  the whole time loop (a `fori_loop` over T inside the kernel, so there is one
              kernel launch per sequence rather than one per step), the carry in registers
    weights   W_hh is read gate block by gate block ([H, H] tiles). With `resident=True` the
              tiles are loaded once before the loop and stay on chip across all steps (registers,
              spilled by the compiler past its budget: FlashRNN's idea, for small H); with
              False they are re-read every step (from L2 after the first), for any H.
    per step  pre_k = gx_t[k] + h_{t-1} W_hh[k] per gate k (f32 accumulation), the gate math,
              h_t (and c_t) stored; a padded step (mask 0) keeps the carry.

The backward kernel runs the loop in reverse, recomputing the gates from gx_t and the stored
h_{t-1} (and c_{t-1}), and returns dpre [T, B, G H] (the gradient of gx), for the GRU also
d(h W_hn) = dn * r, and the initial carry's gradient -- the contract of the TPU backward, so
`pallas_rnn.recurrence` takes the weight gradients outside as single GEMMs either way.

Triton needs power-of-two tile sizes of at least 16 for a matmul: H must be a power of two,
>= 16. Values are never sliced inside the kernel (Triton has no tensor slicing): every gate
block is its own load and store. In interpret mode (`interpret=True`, Pallas' generic
interpreter) the kernels run on CPU, which is how they are tested against `cells.reference_scan`;
`jax.export` lowers them for 'cuda' (a `__gpu$xla.gpu.triton` custom call) on this CPU too.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
from jax import lax
from jax.experimental import pallas as pl
from jax.experimental.pallas import triton as pltriton

BATCH_BLOCK = 16  # sequences per program (the smallest M of a Triton matmul)
RESIDENT_BYTES = 64 * 2**10  # W_hh up to this size is loaded once (H <= 64 for an f32 LSTM)
NUM_GATES = {"lstm": 4, "gru": 3}
NUM_WARPS = 4


def check_hidden(hidden: int) -> None:
    """ValueError unless H is a power of two >= 16 (Triton's matmul tiles)."""
    if hidden < 16 or hidden & (hidden - 1):
        raise ValueError(
            f"backend='pallas' on GPU (Triton) needs hidden_size a power of two >= 16, got "
            f"{hidden}; use backend='xla'."
        )


def _dot(a, b, transpose_b=False):
    """a [M, K] @ b [K, N] (or b^T for b [N, K]) with f32 accumulation, IEEE f32 when both are
    f32 (Triton would otherwise use TF32)."""
    precision = lax.Precision.HIGHEST if b.dtype == jnp.float32 else None
    dims = (((1,), (1 if transpose_b else 0,)), ((), ()))
    return lax.dot_general(
        a.astype(b.dtype), b, dims, precision=precision, preferred_element_type=jnp.float32
    )


def _weights(w_ref, kind, hidden):
    """The gate blocks of W_hh, [H, H] each (loaded now)."""
    return tuple(w_ref[:, pl.ds(k * hidden, hidden)] for k in range(NUM_GATES[kind]))


def _gx(gx_ref, t, rows, kind, hidden):
    return tuple(
        gx_ref[t, rows, pl.ds(k * hidden, hidden)].astype(jnp.float32)
        for k in range(NUM_GATES[kind])
    )


def _lstm_gates(gx, hw, c):
    i = jax.nn.sigmoid(gx[0] + hw[0])
    f = jax.nn.sigmoid(gx[1] + hw[1])
    g = jnp.tanh(gx[2] + hw[2])
    o = jax.nn.sigmoid(gx[3] + hw[3])
    c_new = f * c + i * g
    return o * jnp.tanh(c_new), c_new, (i, f, g, o)


def _gru_gates(gx, hw, h, b_hn):
    r = jax.nn.sigmoid(gx[0] + hw[0])
    z = jax.nn.sigmoid(gx[1] + hw[1])
    hn = hw[2] + b_hn
    n = jnp.tanh(gx[2] + r * hn)
    return (1.0 - z) * n + z * h, (r, z, n, hn)


def _forward_kernel(kind, hidden, steps, resident, *refs):
    if kind == "lstm":
        gx_ref, w_ref, bhn_ref, h0_ref, c0_ref, m_ref, hs_ref, cs_ref = refs
    else:
        gx_ref, w_ref, bhn_ref, h0_ref, m_ref, hs_ref = refs
    rows = pl.ds(pl.program_id(0) * BATCH_BLOCK, BATCH_BLOCK)
    b_hn = bhn_ref[...].astype(jnp.float32)  # [1, H]
    held = _weights(w_ref, kind, hidden) if resident else None

    def step(t, carry):
        h, c = carry
        w = held if resident else _weights(w_ref, kind, hidden)
        hw = tuple(_dot(h, w_k) for w_k in w)
        gx = _gx(gx_ref, t, rows, kind, hidden)
        if kind == "lstm":
            h_new, c_new, _ = _lstm_gates(gx, hw, c)
        else:
            h_new, _ = _gru_gates(gx, hw, h, b_hn)
            c_new = c
        keep = m_ref[t, rows, :] > 0  # [Bb, 1]
        h_new = jnp.where(keep, h_new, h)
        hs_ref[t, rows, :] = h_new.astype(hs_ref.dtype)
        if kind == "lstm":
            c_new = jnp.where(keep, c_new, c)
            cs_ref[t, rows, :] = c_new.astype(cs_ref.dtype)
        return h_new, c_new

    h0 = h0_ref[rows, :].astype(jnp.float32)
    c0 = c0_ref[rows, :].astype(jnp.float32) if kind == "lstm" else jnp.zeros_like(h0)
    lax.fori_loop(0, steps, step, (h0, c0))


def _backward_kernel(kind, hidden, steps, resident, *refs):
    if kind == "lstm":
        (gx_ref, w_ref, bhn_ref, hp_ref, cp_ref, m_ref, dhs_ref, dcs_ref,
         dpre_ref, dh0_ref, dc0_ref) = refs  # fmt: skip
    else:
        gx_ref, w_ref, bhn_ref, hp_ref, m_ref, dhs_ref, dpre_ref, dhn_ref, dh0_ref = refs
    rows = pl.ds(pl.program_id(0) * BATCH_BLOCK, BATCH_BLOCK)
    b_hn = bhn_ref[...].astype(jnp.float32)
    held = _weights(w_ref, kind, hidden) if resident else None

    def store(ref, t, k, value, keep):
        ref[t, rows, pl.ds(k * hidden, hidden)] = jnp.where(keep, value, 0.0).astype(ref.dtype)

    def step(j, carry):
        t = steps - 1 - j
        dh, dc = carry
        w = held if resident else _weights(w_ref, kind, hidden)
        h_prev = hp_ref[t, rows, :].astype(jnp.float32)
        hw = tuple(_dot(h_prev, w_k) for w_k in w)
        gx = _gx(gx_ref, t, rows, kind, hidden)
        keep = m_ref[t, rows, :] > 0
        dh = dh + dhs_ref[t, rows, :].astype(jnp.float32)
        if kind == "lstm":
            c_prev = cp_ref[t, rows, :].astype(jnp.float32)
            dc = dc + dcs_ref[t, rows, :].astype(jnp.float32)
            _, c_new, (i, f, g, o) = _lstm_gates(gx, hw, c_prev)
            tc = jnp.tanh(c_new)
            dct = dc + dh * o * (1.0 - tc * tc)
            dpre = (
                dct * g * i * (1.0 - i),
                dct * c_prev * f * (1.0 - f),
                dct * i * (1.0 - g * g),
                dh * tc * o * (1.0 - o),
            )
            dhw = dpre
            dh_prev = jnp.zeros_like(dh)
            dc = jnp.where(keep, dct * f, dc)
        else:
            _, (r, z, n, hn) = _gru_gates(gx, hw, h_prev, b_hn)
            dn = dh * (1.0 - z) * (1.0 - n * n)
            dpre = (dn * hn * r * (1.0 - r), dh * (h_prev - n) * z * (1.0 - z), dn)
            dhw = (dpre[0], dpre[1], dn * r)
            dh_prev = dh * z
            store(dhn_ref, t, 0, dn * r, keep)
        for d_k, w_k in zip(dhw, w, strict=True):
            dh_prev = dh_prev + _dot(d_k, w_k, transpose_b=True)
        for k, d_k in enumerate(dpre):
            store(dpre_ref, t, k, d_k, keep)
        return jnp.where(keep, dh_prev, dh), dc

    zeros = jnp.zeros((BATCH_BLOCK, hidden), jnp.float32)
    dh, dc = lax.fori_loop(0, steps, step, (zeros, zeros))
    dh0_ref[rows, :] = dh.astype(dh0_ref.dtype)
    if kind == "lstm":
        dc0_ref[rows, :] = dc.astype(dc0_ref.dtype)


def _call(kernel, out_shape, batch, interpret):
    return pl.pallas_call(
        kernel,
        grid=(batch // BATCH_BLOCK,),
        out_shape=out_shape,
        compiler_params=pltriton.CompilerParams(num_warps=NUM_WARPS, num_stages=1),
        interpret=interpret,
    )


def resident_default(kind: str, hidden: int, itemsize: int) -> bool:
    """Whether W_hh is small enough to hold on chip across the loop (RESIDENT_BYTES)."""
    return NUM_GATES[kind] * hidden * hidden * itemsize <= RESIDENT_BYTES


def forward(kind, gx, w_hh, b_hn, carry0, mask, interpret, resident=None):
    """The carry sequences ((hs,) or (hs, cs), [T, B, H] f32) from gx [T, B, G H] (time-major,
    B a multiple of BATCH_BLOCK), w_hh [H, G H], b_hn [1, H], carry0 [B, H] each, mask
    [T, B, 1]."""
    steps, batch, gh = gx.shape
    hidden = gh // NUM_GATES[kind]
    if resident is None:
        resident = resident_default(kind, hidden, w_hh.dtype.itemsize)
    n_carry = 2 if kind == "lstm" else 1
    out_shape = [jax.ShapeDtypeStruct((steps, batch, hidden), jnp.float32)] * n_carry
    kernel = functools.partial(_forward_kernel, kind, hidden, steps, resident)
    return _call(kernel, out_shape, batch, interpret)(gx, w_hh, b_hn, *carry0, mask)


def backward(kind, gx, w_hh, b_hn, prev, mask, d_carries, interpret, resident=None):
    """(dpre, dhw, d carry0) as `pallas_rnn.backward`: dpre [T, B, G H] the gradient of gx, dhw
    that of h_{t-1} W_hh (dpre for the LSTM; for the GRU its n block is dn * r)."""
    steps, batch, gh = gx.shape
    hidden = gh // NUM_GATES[kind]
    if resident is None:
        resident = resident_default(kind, hidden, w_hh.dtype.itemsize)
    n_carry = 2 if kind == "lstm" else 1
    out_shape = [jax.ShapeDtypeStruct((steps, batch, gh), jnp.float32)]
    out_shape += [jax.ShapeDtypeStruct((steps, batch, hidden), jnp.float32)] * (kind == "gru")
    out_shape += [jax.ShapeDtypeStruct((batch, hidden), jnp.float32)] * n_carry
    kernel = functools.partial(_backward_kernel, kind, hidden, steps, resident)
    outs = _call(kernel, out_shape, batch, interpret)(gx, w_hh, b_hn, *prev, mask, *d_carries)
    if kind == "lstm":
        return outs[0], outs[0], tuple(outs[1:])
    dpre, dhn = outs[0], outs[1]
    return dpre, jnp.concatenate([dpre[..., : 2 * hidden], dhn], axis=-1), tuple(outs[2:])
