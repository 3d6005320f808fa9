"""Convolutional LSTM (Shi et al. 2015, "Convolutional LSTM Network: A Machine Learning Approach
for Precipitation Nowcasting"): the LSTM with its two products replaced by convolutions, so the
state keeps the inputs' spatial layout. For inputs X_t [*S, C] (S a 1-D, 2-D or 3-D grid) and
states H_t, C_t [*S, F]:

    i_t = sigmoid(W_xi * X_t + W_hi * H_{t-1} + W_ci o C_{t-1} + b_i)
    f_t = sigmoid(W_xf * X_t + W_hf * H_{t-1} + W_cf o C_{t-1} + b_f)
    g_t = tanh   (W_xg * X_t + W_hg * H_{t-1} + b_g)
    C_t = f_t o C_{t-1} + i_t o g_t
    o_t = sigmoid(W_xo * X_t + W_ho * H_{t-1} + W_co o C_t + b_o)
    H_t = o_t o tanh(C_t)

where * is a stride-1 convolution with 'same' zero padding (cross-correlation, as
`jax.lax.conv_general_dilated` and every deep-learning library compute it; for an even kernel
size k the extra padding goes after: (k - 1) // 2 before, k // 2 after) and o the elementwise
product. The peephole terms W_c. o C (per position and feature, as in the paper) are optional
(`peephole=True`); without them this is flax.linen.ConvLSTMCell's and Keras' ConvLSTM.

Layout. A cell of this library takes [B, I] inputs and keeps [B, width] carries, which is what
lets `cells.scan` (lengths, reverse, resets, every regulariser), `cells.Stack` and the training
system run it unchanged. So the grid travels flattened, channels last, row-major: a frame
[B, *S, C] is x.reshape(B, -1), [B, prod(S) * C], and the carry's h and c are [B, prod(S) * F].
`cell.flatten(frames)` and `cell.unflatten(ys)` convert:

    cell = cells.ConvLSTM(16, spatial_shape=(32, 32), kernel_size=5)
    params = cell.init(key, input_size=32 * 32 * 1)        # one input channel
    ys, carry = cells.scan(cell, params, cell.flatten(frames))   # frames [B, T, 32, 32, 1]
    maps = cell.unflatten(ys)                                     # [B, T, 32, 32, 16]

hidden_size is F, the number of feature maps; output_size and the carry widths are prod(S) * F.

Parameters: w_ih [*K, C, 4F] and w_hh [*K, F, 4F] (convolution kernels, spatial axes first,
then in and out channels: flax's and lax's 'HWIO'), gate order i, f, g, o along the last axis;
one bias b [4F] shared over positions (flax's two conv biases summed, its forget-gate +1
folded in: `cells.interop.convlstm_from_flax`); with peephole, w_peep [3, prod(S) * F] (rows i,
f, o; zeros at init). Initialisation follows the init_scheme (`cells.initializers`) with the
convolution's fans (a kernel [*K, C, O] has fan-in prod(K) * C and fan-out prod(K) * O):
'cells' and 'keras' Glorot-uniform w_ih and orthogonal w_hh (per gate block under 'cells',
fused under 'keras', as keras.layers.ConvLSTM2D), 'flax' LeCun-normal w_ih (flax.linen.Conv's
default); b_f = forget_bias (1.0 by default, the +1 both flax's and Keras' ConvLSTMs apply).
"""

from __future__ import annotations

import dataclasses
import itertools
import math
from typing import Any, ClassVar

import jax
import jax.numpy as jnp
from jax import lax

from cells import base, registry

# lax dimension numbers (inputs, kernel, outputs) for 1-, 2- and 3-D grids, channels last.
_DIMENSIONS = {
    1: ("NWC", "WIO", "NWC"),
    2: ("NHWC", "HWIO", "NHWC"),
    3: ("NDHWC", "DHWIO", "NDHWC"),
}


CONV_METHODS = ("auto", "patches", "lax")


