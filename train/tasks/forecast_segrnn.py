"""SegRNN (Lin, Lin, Chen, Wu & Liu 2023, "Segment Recurrent Neural Network for Long-Term Time
Series Forecasting"): an RNN over segments of the look-back, decoded in parallel.

Channel-independent: every channel of every window is one sequence. With look-back L, horizon
H, segment length w (n = L / w input segments, m = H / w output segments) and width d:

  normalise:  x <- x - x_L per window and channel ('last', the paper's code at f5970fa), or
              x <- (x - mean) / std ('revin': RevIN without affine parameters, eps 1e-5, an
              option of their later code)
  embed:      e_i = ReLU(W_e x[(i-1)w : iw] + b_e)                 i = 1..n,   W_e [w, d]
  encode:     h_n = the final carry of the cell over e_1..e_n       (any registered cell)
  decode:     for every output segment j = 1..m, in parallel, one step of the same cell from
              h_n with input p_j = [pos_j ; chan_c]                 pos [m, d/2], chan [C, d/2]
              (without the channel embedding, their `--channel_id 0`: p_j = pos_j, pos [m, d])
              y_j = W_p dropout(h'_j) + b_p                         W_p [d, w]
  denormalise the m w = H values.

Parameters: `embed` and `predict` are dense layers (PyTorch's nn.Linear init, as the authors'),
`pos` and `channel` start standard normal (torch.randn), the cell its own init, or with
`init_scale` s > 0 every cell parameter uniform in [-s, s] (s = 1/sqrt(d) is PyTorch's nn.GRU /
nn.LSTM init, the authors'; their r and z biases are b_ih + b_hh, two such draws, where the
fused cell has one). Read for this:
lss-1138/SegRNN, models/SegRNN.py and layers/RevIN.py at the paper's commit (f5970fa).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

import cells
from train import models

NORMALIZATIONS = ("last", "revin")
REVIN_EPS = 1e-5


def check(input_len: int, horizon: int, segment_len: int, width: int) -> str | None:
    """The reason these sizes do not fit SegRNN, or None."""
    if segment_len < 1 or input_len % segment_len or horizon % segment_len:
        return (
            f"config.model.segment_len={segment_len} must divide data.input_len={input_len} "
            f"and data.horizon={horizon}"
        )
    if width % 2:
        return f"config.model.hidden_size={width} must be even (position and channel halves)"
    return None


def init(
    rng,
    cell,
    num_channels: int,
    horizon: int,
    segment_len: int,
    channel_embedding: bool = True,
    init_scale: float = 0.0,
) -> dict:
    d = cell.hidden_size
    k_embed, k_cell, k_pos, k_chan, k_pred = jax.random.split(rng, 5)
    pos_width = d // 2 if channel_embedding else d
    rnn = cell.init(k_cell, d)
    if init_scale > 0:
        rnn = models.uniform_init(jax.random.fold_in(k_cell, 1), rnn, init_scale)
    params = {
        "embed": models.torch_dense_init(k_embed, segment_len, d),
        "rnn": rnn,
        "pos": jax.random.normal(k_pos, (horizon // segment_len, pos_width), jnp.float32),
        "predict": models.torch_dense_init(k_pred, d, segment_len),
    }
    if channel_embedding:
        params["channel"] = jax.random.normal(k_chan, (num_channels, d // 2), jnp.float32)
    return params


def predict(
    params,
    cell,
    x_BxLxC,
    horizon: int,
    segment_len: int,
    normalization: str,
    dropout: float,
    rng=None,
    scan_kwargs=None,
):
    """Forecasts [B, H, C] from inputs [B, L, C] (dropout only with an rng)."""
    batch, input_len, channels = x_BxLxC.shape
    if normalization == "revin":
        mean = jnp.mean(x_BxLxC, axis=1, keepdims=True)
        std = jnp.sqrt(jnp.var(x_BxLxC, axis=1, keepdims=True) + REVIN_EPS)
        x_BxLxC = (x_BxLxC - mean) / std
    else:
        last = x_BxLxC[:, -1:, :]
        x_BxLxC = x_BxLxC - last
    n, m, w = input_len // segment_len, horizon // segment_len, segment_len
    # Channel-independent segments: [B, L, C] -> [B C, n, w].
    segments = jnp.swapaxes(x_BxLxC, 1, 2).reshape(batch * channels, n, w)
    embedded = jax.nn.relu(segments @ params["embed"]["w"] + params["embed"]["b"][None, None])
    _, final = cells.scan(cell, params["rnn"], embedded, **(scan_kwargs or {}))
    # Parallel decoding: every (sequence, output segment) pair is one step from the final carry.
    d = cell.hidden_size
    if "channel" in params:  # [pos_j ; chan_c]
        pos_CxMxD = jnp.concatenate(
            [
                jnp.broadcast_to(params["pos"][None], (channels, m, d // 2)),
                jnp.broadcast_to(params["channel"][:, None], (channels, m, d // 2)),
            ],
            axis=-1,
        )
    else:  # pos_j alone, shared by the channels
        pos_CxMxD = jnp.broadcast_to(params["pos"][None], (channels, m, d))
    inputs = jnp.broadcast_to(pos_CxMxD[None], (batch, channels, m, d)).reshape(-1, d)
    carry = jax.tree.map(lambda c: jnp.repeat(c, m, axis=0), final)
    _, h_BCMxD = cell.step(params["rnn"], carry, inputs.astype(final[0].dtype))
    k_drop = None if rng is None else jax.random.fold_in(rng, 7)
    h_BCMxD = cells.dropout(k_drop, dropout, h_BCMxD)
    y = h_BCMxD @ params["predict"]["w"] + params["predict"]["b"][None]  # [B C m, w]
    y_BxHxC = jnp.swapaxes(y.reshape(batch, channels, m * w), 1, 2)
    if normalization == "revin":
        return y_BxHxC * std + mean
    return y_BxHxC + last
