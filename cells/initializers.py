"""Initialisation schemes: how `cell.init` draws a cell's weights and biases, as this library,
flax, PyTorch and Keras draw them for their recurrent layers.

A cell's `init_scheme` field names one. For a cell with G gate blocks of width H, inputs of
width I and (for torch) k = 1 / sqrt(H):

    scheme   w_ih [I, G*H]            w_hh [H_in, G*H]              b (and b_hn)       LSTM b_f
    'cells'  Glorot uniform, fused    orthogonal per gate block     0                  1
    'flax'   LeCun normal             orthogonal per gate block     0                  0
    'torch'  U(+-k)                   U(+-k)                        U(+-k) per torch   drawn
                                                                    bias, summed
    'keras'  Glorot uniform, fused    orthogonal, fused (rows)      0                  1

Glorot uniform over the fused matrix is U(+-sqrt(6 / (I + G*H))); LeCun normal a normal of
std 1 / sqrt(I) truncated at 2 std (and rescaled to that std); a per-block orthogonal w_hh has
G orthogonal [H, H] blocks, a fused one orthonormal rows over [H, G*H].

Sources (read for this): flax.linen.recurrent (LSTMCell, OptimizedLSTMCell, GRUCell, SimpleCell,
MGUCell: one Dense per gate, kernel_init lecun_normal, recurrent_kernel_init orthogonal,
bias_init zeros; MGUCell's forget_bias_init ones); torch.nn.RNNBase.reset_parameters (every
weight and bias of nn.LSTM / nn.GRU / nn.RNN uniform in +-1 / sqrt(hidden_size), w_hr
included); keras/src/layers/rnn/{lstm,gru,simple_rnn}.py (kernel [I, G*H] glorot_uniform,
recurrent_kernel [H, G*H] orthogonal, bias zeros, LSTM unit_forget_bias=True) with
keras/src/initializers/random_initializers.py (Orthogonal: QR of a normal [G*H, H] matrix,
transposed, so a non-square matrix has orthonormal rows: entries of variance 1 / (G*H), where
per-block orthogonal gives 1 / H). LeCun normal's fan-in is I whether a gate's kernel is drawn
alone (flax) or fused, so the fused draw has flax's distribution; Glorot's fan-out is G*H
because Keras draws the fused matrix.

Where this library's single bias b is PyTorch's b_ih + b_hh (`cells.interop`), the torch
scheme draws it as that sum (a triangular distribution on +-2k); the GRU's b_n is b_ih[n] and
b_hn is b_hh[n], one draw each. Each cell says how many torch biases fold into each of its
blocks (`Cell.bias_terms`).

Cells a library lacks get that library's generic rule: its input kernel, recurrent kernel and
bias rules applied to w_ih, w_hh (per head for head-wise cells), w_hr and b, and 'torch' for
cells without a recurrent matrix (minGRU, minLSTM) is nn.Linear's rule, U(+-1 / sqrt(I)) for
weight and bias (Feng et al.'s code builds them from nn.Linear). Parameters no library has
keep the cell's own init under every scheme: peepholes 0, layer-norm scales 1 and biases 0
(every library's LayerNorm), IndRNN's u ~ U[0, 1], the sLSTM's R = 0 and power-law forget
bias and the IRNN's W_ih, W_hh (class defaults of `recurrent_init`, `kernel_init`,
`powerlaw_bias`: explicit options, which win over a scheme). Usage:

    cells.LSTM(512, init_scheme="flax")         # flax.linen.LSTMCell's distributions
    cells.GRU(64, init_scheme="torch")          # torch.nn.GRU's
    initializers.kernel_init("flax", 0.1)(key, (8, 64))   # the rule itself
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import jax
import jax.numpy as jnp

Initializer = Callable[..., jax.Array]

SCHEMES = ("cells", "flax", "keras", "torch")
# Kept as the default after a 3-seed benchmark (experiments/studies/init_schemes/README.md):
# 'flax' made flax's seq2seq example learn faster early but not end better (exact match at step
# 1,200: 0.294 +- 0.036 against 0.365 +- 0.158) and trailed on MNIST-1D (0.865 +- 0.021 against
# 0.876 +- 0.010); 'torch' led MNIST-1D and trailed seq2seq. No scheme won both tasks, and a new
# default would change every existing result's initial weights.
DEFAULT_SCHEME = "cells"


def uniform(bound: float) -> Initializer:
    """U(-bound, bound), PyTorch's `nn.init.uniform_(w, -bound, bound)`."""

    def init(key, shape, dtype=jnp.float32):
        return jax.random.uniform(key, shape, dtype, -bound, bound)

    return init


def torch_bound(hidden_size: int) -> float:
    """1 / sqrt(H): the bound of every parameter of torch's nn.LSTM / nn.GRU / nn.RNN."""
    return 1.0 / math.sqrt(hidden_size)


def kernel_init(scheme: str, bound: float) -> Initializer:
    """The input-kernel initializer of `scheme` (w_ih over its fused [I, G*H], and w_hr);
    `bound` is torch's uniform bound for this cell."""
    if scheme == "flax":
        return jax.nn.initializers.lecun_normal()
    if scheme == "torch":
        return uniform(bound)
    return jax.nn.initializers.glorot_uniform()  # 'cells', 'keras'


def recurrent_init(scheme: str, bound: float) -> tuple[Initializer, bool]:
    """(initializer, per_block) of `scheme` for w_hh: per_block draws each gate's [H_in, H]
    block alone (flax's one Dense per gate); otherwise the fused [H_in, G*H] matrix at once
    (Keras's one recurrent_kernel)."""
    if scheme == "torch":
        return uniform(bound), False
    return jax.nn.initializers.orthogonal(), scheme != "keras"


def draw_bias(scheme: str, key, terms: Sequence[int], width: int, dtype, bound: float) -> jax.Array:
    """The bias of len(terms) blocks of `width`: zeros, or for 'torch' block k the sum of
    terms[k] independent U(-bound, bound) draws (b_ih + b_hh where both exist)."""
    size = len(terms) * width
    if scheme != "torch":
        return jnp.zeros((size,), dtype)
    most = max(terms)
    draws = jax.random.uniform(key, (most, size), dtype, -bound, bound)
    keep = jnp.repeat(jnp.asarray(terms), width)[None, :] > jnp.arange(most)[:, None]
    return jnp.sum(jnp.where(keep, draws, 0.0), axis=0).astype(dtype)


def check(cell) -> None:
    """Raises ValueError unless `cell`'s init_scheme, kernel_init and recurrent_init are valid."""
    name = type(cell).__name__
    if cell.init_scheme not in SCHEMES:
        raise ValueError(
            f"{name}: init_scheme must be one of {', '.join(map(repr, SCHEMES))}, "
            f"got {cell.init_scheme!r}."
        )
    for field in ("kernel_init", "recurrent_init"):
        value = getattr(cell, field)
        if value is not None and not callable(value):
            raise ValueError(
                f"{name}: {field} must be an initializer (key, shape, dtype) -> array, or None "
                f"(the init_scheme's), got {value!r}."
            )
