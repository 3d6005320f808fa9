r"""Pallas whole-sequence kernels for the LSTM and the GRU: the recurrent weights stay on chip.

The input projection x_t W_ih + b is one large GEMM before the kernel (plain XLA); what is left
is the serial part, run by one `pallas_call` over time blocks of `block_steps` steps:

    grid      i = 0 .. T / Tb - 1, sequential ('arbitrary'): block i holds steps [i Tb, (i+1) Tb)
    resident  W_hh [H, G H] (its block index never changes, so it is fetched once and stays in
              VMEM on TPU -- FlashRNN's idea of keeping the recurrent weights on chip)
    scratch   the carry (h, and c for the LSTM) in VMEM, f32, across the time blocks
    per step  pre = gx_t + h_{t-1} W_hh (one [B, H] x [H, G H] matmul, f32 accumulation),
              the cell's gate math, h_t (and c_t) written out; a padded step (t >= lengths[b],
              mask 0) keeps the carry.

LSTM (gate order i, f, g, o, as `cells.LSTM`):
    i, f, o = sigmoid(pre_i, pre_f, pre_o),  g = tanh(pre_g)
    c_t = f c_{t-1} + i g,   h_t = o tanh(c_t)
GRU (gate order r, z, n, as `cells.GRU`, PyTorch's variant: the reset gate inside the product):
    r, z = sigmoid(gx_r + h W_hr + b_hr, gx_z + h W_hz + b_hz)
    n = tanh(gx_n + r (h W_hn + b_hn)),   h_t = (1 - z) n + z h_{t-1}

The backward is a second kernel under `jax.custom_vjp`, over the time blocks in reverse. It
recomputes each step's gates from gx_t and the stored h_{t-1} (one matmul) instead of storing
them (memory: the carries only, as the forward), and carries dh (and dc) in scratch:

    dpre_t = the gate derivatives (zero at padded steps),
    dh_{t-1} = dh_t^direct + dpre_t W_hh^T        (the GRU: + z dh, through its interpolation)

Its outputs are dpre [T, B, G H] and the initial carry's gradient; the weight gradients are
then single GEMMs outside (dW_hh = sum_t h_{t-1}^T dpre_t), and dx, dW_ih, db come from
differentiating the input projection.

Platforms: these kernels are written for Mosaic TPU (VMEM scratch, a sequential grid). On CPU
they run in Pallas' TPU interpret mode (`interpret=True` by default there), which is how they
are tested against `cells.reference_scan`; `experiments/studies/accelerators/check_tpu.py`
compiles them deviceless for v5e and v6e. TPU tiling wants B a multiple of 8 and H a multiple of
128. On GPU, `scan` takes the Triton variant of `cells.kernels.pallas_rnn_triton`
(`target='triton'`): the same equations and backward contract, one program per 16 sequences
running the whole time loop, so both share `recurrence` and its weight gradients. Neither is the
default path anywhere: `cells.scan(..., backend='pallas')` asks for them, and the XLA scan stays
the default until a device measures them faster."""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
from jax import lax
from jax.experimental import pallas as pl
from jax.experimental.pallas import tpu as pltpu

KINDS = ("lstm", "gru")
NUM_GATES = {"lstm": 4, "gru": 3}
NUM_CARRIES = {"lstm": 2, "gru": 1}  # (h, c) or (h,)


def _gates(kind, pre, h, c, b_hn, hidden):
    """One step's gate math from pre = gx_t + h W_hh ([B, G H], f32): (h_t, c_t, acts)."""
    if kind == "lstm":
        i = jax.nn.sigmoid(pre[:, :hidden])
        f = jax.nn.sigmoid(pre[:, hidden : 2 * hidden])
        g = jnp.tanh(pre[:, 2 * hidden : 3 * hidden])
        o = jax.nn.sigmoid(pre[:, 3 * hidden :])
        c_new = f * c + i * g
        return o * jnp.tanh(c_new), c_new, (i, f, g, o)
    raise NotImplementedError(kind)


def _gru_step(gx, hw, h, b_hn, hidden):
    """The GRU step from gx_t [B, 3H] and hw = h W_hh [B, 3H]: (h_t, (r, z, n, hn))."""
    r = jax.nn.sigmoid(gx[:, :hidden] + hw[:, :hidden])
    z = jax.nn.sigmoid(gx[:, hidden : 2 * hidden] + hw[:, hidden : 2 * hidden])
    hn = hw[:, 2 * hidden :] + b_hn
    n = jnp.tanh(gx[:, 2 * hidden :] + r * hn)
    return (1.0 - z) * n + z * h, (r, z, n, hn)


