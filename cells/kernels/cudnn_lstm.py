"""The plain LSTM through cuDNN (`jax.experimental.rnn.lstm`): `cells.scan(..., backend='cudnn')`.

cuDNN's RNN is one fused library call for the whole sequence, forward and backward; on GPU it
is the baseline every framework's LSTM is measured against (PyTorch's nn.LSTM calls it too).
Our parameters map onto its packed weight vector exactly (PyTorch's layout, gate order i, f,
g, o):

    weights = [W_ih^T (4H x I) | W_hh^T (4H x H) | b_ih = b (4H) | b_hh = 0 (4H)]

so the same params give the same function, and gradients flow back through the packing to
w_ih, w_hh and b. Right-padded `lengths` become cuDNN's seq_lengths (int32); an initial carry
is h_0, c_0 of one layer and direction; an empty sequence (length 0, which cuDNN refuses)
runs one step whose output and carry are then dropped, so it keeps the given carry.

Limits (one-line ValueErrors): the plain `cells.LSTM` only (no peephole, coupling,
projection, layer norm or heads), float32 inputs and weights, a GPU (`jax.experimental.rnn`
lowers only for CUDA; jaxlib's CPU build cannot lower it, so it is untested on this CPU
machine except through `reference=True`, which runs `jax.experimental.rnn.lstm_ref` on the
same packed weights: the packing and the wrapper are tested, the cuDNN call itself is not).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp


def weights(params) -> jax.Array:
    """Our LSTM params as cuDNN's packed float32 vector (see the module docstring)."""
    w_ih, w_hh, b = params["w_ih"], params["w_hh"], params["b"]
    return jnp.concatenate(
        [jnp.ravel(w_ih.T), jnp.ravel(w_hh.T), jnp.ravel(b), jnp.zeros_like(jnp.ravel(b))]
    )


def check(cell, xs, params) -> None:
    from cells import lstm

    if not (isinstance(cell, lstm.LSTM) and cell.is_plain):
        raise ValueError(
            f"backend='cudnn' runs the plain LSTM only; {cell!r} is another cell or variant: "
            "use backend='xla'."
        )
    dtypes = {jnp.dtype(xs.dtype), *(jnp.dtype(p.dtype) for p in jax.tree.leaves(params))}
    if dtypes != {jnp.dtype(jnp.float32)} or cell.compute_dtype not in (None, jnp.float32):
        raise ValueError(
            f"backend='cudnn' takes float32 inputs, params and compute (got "
            f"{sorted(str(d) for d in dtypes)}, compute_dtype={cell.compute_dtype}); "
            "use backend='xla' for other dtypes."
        )


def scan(cell, params, xs_BxTxI, carry, lengths=None, reference: bool = False):
    """(ys [B, T, H], LSTMState) by cuDNN (`reference=True`: `lstm_ref`, runs anywhere)."""
    from jax.experimental import rnn

    check(cell, xs_BxTxI, params)
    if not reference and jax.default_backend() != "gpu":
        raise ValueError(
            f"backend='cudnn' needs a GPU (cuDNN); this process runs on "
            f"{jax.default_backend()!r}: use backend='xla'."
        )
    batch, steps, inputs = xs_BxTxI.shape
    hidden = cell.hidden_size
    seq_lengths = jnp.full((batch,), steps, jnp.int32) if lengths is None else (
        jnp.asarray(lengths, jnp.int32)
    )  # fmt: skip
    h0, c0 = (c.astype(jnp.float32)[None] for c in carry)  # [layers * directions = 1, B, H]
    empty = seq_lengths == 0  # cuDNN wants lengths >= 1: run one step, keep the carry below
    seq_lengths = jnp.maximum(seq_lengths, 1)
    flat = weights(params)
    if reference:
        w_ih, w_hh, b_ih, b_hh = rnn.unpack_lstm_weights(flat, inputs, hidden, 1, False)
        ys, h_n, c_n = rnn.lstm_ref(
            xs_BxTxI, h0, c0, w_ih, w_hh, b_ih, b_hh, seq_lengths, inputs, hidden, 1, 0.0, False
        )
    else:
        ys, h_n, c_n = rnn.lstm(
            xs_BxTxI, h0, c0, flat, seq_lengths, inputs, hidden, 1, 0.0, False
        )  # fmt: skip
    valid = (jnp.arange(steps)[None, :] < seq_lengths[:, None]) & ~empty[:, None]
    ys = jnp.where(valid[..., None], ys, 0.0)  # zero outputs at padded steps, as cells.scan
    h_n, c_n = (
        jnp.where(empty[:, None], start[0], end[0]) for start, end in ((h0, h_n), (c0, c_n))
    )
    return ys, type(carry)(h_n, c_n)