def conv_same(x_NxSxC, w_KxCxO, compute_dtype: Any = None, method: str = "auto"):
    """The stride-1, 'same'-padded convolution x * w: [N, *S, C] x [*K, C, O] -> [N, *S, O],
    float32 (or wider) accumulation, inputs cast to `compute_dtype` when given.

    method: 'patches' gathers the prod(K) shifted copies of the zero-padded input side by side
    ([N, *S, prod(K) C], im2col) and does one GEMM with w as [prod(K) C, O]; 'lax' calls
    `jax.lax.conv_general_dilated`; 'auto' is 'patches' on CPU, where XLA's convolutions run a
    ConvLSTM's forward and backward over 20 steps 2.6-4.4x slower than the GEMM (measured,
    experiments/studies/cpu_speed/README.md), and 'lax' on GPU/TPU (cuDNN's and the TPU's
    own convolutions; not yet measured here). Same values up to float rounding. The patches
    are prod(K) times the input: for large or 3-D kernels pass method='lax'.
    """
    if method not in CONV_METHODS:
        raise ValueError(f"conv_same: method must be one of {CONV_METHODS}, got {method!r}.")
    if method == "auto":
        method = "patches" if jax.default_backend() == "cpu" else "lax"
    acc = jnp.promote_types(jnp.float32, jnp.result_type(x_NxSxC, w_KxCxO))
    if compute_dtype is not None:
        x_NxSxC, w_KxCxO = x_NxSxC.astype(compute_dtype), w_KxCxO.astype(compute_dtype)
    kernel, spatial = w_KxCxO.shape[:-2], x_NxSxC.shape[1:-1]
    if method == "lax":
        return lax.conv_general_dilated(
            x_NxSxC,
            w_KxCxO,
            window_strides=(1,) * len(kernel),
            padding="SAME",
            dimension_numbers=_DIMENSIONS[len(kernel)],
            preferred_element_type=acc,
        )
    # lax's 'SAME': (k - 1) // 2 zeros before, k // 2 after each axis.
    pads = [(0, 0)] + [((k - 1) // 2, k // 2) for k in kernel] + [(0, 0)]
    padded = jnp.pad(x_NxSxC, pads)
    shifted = [
        padded[(slice(None), *(slice(d, d + n) for d, n in zip(offset, spatial, strict=True)))]
        for offset in itertools.product(*(range(k) for k in kernel))
    ]  # offsets in row-major order, as w's leading axes flatten
    patches = jnp.concatenate(shifted, axis=-1)  # [N, *S, prod(K) * C]
    w = w_KxCxO.reshape(-1, w_KxCxO.shape[-1])
    return jnp.matmul(patches, w, preferred_element_type=acc)


def _positive_ints(value) -> bool:
    return isinstance(value, tuple) and all(
        isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in value
    )


@registry.register("convlstm")
@dataclasses.dataclass(frozen=True)
class ConvLSTM(base.Cell):
    """Convolutional LSTM (Shi et al. 2015) on a 1-, 2- or 3-D grid. See the module docstring.

    Attributes:
      hidden_size: F, the number of feature maps of the state.
      spatial_shape: S, the grid, e.g. (64,) for 1-D inputs [B, T, 64, C] or (32, 32) for 2-D
        inputs [B, T, 32, 32, C] (required; the carry is [B, prod(S) * F]).
      kernel_size: the convolution kernels' size K: an int (the same along every axis) or one
        int per spatial axis. Both convolutions use it.
      peephole: the paper's peephole terms W_c o C on the gates (w_peep [3, prod(S) * F]).
      forget_bias: initial b_f (1.0: flax's and Keras' ConvLSTMs).
      conv_method: how the sequence path convolves (`conv_same`'s method): 'auto' (im2col and
        one GEMM on CPU, XLA's convolution elsewhere), 'patches' or 'lax'. Same values up to
        float rounding; `reference_step` always runs 'auto'.
    """

    spatial_shape: tuple[int, ...] = ()
    kernel_size: int | tuple[int, ...] = 3
    peephole: bool = False
    forget_bias: float = 1.0
    conv_method: str = "auto"

    num_gates: ClassVar[int] = 4
    gate_names: ClassVar[tuple[str, ...]] = ("i", "f", "g", "o")
    carry_type: ClassVar[type] = base.LSTMState
    on_grids: ClassVar[bool] = True

    def __post_init__(self):
        super().__post_init__()
        name = type(self).__name__
        shape = self.spatial_shape
        if isinstance(shape, list):
            object.__setattr__(self, "spatial_shape", shape := tuple(shape))
        if not _positive_ints(shape) or not 1 <= len(shape) <= 3:
            raise ValueError(
                f"{name}: spatial_shape must be a tuple of 1 to 3 positive ints (the grid, e.g. "
                f"(64,) or (32, 32)), got {shape!r}."
            )
        kernel = self.kernel_size
        if isinstance(kernel, int) and not isinstance(kernel, bool):
            object.__setattr__(self, "kernel_size", kernel := (kernel,) * len(shape))
        elif isinstance(kernel, list):
            object.__setattr__(self, "kernel_size", kernel := tuple(kernel))
        if not _positive_ints(kernel) or len(kernel) != len(shape):
            raise ValueError(
                f"{name}: kernel_size must be a positive int or {len(shape)} positive ints (one "
                f"per axis of spatial_shape={shape}), got {self.kernel_size!r}."
            )
        if not isinstance(self.peephole, bool):
            raise ValueError(f"{name}: peephole must be True or False, got {self.peephole!r}.")
        if self.conv_method not in CONV_METHODS:
            raise ValueError(
                f"{name}: conv_method must be one of {', '.join(CONV_METHODS)}, got "
                f"{self.conv_method!r}."
            )
        base.check_forget_bias(self)

    @classmethod
    def example_options(cls, hidden_size: int) -> dict[str, Any]:
        """A one-position grid: any input width is its channels (generic code and tests)."""
        del hidden_size
        return {"spatial_shape": (1,)}

    # -- layout ----------------------------------------------------------------------------------
    @property
    def positions(self) -> int:
        """prod(spatial_shape): the number of grid positions."""
        return math.prod(self.spatial_shape)

    @property
    def output_size(self) -> int:
        return self.positions * self.hidden_size

    @property
    def carry_sizes(self) -> tuple[int, ...]:
        return (self.output_size, self.output_size)  # h and c, both [B, prod(S) * F]

    def channels(self, input_size: int) -> int:
        """C, the input channels of a flattened input of width `input_size`."""
        if input_size % self.positions:
            raise ValueError(
                f"{type(self).__name__}: input_size={input_size} is not a multiple of the "
                f"{self.positions} positions of spatial_shape={self.spatial_shape} (a flattened "
                "input is [prod(spatial_shape) * channels] wide)."
            )
        return input_size // self.positions

    def input_size(self, params) -> int:
        shape = self.input_kernel_shape(params)
        if len(shape) != len(self.spatial_shape) + 2:
            raise ValueError(
                f"{type(self).__name__}: params['w_ih'] must be a kernel [*kernel_size, "
                f"channels, 4 * hidden_size] (from cell.init), got shape {shape}."
            )
        return self.positions * shape[-2]

    def flatten(self, x):
        """[..., *spatial_shape, C] -> [..., prod(spatial_shape) * C]: frames as this cell's
        inputs (e.g. [B, T, H, W, C] -> [B, T, H*W*C])."""
        rank = len(self.spatial_shape)
        shape = jnp.shape(x)
        if len(shape) < rank + 1 or tuple(shape[-rank - 1 : -1]) != self.spatial_shape:
            grid = ", ".join(map(str, self.spatial_shape))
            raise ValueError(
                f"{type(self).__name__}.flatten: x must be [..., {grid}, channels] "
                f"(spatial_shape then channels), got shape {shape}."
            )
        return jnp.reshape(x, shape[: -rank - 1] + (-1,))

    def unflatten(self, y):
        """[..., prod(spatial_shape) * F] -> [..., *spatial_shape, F]: outputs or carry fields
        as feature maps (F = y's width / prod(spatial_shape), hidden_size for outputs)."""
        shape = jnp.shape(y)
        if not shape or shape[-1] % self.positions:
            raise ValueError(
                f"{type(self).__name__}.unflatten: y's last axis must be a multiple of the "
                f"{self.positions} positions of spatial_shape={self.spatial_shape}, got shape "
                f"{shape}."
            )
        return jnp.reshape(y, shape[:-1] + self.spatial_shape + (shape[-1] // self.positions,))

    def _grid(self, x):
        """[..., prod(S) * C] -> [N, *S, C] (the leading axes merged into N)."""
        return jnp.reshape(x, (-1,) + self.spatial_shape + (x.shape[-1] // self.positions,))

    # -- parameters ------------------------------------------------------------------------------
    def init(self, key, input_size: int):
        if isinstance(input_size, bool) or not isinstance(input_size, int) or input_size <= 0:
            raise ValueError(
                f"{type(self).__name__}.init: input_size must be a positive int, "
                f"got {input_size!r}."
            )
        channels = self.channels(input_size)
        k_ih, k_hh = jax.random.split(key)
        f = self.hidden_size
        params = {
            "w_ih": self._init_kernel(k_ih, self.kernel_size + (channels, 4 * f)),
            "w_hh": self._init_recurrent(k_hh),
            "b": self._init_bias(jax.random.fold_in(key, 2)),
        }
        if self.peephole:
            params["w_peep"] = jnp.zeros((3, self.output_size), self.param_dtype)
        return params

    def _init_recurrent(self, key):
        """w_hh [*K, F, 4F]: per gate block [*K, F, F] or fused, as the scheme draws it (an
        orthogonal block has orthonormal columns over its prod(K) * F rows)."""
        init, per_block = self._recurrent_rule()
        f, g = self.hidden_size, self.num_gates
        if not per_block:
            return self._init(init, key, self.kernel_size + (f, g * f))
        blocks = [self._init(init, k, self.kernel_size + (f, f)) for k in jax.random.split(key, g)]
        return jnp.concatenate(blocks, axis=-1)

    def _init_bias(self, key):
        b = super()._init_bias(key)
        f = self.hidden_size
        return b.at[f : 2 * f].set(self.forget_bias)

    # -- the sequence path -----------------------------------------------------------------------
    def input_projection(self, params, xs):
        """W_x * X_t + b for every step at once: one convolution over all leading axes,
        [..., prod(S) * C] -> [..., prod(S) * 4F] (positions first, the 4F gates last)."""
        xw = conv_same(self._grid(xs), params["w_ih"], self.compute_dtype, self.conv_method)
        xw = base.add_bias(xw, params["b"])
        return jnp.reshape(xw, xs.shape[:-1] + (self.positions * 4 * self.hidden_size,))

    def recurrent(self, params, h):
        """W_h * H_{t-1}: [B, prod(S) * F] -> [B, *S, 4F] (variational-dropout mask first)."""
        h = base.recurrent_input(params, h)
        return conv_same(self._grid(h), params["w_hh"], self.compute_dtype, self.conv_method)

    def fused_step(self, params, carry, xp):
        h_prev, c_prev = carry
        batch = c_prev.shape[0]
        pre = (self.recurrent(params, h_prev) + self._grid(xp)).astype(c_prev.dtype)
        pre_i, pre_f, pre_g, pre_o = (
            jnp.reshape(p, (batch, self.output_size)) for p in jnp.split(pre, 4, axis=-1)
        )
        if self.peephole:
            p_i, p_f, p_o = (params["w_peep"][k : k + 1].astype(c_prev.dtype) for k in range(3))
            pre_i, pre_f = pre_i + p_i * c_prev, pre_f + p_f * c_prev
        i, f, g = jax.nn.sigmoid(pre_i), jax.nn.sigmoid(pre_f), jnp.tanh(pre_g)
        c = f * c_prev + i * g
        o = jax.nn.sigmoid(pre_o + p_o * c if self.peephole else pre_o)
        h = o * jnp.tanh(c)
        return base.LSTMState(h, c), h, {"i": i, "f": f, "g": g, "o": o, "c": c}

    def reference_step(self, params, carry, x):
        """The equations gate by gate: two convolutions per gate, no fusion."""
        h_prev, c_prev = carry
        batch, f = x.shape[0], self.hidden_size
        x_grid, h_grid = self._grid(x), self._grid(base.recurrent_input(params, h_prev))

        def pre(k):
            block = slice(k * f, (k + 1) * f)
            total = conv_same(x_grid, params["w_ih"][..., block])
            total = total + conv_same(h_grid, params["w_hh"][..., block])
            total = base.add_bias(total, params["b"][block])
            return jnp.reshape(total, (batch, self.output_size))

        peep = params["w_peep"] if self.peephole else jnp.zeros((3, self.output_size))
        p_i, p_f, p_o = peep[0:1], peep[1:2], peep[2:3]  # [1, prod(S) * F], broadcast over B
        i = jax.nn.sigmoid(pre(0) + p_i * c_prev)
        f_gate = jax.nn.sigmoid(pre(1) + p_f * c_prev)
        g = jnp.tanh(pre(2))
        c = f_gate * c_prev + i * g
        o = jax.nn.sigmoid(pre(3) + p_o * c)
        h = o * jnp.tanh(c)
        return base.LSTMState(h, c), h

    def split_gates(self, params, name):
        return jnp.split(params[name], self.num_gates, axis=-1)
