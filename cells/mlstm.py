"""mLSTM (Beck, Pöppel, Spanring, Auer, Prudnikova, Kopp, Klambauer, Brandstetter & Hochreiter
2024, "xLSTM: Extended Long Short-Term Memory"): the LSTM with a matrix memory per head, written
to with a key-value outer product and read with a query, and exponential gating with a
stabiliser. Per head (D units, H = NH D), from the input x_t alone:

    q_t = x_t W_q + b_q,   k_t = (x_t W_k + b_k) / sqrt(D),   v_t = x_t W_v + b_v     [D] each
    i~_t = x_t w_i + b_i,  f~_t = x_t w_f + b_f                                       scalars
    o_t = sigmoid(x_t W_o + b_o)                                                      [D]

    C_t = f_t C_{t-1} + i_t k_t v_t^T        [D, D] matrix memory (key rows, value columns)
    n_t = f_t n_{t-1} + i_t k_t              [D] normaliser
    h~_t = C_t^T q_t / max(|n_t . q_t|, 1)   the retrieved value
    h_t = o_t * GN(h~_t)                     GN: layer norm over the head's D units, times a
                                             learned scale (`head_norm`, default; off: h~ itself)

with i_t = exp(i~_t) and f_t = sigmoid(f~_t). Stabilised as the official code (NX-AI/xlstm,
`xlstm/blocks/mlstm/backends.py`): the carry holds C, n scaled by exp(-m) with

    m_t = max(log sigmoid(f~_t) + m_{t-1}, i~_t),
    f'_t = exp(log sigmoid(f~_t) + m_{t-1} - m_t),   i'_t = exp(i~_t - m_t)   (both <= 1)
    h~_t = C_t^T q_t / (max(|n_t . q_t|, exp(-m_t)) + 1e-6)

which is the unstabilised h~ except for the code's 1e-6 guard against a zero denominator
(kept, so the numbers are the reference's). The all-zero carry (m = 0) is the empty memory.

Three forms compute the same function (`cells.scan`'s modes; equal to float32 rounding, tested
at T = 1024):
  * 'sequential': the step above in a `lax.scan` (`fused_step`; `cell.step` for generation).
    Autodiff stores every step's [D, D] memory: O(T NH D^2) per sequence.
  * 'parallel': the whole sequence at once, attention-like. With b_t = sum_{r<=t} log f_r,
    the weight of step s in the state at t is D_ts = b_t - b_s + i~_s (s <= t), of the carry
    a_t = b_t + m_0, the stabiliser m_t = max(a_t, max_s D_ts) (the same m as the recurrent
    form), and

        h~_t = (e^(a_t - m_t) C_0^T q_t + sum_s e^(D_ts - m_t) (q_t . k_s) v_s)
               / (max(|e^(a_t - m_t) n_0 . q_t + sum_s e^(D_ts - m_t) q_t . k_s|, e^(-m_t)) + 1e-6)

    O(T^2) memory per head: [T, T] matrices (no [D, D] state per step).
  * 'hoisted': chunkwise. The parallel form within chunks of `chunk_size` steps, the state
    carried from chunk to chunk by the recurrence; O(T L) memory for chunks of L. The default
    (`mode='auto'`) wherever the number of steps is static.

Resets restart the weights inside a chunk (an episode's steps see only their own episode and
its initial carry); padded steps (t >= lengths) are identity steps (f = 1, i = 0), so each form
keeps the carry there, as `cells.scan` requires.

Parameters: w_ih [I, 4H + 2NH] = [W_q | W_k | W_v | W_o | w_i | w_f] (q, k, v, o head-major,
the i and f columns one per head), b [4H + 2NH], and with head_norm the scale norm_scale [H].
There is no recurrent matrix: the gates see x only, so recurrent dropout is refused, as for
minGRU. Initialisation as the xLSTM code's mLSTM cell: w_i and w_f zero, b_f = linspace(3, 6)
over the heads, b_i ~ N(0, 0.1^2), norm_scale one; W_q, W_k, W_v, W_o and their biases by the
init_scheme (`cells.initializers`; 'cells': Glorot uniform and zero). The xLSTM block's
up-projection, convolution and skip are a block-level choice, not the cell's (`cells.blocks`
runs any cell in a residual block).
"""

from __future__ import annotations

import dataclasses
import functools
from typing import ClassVar

import jax
import jax.numpy as jnp
from jax import lax

from cells import base, registry, regularization