def _forward_kernel(kind, block_steps, hidden, *refs):
    if kind == "lstm":
        gx_ref, w_ref, bhn_ref, h0_ref, c0_ref, m_ref, hs_ref, cs_ref, h_scr, c_scr = refs
    else:
        gx_ref, w_ref, bhn_ref, h0_ref, m_ref, hs_ref, h_scr = refs

    @pl.when(pl.program_id(0) == 0)
    def _():
        h_scr[...] = h0_ref[...].astype(jnp.float32)
        if kind == "lstm":
            c_scr[...] = c0_ref[...].astype(jnp.float32)

    b_hn = bhn_ref[...].astype(jnp.float32)

    def step(t, carry):
        h, c = carry
        hw = jnp.dot(h.astype(w_ref.dtype), w_ref[...], preferred_element_type=jnp.float32)
        gx = gx_ref[t].astype(jnp.float32)
        if kind == "lstm":
            h_new, c_new, _ = _gates(kind, gx + hw, h, c, b_hn, hidden)
        else:
            h_new, _ = _gru_step(gx, hw, h, b_hn, hidden)
            c_new = c
        keep = m_ref[t] > 0  # [B, 1]
        h_new = jnp.where(keep, h_new, h)
        hs_ref[t] = h_new.astype(hs_ref.dtype)
        if kind == "lstm":
            c_new = jnp.where(keep, c_new, c)
            cs_ref[t] = c_new.astype(cs_ref.dtype)
        return h_new, c_new

    c_init = c_scr[...] if kind == "lstm" else jnp.zeros((), jnp.float32)
    h, c = lax.fori_loop(0, block_steps, step, (h_scr[...], c_init))
    h_scr[...] = h
    if kind == "lstm":
        c_scr[...] = c


def _backward_kernel(kind, block_steps, hidden, num_blocks, *refs):
    if kind == "lstm":
        (gx_ref, w_ref, bhn_ref, hp_ref, cp_ref, m_ref, dhs_ref, dcs_ref,
         dpre_ref, dh0_ref, dc0_ref, dh_scr, dc_scr) = refs  # fmt: skip
    else:
        (gx_ref, w_ref, bhn_ref, hp_ref, m_ref, dhs_ref,
         dpre_ref, dhn_ref, dh0_ref, dh_scr) = refs  # fmt: skip

    @pl.when(pl.program_id(0) == 0)
    def _():
        dh_scr[...] = jnp.zeros_like(dh_scr)
        if kind == "lstm":
            dc_scr[...] = jnp.zeros_like(dc_scr)

    b_hn = bhn_ref[...].astype(jnp.float32)

    def step(k, carry):
        t = block_steps - 1 - k
        dh, dc = carry
        h_prev = hp_ref[t].astype(jnp.float32)
        hw = jnp.dot(h_prev.astype(w_ref.dtype), w_ref[...], preferred_element_type=jnp.float32)
        gx = gx_ref[t].astype(jnp.float32)
        dh = dh + dhs_ref[t].astype(jnp.float32)
        keep = m_ref[t] > 0  # [B, 1]
        if kind == "lstm":
            c_prev = cp_ref[t].astype(jnp.float32)
            dc = dc + dcs_ref[t].astype(jnp.float32)
            _, c_new, (i, f, g, o) = _gates(kind, gx + hw, h_prev, c_prev, b_hn, hidden)
            tc = jnp.tanh(c_new)
            dct = dc + dh * o * (1.0 - tc * tc)
            dpre = jnp.concatenate(
                [
                    dct * g * i * (1.0 - i),
                    dct * c_prev * f * (1.0 - f),
                    dct * i * (1.0 - g * g),
                    dh * tc * o * (1.0 - o),
                ],
                axis=-1,
            )
            dc_prev = dct * f
            dhw = dpre  # d(h W_hh) = d(pre)
            dh_direct = jnp.zeros_like(dh)
        else:
            _, (r, z, n, hn) = _gru_step(gx, hw, h_prev, b_hn, hidden)
            dn = dh * (1.0 - z) * (1.0 - n * n)  # d(pre_n)
            dpre_r = dn * hn * r * (1.0 - r)
            dpre_z = dh * (h_prev - n) * z * (1.0 - z)
            dpre = jnp.concatenate([dpre_r, dpre_z, dn], axis=-1)  # d(gx)
            dhw = jnp.concatenate([dpre_r, dpre_z, dn * r], axis=-1)  # d(h W_hh)
            dh_direct = dh * z
        dh_prev = dh_direct + lax.dot_general(
            dhw.astype(w_ref.dtype),
            w_ref[...],
            (((1,), (1,)), ((), ())),
            preferred_element_type=jnp.float32,
        )
        dpre_ref[t] = jnp.where(keep, dpre, 0.0).astype(dpre_ref.dtype)
        if kind == "gru":  # the n block of d(h W_hh) differs from d(gx_n): it is dn * r
            dhn_ref[t] = jnp.where(keep, dn * r, 0.0).astype(dhn_ref.dtype)
        if kind == "lstm":
            dc = jnp.where(keep, dc_prev, dc)
        return jnp.where(keep, dh_prev, dh), dc

    dc_init = dc_scr[...] if kind == "lstm" else jnp.zeros((), jnp.float32)
    dh, dc = lax.fori_loop(0, block_steps, step, (dh_scr[...], dc_init))
    dh_scr[...] = dh
    if kind == "lstm":
        dc_scr[...] = dc

    @pl.when(pl.program_id(0) == num_blocks - 1)
    def _():
        dh0_ref[...] = dh.astype(dh0_ref.dtype)
        if kind == "lstm":
            dc0_ref[...] = dc.astype(dc0_ref.dtype)