EPS = 1e-6  # the official code's guard in the denominator of h~
MODES = ("hoisted", "parallel")  # `cells.scan`'s whole-sequence modes: chunkwise, one chunk


def _split(cell, xp):
    """q, k (scaled by 1 / sqrt(D)), v [..., NH, D], o~ [..., H], i~, f~ [..., NH] from the
    projected inputs xp [..., 4H + 2NH]."""
    h, heads, d = cell.hidden_size, cell.num_heads, cell.head_dim
    q, k, v, o_pre, i_pre, f_pre = jnp.split(xp, [h, 2 * h, 3 * h, 4 * h, 4 * h + heads], -1)
    per_head = lambda a: a.reshape(*a.shape[:-1], heads, d)  # noqa: E731
    return per_head(q), per_head(k) / jnp.sqrt(float(d)), per_head(v), o_pre, i_pre, f_pre


def _product(spec: str, a, b, compute_dtype):
    """jnp.einsum(spec, a, b) with inputs cast to `compute_dtype` (when given) and float32 (or
    wider) accumulation, as `base.matmul`."""
    acc = jnp.promote_types(jnp.float32, jnp.result_type(a, b))
    if compute_dtype is not None:
        a, b = a.astype(compute_dtype), b.astype(compute_dtype)
    return jnp.einsum(spec, a, b, preferred_element_type=acc)


def _readout(numerator, denominator, m):
    """h~ = numerator / (max(|denominator|, exp(-m)) + EPS): [..., D] from [..., D], [...]."""
    return numerator / (jnp.maximum(jnp.abs(denominator), jnp.exp(-m)) + EPS)[..., None]


def chunk(q, k, v, i_pre, log_f, start, valid=None, resets=None, init=None, compute_dtype=None):
    """The parallel form over one chunk of L steps, from the stabilised state `start`.

    Args:
      q: queries [B, NH, L, D].
      k: keys [B, NH, L, D], already scaled by 1 / sqrt(D).
      v: values [B, NH, L, D].
      i_pre: the input gate's pre-activations i~ [B, NH, L].
      log_f: log sigmoid(f~) [B, NH, L].
      start: (C [B, NH, D, D], n [B, NH, D], m [B, NH]) before the chunk's first step.
      valid: optional bool [B, L]; False steps are identity steps (they keep the state).
      resets: optional bool [B, L]; True restarts from `init` (same layout as start) before
        that step.
      compute_dtype: the products' input dtype (None: the inputs'), float32 accumulation.

    Returns:
      (h~ [B, NH, L, D], m [B, NH, L] after each step, (C, n, m) after the last step).
    """
    c0, n0, m0 = start
    steps = q.shape[2]
    allowed = jnp.tril(jnp.ones((steps, steps), bool))[None]  # [1, t, s]: s <= t
    if valid is not None:
        log_f = jnp.where(valid[:, None, :], log_f, 0.0)
        allowed = allowed & valid[:, None, :]  # padded steps write nothing
    cum = jnp.cumsum(log_f, axis=-1)  # b_t
    restarted = None
    if resets is None:
        a = cum + m0[..., None]
    else:
        episode = jnp.cumsum(resets, axis=1)  # [B, L]: resets seen up to t in this chunk
        allowed = allowed & (episode[:, :, None] == episode[:, None, :])
        restarted = episode > 0
        first = lax.cummax(jnp.where(resets, jnp.arange(steps)[None, :], 0), axis=1)
        first = jnp.broadcast_to(first[:, None, :], cum.shape)
        before_first = jnp.take_along_axis(cum - log_f, first, axis=-1)  # b at its start - 1
        from_init = restarted[:, None, :]
        a = jnp.where(from_init, cum - before_first + init[2][..., None], cum + m0[..., None])
    log_d = cum[..., :, None] - cum[..., None, :] + i_pre[..., None, :]  # [B, NH, t, s]
    log_d = jnp.where(allowed[:, None], log_d, -jnp.inf)
    m = jnp.maximum(a, jnp.max(log_d, axis=-1))
    weights = jnp.exp(log_d - m[..., None])
    carried = jnp.exp(a - m)  # the weight of the chunk's (or episode's) initial state

    def product(spec, a, b):
        return _product(spec, a, b, compute_dtype)

    scores = product("bntd,bnsd->bnts", q, k) * weights
    q_c, q_n = product("bntk,bnkv->bntv", q, c0), product("bntk,bnk->bnt", q, n0)
    if restarted is not None:
        q_c_init = product("bntk,bnkv->bntv", q, init[0])
        q_c = jnp.where(restarted[:, None, :, None], q_c_init, q_c)
        q_n = jnp.where(restarted[:, None, :], product("bntk,bnk->bnt", q, init[1]), q_n)
    numerator = carried[..., None] * q_c + product("bnts,bnsv->bntv", scores, v)
    denominator = carried * q_n + jnp.sum(scores, axis=-1)
    h_tilde = _readout(numerator, denominator, m)

    # The state after the last step: row L - 1 of the weights.
    last, kept = weights[:, :, -1, :], carried[:, :, -1]
    c_start, n_start = c0, n0
    if restarted is not None:
        c_start = jnp.where(restarted[:, -1, None, None, None], init[0], c0)
        n_start = jnp.where(restarted[:, -1, None, None], init[1], n0)
    c = kept[..., None, None] * c_start + product("bnsk,bnsv->bnkv", last[..., None] * k, v)
    n = kept[..., None] * n_start + product("bns,bnsk->bnk", last, k)
    return h_tilde, m, (c, n, m[..., -1])


@registry.register("mlstm")
@dataclasses.dataclass(frozen=True)
class MLSTM(base.Cell):
    """mLSTM cell (Beck et al. 2024). See the module docstring.

    Attributes:
      num_heads: NH, the number of heads (divides hidden_size); each has its own D x D memory.
      head_norm: normalise each head's h~ (layer norm over its D units, learned scale) before
        the output gate, as every xLSTM block does (default); False: h = o * h~ (needs no
        D >= 2).
      chunk_size: steps per chunk of the chunkwise form (`cells.scan(..., mode='hoisted')`,
        the default mode): its memory is O(T chunk_size) per head, its serial depth
        T / chunk_size.
    """

    num_heads: int = 1
    head_norm: bool = True
    chunk_size: int = 64

    num_gates: ClassVar[int] = 4  # the q, k, v, o blocks of H, then i and f (NH each)
    gate_names: ClassVar[tuple[str, ...]] = ("q", "k", "v", "o", "i", "f")
    carry_type: ClassVar[type] = base.MLSTMState
    # Gates from x alone, and a recurrence linear in the state (C, n): `cells.scan` runs the
    # whole sequence at once ('hoisted': chunkwise, 'parallel': one chunk), and there is no
    # recurrent product for recurrent dropout.
    linear_in_h: ClassVar[bool] = True

    def __post_init__(self):
        super().__post_init__()
        base.check_num_heads(self)
        heads, name = self.num_heads, type(self).__name__
        if not isinstance(self.head_norm, bool):
            raise ValueError(f"{name}: head_norm must be True or False, got {self.head_norm!r}.")
        if self.head_norm and self.head_dim < 2:
            raise ValueError(
                f"{name}: head_norm=True needs at least 2 units per head (a layer norm over one "
                f"unit is 0), got hidden_size={self.hidden_size} and num_heads={heads}: use "
                "fewer heads or head_norm=False."
            )
        size = self.chunk_size
        if isinstance(size, bool) or not isinstance(size, int) or size < 1:
            raise ValueError(f"{name}: chunk_size must be a positive int, got {size!r}.")

    @property
    def head_dim(self) -> int:
        return self.hidden_size // self.num_heads

    @property
    def carry_sizes(self) -> tuple[int, ...]:
        h, heads, d = self.hidden_size, self.num_heads, self.head_dim
        return (h, heads * d * d, h, heads)

    # -- parameters -------------------------------------------------------------------------
    def init(self, key, input_size: int) -> base.Params:
        if isinstance(input_size, bool) or not isinstance(input_size, int) or input_size <= 0:
            raise ValueError(
                f"{type(self).__name__}.init: input_size must be a positive int, "
                f"got {input_size!r}."
            )
        h, heads = self.hidden_size, self.num_heads
        k_w, k_b, k_i = jax.random.split(key, 3)
        w_qkvo = self._init_kernel(k_w, (input_size, 4 * h))
        w_if = jnp.zeros((input_size, 2 * heads), self.param_dtype)
        b_qkvo = self._draw_bias(k_b, (1, 1, 1, 1))
        b_i = 0.1 * jax.random.normal(k_i, (heads,), jnp.float32)
        b_f = jnp.linspace(3.0, 6.0, heads, dtype=jnp.float32)
        params = {
            "w_ih": jnp.concatenate([w_qkvo, w_if], axis=1),
            "b": jnp.concatenate([b_qkvo, b_i.astype(b_qkvo.dtype), b_f.astype(b_qkvo.dtype)]),
        }
        if self.head_norm:
            params["norm_scale"] = jnp.ones((h,), self.param_dtype)
        return params

    def input_size(self, params) -> int:
        shape = self.input_kernel_shape(params)
        width = 4 * self.hidden_size + 2 * self.num_heads
        if len(shape) != 2 or shape[0] == 0:
            raise ValueError(
                f"{type(self).__name__}: params['w_ih'] must be a 2-D array [input_size, "
                f"{width}] (from cell.init), got shape {shape}."
            )
        return shape[0]

    def split_gates(self, params, name):
        """w_ih or b split into its q, k, v, o (H wide) and i, f (NH wide) blocks."""
        if name == "w_hh":
            self.recurrent(params, None)
        h, heads = self.hidden_size, self.num_heads
        return jnp.split(params[name], [h, 2 * h, 3 * h, 4 * h, 4 * h + heads], axis=-1)

    def recurrent(self, params, h):
        raise TypeError(f"{type(self).__name__} has no recurrent matrix (its gates see x only).")

    # -- one step ---------------------------------------------------------------------------
    def _output(self, params, h_tilde, o_pre):
        """h = sigmoid(o~) * GN(h~) [..., H] from h~ [..., NH, D], and the trace's o and h~."""
        shape = (*h_tilde.shape[:-2], self.hidden_size)
        normed = h_tilde
        if self.head_norm:  # per head: the layer norm over D units, then the learned scale
            ones = jnp.ones(h_tilde.shape[-1:], h_tilde.dtype)
            normed = base.layer_norm(h_tilde, ones, jnp.zeros_like(ones)).reshape(shape)
            scale = params["norm_scale"].astype(normed.dtype)
            normed = normed * scale.reshape((1,) * (normed.ndim - 1) + scale.shape)
        o = jax.nn.sigmoid(o_pre)
        return o * normed.reshape(shape), {"o": o, "h_tilde": h_tilde.reshape(shape)}

    def fused_step(self, params, carry, xp):
        dtype = carry.c.dtype
        batch, heads, d = xp.shape[0], self.num_heads, self.head_dim
        q, k, v, o_pre, i_pre, f_pre = _split(self, xp.astype(dtype))
        c = carry.c.reshape(batch, heads, d, d)
        n = carry.n.reshape(batch, heads, d)
        log_f = jax.nn.log_sigmoid(f_pre)
        m = jnp.maximum(log_f + carry.m, i_pre)
        f = jnp.exp(log_f + carry.m - m)
        i = jnp.exp(i_pre - m)
        c = f[..., None, None] * c + i[..., None, None] * k[..., :, None] * v[..., None, :]
        n = f[..., None] * n + i[..., None] * k
        numerator = _product("bnk,bnkv->bnv", q, c, self.compute_dtype)
        h_tilde = _readout(numerator, _product("bnk,bnk->bn", q, n, self.compute_dtype), m)
        h, gates = self._output(params, h_tilde, o_pre)
        new = base.MLSTMState(h, c.reshape(batch, -1), n.reshape(batch, -1), m)
        return new, h, {"i": i, "f": f, **gates}

    def reference_step(self, params, carry, x_BxI):
        """The stabilised step, head by head, each gate from its own weight block."""
        w_q, w_k, w_v, w_o, w_i, w_f = self.split_gates(params, "w_ih")
        b_q, b_k, b_v, b_o, b_i, b_f = self.split_gates(params, "b")
        d = self.head_dim
        outputs, cs, ns, ms = [], [], [], []
        for head in range(self.num_heads):
            units = slice(head * d, (head + 1) * d)
            q = x_BxI @ w_q[:, units] + b_q[units][None]
            k = (x_BxI @ w_k[:, units] + b_k[units][None]) / jnp.sqrt(float(d))
            v = x_BxI @ w_v[:, units] + b_v[units][None]
            i_pre = x_BxI @ w_i[:, head] + b_i[head]
            log_f = jax.nn.log_sigmoid(x_BxI @ w_f[:, head] + b_f[head])
            m_prev = carry.m[:, head]
            c_prev = carry.c[:, head * d * d : (head + 1) * d * d].reshape(-1, d, d)
            n_prev = carry.n[:, units]
            m = jnp.maximum(log_f + m_prev, i_pre)
            f = jnp.exp(log_f + m_prev - m)[:, None]
            i = jnp.exp(i_pre - m)[:, None]
            c = f[:, :, None] * c_prev + i[:, :, None] * jnp.einsum("bk,bv->bkv", k, v)
            n = f * n_prev + i * k
            numerator = jnp.einsum("bk,bkv->bv", q, c)
            denominator = jnp.maximum(jnp.abs(jnp.sum(q * n, axis=-1)), jnp.exp(-m)) + EPS
            h_tilde = numerator / denominator[:, None]
            if self.head_norm:
                mean = jnp.mean(h_tilde, axis=-1, keepdims=True)
                var = jnp.mean((h_tilde - mean) ** 2, axis=-1, keepdims=True)
                h_tilde = (h_tilde - mean) / jnp.sqrt(var + base.LN_EPSILON)
                h_tilde = h_tilde * params["norm_scale"][units][None]
            o = jax.nn.sigmoid(x_BxI @ w_o[:, units] + b_o[units][None])
            outputs.append(o * h_tilde)
            cs.append(c.reshape(c.shape[0], -1))
            ns.append(n)
            ms.append(m)
        h = jnp.concatenate(outputs, axis=-1)
        new = base.MLSTMState(
            h, jnp.concatenate(cs, axis=-1), jnp.concatenate(ns, axis=-1), jnp.stack(ms, -1)
        )
        return new, h

    # -- zoneout ----------------------------------------------------------------------------
    def zoneout_weights(self, rates, rng, t, carry):
        """h draws its own mask; a head's (C, n, m) keep or update together, one mask per
        sequence and head (they are one stabilised state), expanded to each field."""
        (w_h, w_state, *_) = regularization.zoneout_weights(
            rates, rng, t, (carry.h, carry.m, carry.m, carry.m), (0, 1, 1, 1)
        )
        if w_state is None or isinstance(w_state, float):
            return (w_h, w_state, w_state, w_state)
        d = self.head_dim
        return (w_h, jnp.repeat(w_state, d * d, axis=1), jnp.repeat(w_state, d, axis=1), w_state)

    def zone_carry(self, new, old, weights):
        """Zoneout of the stabilised state, as the sLSTM's (`cells.SLSTM.zone_carry`): with
        masks a head keeps or updates (C, n, m) together; the expectation mixes the true
        states p C_old e^(m_old) + (1 - p) C_new e^(m_new), restabilised by max(m_old, m_new)."""
        w_h, w_state = weights[0], weights[1]
        if not isinstance(w_state, float):  # None, or a mask per head expanded to each field
            return regularization.zoneout(new, old, weights)
        h = regularization.zoneout(new, old, (w_h, None, None, None)).h
        p, d = w_state, self.head_dim
        m = jnp.maximum(old.m, new.m)
        scale_old, scale_new = jnp.exp(old.m - m), jnp.exp(new.m - m)
        per = lambda s, width: jnp.repeat(s, width, axis=1)  # noqa: E731
        c = p * per(scale_old, d * d) * old.c + (1.0 - p) * per(scale_new, d * d) * new.c
        n = p * per(scale_old, d) * old.n + (1.0 - p) * per(scale_new, d) * new.n
        return base.MLSTMState(h, c, n, m)

    # -- the whole sequence at once -------------------------------------------------------
    def auto_mode(self, on_cpu: bool, static_steps: bool) -> str:
        """`cells.scan`'s mode='auto': chunkwise ('hoisted') wherever the number of steps is
        static (its memory is linear in T on every backend), else 'sequential'."""
        del on_cpu
        return "hoisted" if static_steps else "sequential"

    static_time_modes: ClassVar[tuple[str, ...]] = MODES  # both reshape the time axis

    def whole_sequence(self, params, xp_BxTxG, carry, init, valid_BxT, resets_BxT, mode):
        """All outputs at once: (h [B, T, H], the final carry, the trace {i, f, o, h_tilde}).

        mode 'parallel' is one chunk of T steps; 'hoisted' chunks of `chunk_size` (the last
        padded with identity steps), the state carried between them by a `lax.scan`. Compiled
        as one program even when `cells.scan` is called eagerly (the chunk's dozens of small
        operations would otherwise each be dispatched, and differentiated, one by one).
        """
        return _whole_sequence(self, params, xp_BxTxG, carry, init, valid_BxT, resets_BxT, mode)

    def _whole_sequence(self, params, xp_BxTxG, carry, init, valid_BxT, resets_BxT, mode):
        batch, steps, _ = xp_BxTxG.shape
        heads, d, dtype = self.num_heads, self.head_dim, carry.c.dtype
        if steps == 0:
            empty = lambda width: jnp.zeros((batch, 0, width), dtype)  # noqa: E731
            h = self.hidden_size
            gates = {"i": empty(heads), "f": empty(heads), "o": empty(h), "h_tilde": empty(h)}
            return empty(h), carry, gates
        q, k, v, o_pre, i_pre, f_pre = _split(self, xp_BxTxG.astype(dtype))
        q, k, v = (jnp.moveaxis(a, 1, 2) for a in (q, k, v))  # [B, NH, T, D]
        i_pre, log_f = jnp.swapaxes(i_pre, 1, 2), jnp.swapaxes(jax.nn.log_sigmoid(f_pre), 1, 2)

        def as_state(c):
            return c.c.reshape(batch, heads, d, d), c.n.reshape(batch, heads, d), c.m

        start, restart = as_state(carry), as_state(init)
        size = steps if mode == "parallel" else min(self.chunk_size, steps)
        chunks = -(-steps // size)
        pad = chunks * size - steps
        if pad and valid_BxT is None:
            valid_BxT = jnp.ones((batch, steps), bool)

        def padded(a, axis):  # identity steps (valid False) up to a whole number of chunks
            widths = [(0, pad if k == axis else 0) for k in range(a.ndim)]
            return jnp.pad(a, widths) if pad else a

        per_step = [padded(a, 2) for a in (q, k, v, i_pre, log_f)]
        masks = [None if a is None else padded(a, 1) for a in (valid_BxT, resets_BxT)]

        def run(state, inputs):
            arrays, (valid, resets) = inputs
            h_tilde, m, state = chunk(
                *arrays, state, valid, resets, restart, compute_dtype=self.compute_dtype
            )
            return state, (h_tilde, m)

        if chunks <= 1:
            final, (h_tilde, m) = run(start, (per_step, masks))
        else:

            def split(a, axis):  # [..., chunks * size, ...] -> [chunks, ..., size, ...]
                a = a.reshape(*a.shape[:axis], chunks, size, *a.shape[axis + 1 :])
                return jnp.moveaxis(a, axis, 0)

            xs = (
                [split(a, 2) for a in per_step],
                [None if a is None else split(a, 1) for a in masks],
            )
            final, (h_tilde, m) = lax.scan(run, start, xs)
            h_tilde = jnp.moveaxis(h_tilde, 0, 2).reshape(batch, heads, chunks * size, d)
            m = jnp.moveaxis(m, 0, 2).reshape(batch, heads, chunks * size)
        h_tilde, m = h_tilde[:, :, :steps], m[:, :, :steps]
        hs, gates = self._output(params, jnp.moveaxis(h_tilde, 2, 1), o_pre)

        # The trace's stabilised gates need m before each step: the previous m, the initial
        # carry's after a reset.
        m_prev = jnp.concatenate([start[2][..., None], m[..., :-1]], axis=-1)
        if resets_BxT is not None:
            m_prev = jnp.where(resets_BxT[:, None, :], restart[2][..., None], m_prev)
        gates["i"] = jnp.swapaxes(jnp.exp(i_pre - m), 1, 2)
        gates["f"] = jnp.swapaxes(jnp.exp(log_f + m_prev - m), 1, 2)

        # The carry's h is the output of each sequence's last valid step (padding keeps it).
        taken = steps if valid_BxT is None else jnp.sum(valid_BxT[:, :steps], axis=1)
        taken = jnp.broadcast_to(jnp.asarray(taken), (batch,))
        last = jnp.take_along_axis(hs, jnp.maximum(taken - 1, 0)[:, None, None], axis=1)[:, 0]
        h_last = jnp.where((taken > 0)[:, None], last, carry.h)
        c, n, m_last = final
        final_carry = base.MLSTMState(h_last, c.reshape(batch, -1), n.reshape(batch, -1), m_last)
        return hs, final_carry, gates


# One compiled program per cell, mode and shapes (a nested jit is inlined under an outer one).
_whole_sequence = functools.partial(jax.jit, static_argnums=(0, 7))(
    lambda cell, *args: cell._whole_sequence(*args)
)