def _specs(block_steps, batch, widths, reverse_blocks=None):
    """BlockSpecs of time-major [T, B, width] arrays, block i (or num_blocks - 1 - i)."""
    if reverse_blocks is None:
        index = lambda i: (i, 0, 0)  # noqa: E731
    else:
        index = lambda i: (reverse_blocks - 1 - i, 0, 0)  # noqa: E731
    return [pl.BlockSpec((block_steps, batch, w), index) for w in widths]


def _whole(shape):
    """A block that is the whole array at every grid step: fetched once, one buffer (no double
    buffering: its index never changes), so W_hh costs its size in VMEM once."""
    return pl.BlockSpec(shape, lambda i: (0,) * len(shape), pipeline_mode=pl.Buffered(1))


def _params(interpret):
    return pltpu.InterpretParams() if interpret else False


VMEM_CAP_BYTES = 110 * 2**20  # of the 128 MiB a v5e / v6e TensorCore has, headroom kept


def _tiled(rows: int, cols: int, itemsize: int = 4) -> int:
    """Bytes of a [rows, cols] VMEM tile set: rows padded to 8 sublanes, cols to 128 lanes."""
    return -(-rows // 8) * 8 * (-(-cols // 128) * 128) * itemsize


def vmem_bytes(kind: str, batch: int, hidden: int, block_steps: int, weight_itemsize=4) -> int:
    """The larger of the forward and backward kernels' VMEM blocks: double-buffered time
    blocks, W_hh and the other whole-array blocks once, the scratch carries. The compiler
    adds its temporaries (the step's [B, G H] values) on top; `vmem_limit` leaves room."""
    gh, n_carry = NUM_GATES[kind] * hidden, NUM_CARRIES[kind]
    step_block = 2 * block_steps  # two buffers of Tb steps
    weights = _tiled(hidden, gh, weight_itemsize) + _tiled(1, hidden)
    carries = n_carry * _tiled(batch, hidden)
    mask = step_block * _tiled(batch, 1)
    forward = (
        step_block * _tiled(batch, gh) + weights + carries + mask
        + n_carry * step_block * _tiled(batch, hidden) + carries
    )  # fmt: skip
    backward = (
        2 * step_block * _tiled(batch, gh)  # gx in, dpre out
        + weights + mask
        + 2 * n_carry * step_block * _tiled(batch, hidden)  # previous carries, cotangents
        + (kind == "gru") * step_block * _tiled(batch, hidden)  # d(h W_hn)
        + 2 * carries  # d carry0 out, scratch
    )  # fmt: skip
    return max(forward, backward)


def vmem_limit(kind: str, batch: int, hidden: int, block_steps: int, weight_itemsize=4) -> int:
    """The scoped-VMEM limit to compile with: the blocks plus a quarter and 4 MiB for the
    compiler's temporaries. Raises ValueError past VMEM_CAP_BYTES."""
    need = vmem_bytes(kind, batch, hidden, block_steps, weight_itemsize)
    limit = int(need * 1.25) + 4 * 2**20
    if limit > VMEM_CAP_BYTES:
        raise ValueError(
            f"backend='pallas': {kind} at B={batch}, H={hidden}, block_steps={block_steps} needs "
            f"about {limit / 2**20:.0f} MiB of VMEM, over the {VMEM_CAP_BYTES / 2**20:.0f} MiB "
            "kept for it; use a smaller block_steps or batch, a bfloat16 compute_dtype, or "
            "backend='xla'."
        )
    return limit


def _compiler_params(vmem_limit_bytes):
    return pltpu.CompilerParams(
        dimension_semantics=("arbitrary",), vmem_limit_bytes=vmem_limit_bytes
    )


def forward(kind, gx, w_hh, b_hn, carry0, mask, block_steps, interpret, vmem_limit_bytes=None):
    """The carry sequences (hs [T, B, H],) or (hs, cs) from gx [T, B, G H] (time-major)."""
    steps, batch, gh = gx.shape
    hidden = gh // NUM_GATES[kind]
    num_blocks = steps // block_steps
    n_carry = NUM_CARRIES[kind]
    if vmem_limit_bytes is None and not interpret:
        vmem_limit_bytes = vmem_limit(kind, batch, hidden, block_steps, w_hh.dtype.itemsize)
    in_specs = (
        _specs(block_steps, batch, [gh])
        + [_whole(w_hh.shape), _whole(b_hn.shape)]
        + [_whole((batch, hidden))] * n_carry
        + _specs(block_steps, batch, [1])
    )
    out_shape = [jax.ShapeDtypeStruct((steps, batch, hidden), jnp.float32)] * n_carry
    return pl.pallas_call(
        functools.partial(_forward_kernel, kind, block_steps, hidden),
        grid=(num_blocks,),
        in_specs=in_specs,
        out_specs=_specs(block_steps, batch, [hidden] * n_carry),
        out_shape=out_shape,
        scratch_shapes=[pltpu.VMEM((batch, hidden), jnp.float32)] * n_carry,
        compiler_params=_compiler_params(vmem_limit_bytes),
        interpret=_params(interpret),
    )(gx, w_hh, b_hn, *carry0, mask)


def backward(
    kind, gx, w_hh, b_hn, prev, mask, d_carries, block_steps, interpret, vmem_limit_bytes=None
):
    """(dpre [T, B, G H], dhw [T, B, G H], d carry0) from the stored previous carries `prev`
    ((h_{t-1},) or (h_{t-1}, c_{t-1}), each [T, B, H]) and the carry cotangents; dpre is the
    gradient of gx, dhw that of h_{t-1} W_hh (the same for the LSTM)."""
    steps, batch, gh = gx.shape
    hidden = gh // NUM_GATES[kind]
    num_blocks = steps // block_steps
    n_carry = NUM_CARRIES[kind]
    if vmem_limit_bytes is None and not interpret:
        vmem_limit_bytes = vmem_limit(kind, batch, hidden, block_steps, w_hh.dtype.itemsize)
    seq = functools.partial(_specs, block_steps, batch, reverse_blocks=num_blocks)
    in_specs = (
        seq([gh])
        + [_whole(w_hh.shape), _whole(b_hn.shape)]
        + seq([hidden] * n_carry)
        + seq([1])
        + seq([hidden] * n_carry)
    )
    per_step = [(steps, batch, gh)] + [(steps, batch, hidden)] * (kind == "gru")
    out_shape = [jax.ShapeDtypeStruct(s, jnp.float32) for s in per_step]
    out_shape += [jax.ShapeDtypeStruct((batch, hidden), jnp.float32)] * n_carry
    out_specs = seq([s[-1] for s in per_step]) + [_whole((batch, hidden))] * n_carry
    outs = pl.pallas_call(
        functools.partial(_backward_kernel, kind, block_steps, hidden, num_blocks),
        grid=(num_blocks,),
        in_specs=in_specs,
        out_specs=out_specs,
        out_shape=out_shape,
        scratch_shapes=[pltpu.VMEM((batch, hidden), jnp.float32)] * n_carry,
        compiler_params=_compiler_params(vmem_limit_bytes),
        interpret=_params(interpret),
    )(gx, w_hh, b_hn, *prev, mask, *d_carries)
    if kind == "lstm":
        return outs[0], outs[0], tuple(outs[1:])
    dpre, dhn = outs[0], outs[1]
    return dpre, jnp.concatenate([dpre[..., : 2 * hidden], dhn], axis=-1), tuple(outs[2:])


def _forward_any(kind, gx, w_hh, b_hn, carry0, mask, block_steps, interpret, vmem_limit_bytes,
                 target):  # fmt: skip
    if target == "triton":
        from cells.kernels import pallas_rnn_triton

        return pallas_rnn_triton.forward(kind, gx, w_hh, b_hn, carry0, mask, interpret)
    return forward(kind, gx, w_hh, b_hn, carry0, mask, block_steps, interpret, vmem_limit_bytes)


@functools.partial(jax.custom_vjp, nondiff_argnums=(0, 6, 7, 8, 9))
def recurrence(
    kind, gx, w_hh, b_hn, carry0, mask, block_steps, interpret, vmem_limit_bytes, target="tpu"
):
    """The carry sequences ((hs,) or (hs, cs), each [T, B, H], f32) of the recurrence from gx
    [T, B, G H] (time-major, T a multiple of block_steps), w_hh [H, G H], b_hn [1, H] (the
    GRU's; unused by the LSTM), carry0 ((h0,) or (h0, c0), [B, H]) and mask [T, B, 1] (1 at
    valid steps). Differentiable in gx, w_hh, b_hn and carry0 by the backward kernel.
    `target`: 'tpu' (Mosaic TPU kernels, time blocks of `block_steps`) or 'triton' (the GPU
    kernels of `cells.kernels.pallas_rnn_triton`, B a multiple of its BATCH_BLOCK)."""
    return tuple(
        _forward_any(
            kind, gx, w_hh, b_hn, carry0, mask, block_steps, interpret, vmem_limit_bytes, target
        )
    )


def _recurrence_fwd(
    kind, gx, w_hh, b_hn, carry0, mask, block_steps, interpret, vmem_limit_bytes, target
):
    outs = recurrence(
        kind, gx, w_hh, b_hn, carry0, mask, block_steps, interpret, vmem_limit_bytes, target
    )
    return outs, (gx, w_hh, b_hn, carry0, mask, outs)


def _recurrence_bwd(kind, block_steps, interpret, vmem_limit_bytes, target, residuals, d_outs):
    gx, w_hh, b_hn, carry0, mask, outs = residuals
    prev = tuple(
        jnp.concatenate([c0.astype(jnp.float32)[None], seq[:-1]])
        for c0, seq in zip(carry0, outs, strict=True)
    )
    if target == "triton":
        from cells.kernels import pallas_rnn_triton

        dpre, dhw, d_carry0 = pallas_rnn_triton.backward(
            kind, gx, w_hh, b_hn, prev, mask, d_outs, interpret
        )
    else:
        dpre, dhw, d_carry0 = backward(
            kind, gx, w_hh, b_hn, prev, mask, d_outs, block_steps, interpret, vmem_limit_bytes
        )
    d_w_hh = jnp.einsum("tbh,tbg->hg", prev[0], dhw, preferred_element_type=jnp.float32)
    hidden = w_hh.shape[0]
    d_b_hn = jnp.sum(dhw[..., 2 * hidden :], axis=(0, 1))[None] if kind == "gru" else None
    d_b_hn = jnp.zeros_like(b_hn) if d_b_hn is None else d_b_hn.astype(b_hn.dtype)
    return (
        dpre.astype(gx.dtype),
        d_w_hh.astype(w_hh.dtype),
        d_b_hn,
        tuple(d.astype(c.dtype) for d, c in zip(d_carry0, carry0, strict=True)),
        jnp.zeros_like(mask),
    )


recurrence.defvjp(_recurrence_fwd, _recurrence_bwd)


# -- the sequence-level entry point (cells.scan(..., backend='pallas')) ---------------------
BLOCK_STEPS = 16  # time steps per grid block (T is padded up to a multiple with masked steps)


def kind_of(cell) -> str | None:
    """'lstm' or 'gru' for the cells these kernels implement exactly, else None: the plain
    `cells.LSTM` (no peephole, coupling, projection, layer norm or heads) and the plain
    reset-after `cells.GRU` (no layer norm or heads)."""
    from cells import gru, lstm

    if isinstance(cell, lstm.LSTM) and cell.is_plain:
        return "lstm"
    if isinstance(cell, gru.GRU) and cell.is_plain and cell.reset_after:
        return "gru"
    return None


def scan(cell, params, xs_BxTxI, carry, lengths=None, block_steps=BLOCK_STEPS, interpret=None,
         vmem_limit_bytes=None, target=None):  # fmt: skip
    """`cells.scan` for the plain LSTM and GRU by the Pallas kernels: (ys [B, T, H], carry).

    `carry` is the cell's carry ([B, H] fields); `lengths` [B] right-padded lengths or None.
    `target`: 'tpu' (the Mosaic TPU kernels above) or 'triton' (the GPU kernels of
    `cells.kernels.pallas_rnn_triton`); None picks 'triton' on GPU, else 'tpu'. `interpret`:
    None runs compiled on TPU / GPU and in Pallas' interpreter on CPU (for tests; slow).
    Values equal the XLA scan's up to float rounding (f32 gate math and carries; the recurrent
    matmul in w_hh's dtype, or the cell's compute_dtype when set, with f32 accumulation).
    """
    kind = kind_of(cell)
    if kind is None:
        raise ValueError(
            f"backend='pallas' implements the plain LSTM and the plain reset-after GRU; "
            f"{cell!r} is another cell or variant: use backend='xla'."
        )
    platform = jax.default_backend()
    if target is None:
        target = "triton" if platform == "gpu" else "tpu"
    if target not in ("tpu", "triton"):
        raise ValueError(f"backend='pallas': target must be 'tpu' or 'triton', got {target!r}.")
    if interpret is None:
        interpret = platform != {"tpu": "tpu", "triton": "gpu"}[target]
    batch, steps, _ = xs_BxTxI.shape
    hidden = cell.hidden_size
    gx_TxBxG = jnp.swapaxes(cell.input_projection(params, xs_BxTxI), 0, 1).astype(jnp.float32)
    valid = jnp.ones((steps, batch), bool) if lengths is None else (
        jnp.arange(steps)[:, None] < jnp.asarray(lengths)[None, :]
    )  # fmt: skip
    carry0 = tuple(c.astype(jnp.float32) for c in carry)
    if target == "triton":  # the whole time loop per program; the batch padded to its block
        from cells.kernels import pallas_rnn_triton

        pallas_rnn_triton.check_hidden(hidden)
        block_steps, padded = steps, steps
        rows = -(-batch // pallas_rnn_triton.BATCH_BLOCK) * pallas_rnn_triton.BATCH_BLOCK
    else:  # time blocks of block_steps, T padded up with masked steps
        block_steps = max(1, min(block_steps, steps))
        padded, rows = -(-steps // block_steps) * block_steps, batch
    mask = jnp.pad(valid, ((0, padded - steps), (0, rows - batch))).astype(jnp.float32)[..., None]
    gx_TxBxG = jnp.pad(gx_TxBxG, ((0, padded - steps), (0, rows - batch), (0, 0)))
    carry0 = tuple(jnp.pad(c, ((0, rows - batch), (0, 0))) for c in carry0)
    w_hh = params["w_hh"]
    if cell.compute_dtype is not None:
        w_hh = w_hh.astype(cell.compute_dtype)
    b_hn = params["b_hn"] if kind == "gru" else jnp.zeros((hidden,), jnp.float32)
    outs = recurrence(
        kind, gx_TxBxG, w_hh, b_hn[None], carry0, mask, block_steps, interpret,
        vmem_limit_bytes, target,
    )  # fmt: skip
    hs = outs[0][:steps, :batch]
    ys = jnp.swapaxes(jnp.where(mask[:steps, :batch] > 0, hs, 0.0), 0, 1)
    final = type(carry)(*(o[-1, :batch].astype(c.dtype) for o, c in zip(outs, carry, strict=True)))
    return ys.astype(carry[0].dtype), final
