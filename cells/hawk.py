"""Hawk's recurrent block (De et al. 2024, "Griffin", Figure 2): the temporal-mixing layer of
the Hawk model and of RecurrentGemma's recurrent layers, around the RG-LRU (`cells.rglru`).
On inputs x [B, T, D], with H the RG-LRU's width and K = 4:

    y_t = GeLU(x_t W_y + b_y)                                       the gate branch
    z_t = x_t W_x + b_x
    v_t = b_c + sum_{s=0}^{K-1} z_{t-s} * w_c[K-1-s]                a causal depthwise
                                                                     convolution over time
    r_t = sigmoid(v_t A_a + b_a),  i_t = sigmoid(v_t A_i + b_i)     block-diagonal gates
    h_t = a_t * h_{t-1} + sqrt(1 - a_t^2) * (i_t * v_t),  a_t = sigmoid(-a_param)^(8 r_t)
    out_t = (h_t * y_t) W_out + b_out

The RG-LRU here takes v itself as its value (no projection of its own) and has `num_heads`
block-diagonal gates, as recurrentgemma's `RecurrentBlock`; the parameters, their names and
their initial distributions follow recurrentgemma 1.0.1, so its weights copy over
(`from_recurrentgemma`) and the block equals its `RecurrentBlock` in values and gradients
(tests/cells/hawk_test.py) except at a segment start, where recurrentgemma's RG-LRU skips the
sqrt(1 - a^2) scale (see `cells.rglru`). Griffin's residual block around it (RMSNorm, the
block, RMSNorm, a gated MLP of expansion 3) is `cells.ResidualStack` with `ffn_factor=3`.

The carry is `HawkState(h [B, H], conv [B, K-1, H])`: the RG-LRU's state and the convolution's
last K-1 inputs z. Before the first step of a sequence those inputs are the carry's (zeros by
default, recurrentgemma's training mode); a reset (`resets[b, t]`) restarts both from the
initial carry, so the convolution never sees inputs from before it (recurrentgemma's document
mask). Padded steps (t >= lengths[b]) keep the carry and output zeros. The RG-LRU runs as in
`cells.scan`'s hoisted mode ('auto' and 'hoisted': a loop, the least work) or its parallel
mode (an associative scan); `step` runs one step (generation).
"""

from __future__ import annotations

import dataclasses
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from cells import base, linear_scan, rglru, sequence

MODES = ("auto", "hoisted", "parallel", "sequential")


class HawkState(NamedTuple):
    """The Hawk block's carry: the RG-LRU's state h [B, H] and the convolution's last K-1
    inputs conv [B, K-1, H] (oldest first)."""

    h: jax.Array
    conv: jax.Array


def _variance_scaling(scale: float):
    """recurrentgemma's initializers: normal, variance scale / fan_in (jax's fan rules)."""
    return jax.nn.initializers.variance_scaling(scale, "fan_in", "normal")


@dataclasses.dataclass(frozen=True)
class HawkBlock:
    """Hawk's recurrent block. See the module docstring.

    Attributes:
      width: D, the block's input and output width.
      lru_width: H, the RG-LRU's width (0: D).
      num_heads: the RG-LRU gates' diagonal blocks (they must divide H).
      conv_width: K, the temporal convolution's width (4 in the paper).
      final_init_scale: the variance scale of W_out's initial distribution (recurrentgemma's
        final_w_init_variance_scale; Griffin uses 2 / num_layers).
      compute_dtype: dtype of the matmul inputs (None: the inputs'); elementwise math and the
        carry stay float32.
    """

    width: int
    lru_width: int = 0
    num_heads: int = 1
    conv_width: int = 4
    final_init_scale: float = 1.0
    compute_dtype: Any = None

    def __post_init__(self):
        for name in ("width", "lru_width", "num_heads", "conv_width"):
            value = getattr(self, name)
            low = 0 if name == "lru_width" else 1
            if isinstance(value, bool) or not isinstance(value, int) or value < low:
                raise ValueError(f"HawkBlock: {name} must be an int >= {low}, got {value!r}.")
        if self.hidden_size % self.num_heads:
            raise ValueError(
                f"HawkBlock: num_heads={self.num_heads} must divide the RG-LRU's width "
                f"{self.hidden_size}."
            )
        if not self.final_init_scale > 0:
            raise ValueError(
                f"HawkBlock: final_init_scale must be > 0, got {self.final_init_scale!r}."
            )

    @property
    def hidden_size(self) -> int:
        """H, the RG-LRU's width."""
        return self.lru_width or self.width

    @property
    def output_size(self) -> int:
        return self.width

    @property
    def _lru(self) -> rglru.RGLRU:
        return rglru.RGLRU(self.hidden_size)

    # -- parameters ------------------------------------------------------------------------
    def init(self, key, input_size: int) -> dict:
        """Parameters for inputs of width `input_size` (= width: the block is residual)."""
        if input_size != self.width:
            raise ValueError(
                f"HawkBlock.init: input_size must equal width={self.width} (a residual block), "
                f"got {input_size!r}."
            )
        d, h, k, heads = self.width, self.hidden_size, self.conv_width, self.num_heads
        keys = jax.random.split(key, 7)
        normal = _variance_scaling(1.0)  # the linear maps' and the gates' (recurrentgemma's)
        return {
            "w_y": normal(keys[0], (d, h)),
            "b_y": jnp.zeros((h,)),
            "w_x": normal(keys[1], (d, h)),
            "b_x": jnp.zeros((h,)),
            "conv_w": _variance_scaling(0.01)(keys[2], (k, h)),
            "conv_b": jnp.zeros((h,)),
            "a_gate_w": normal(keys[3], (heads, h // heads, h // heads)),
            "a_gate_b": jnp.zeros((h,)),
            "input_gate_w": normal(keys[4], (heads, h // heads, h // heads)),
            "input_gate_b": jnp.zeros((h,)),
            "a_param": rglru.ring_init(0.9, 0.999)(keys[5], (h,)),
            "w_out": _variance_scaling(self.final_init_scale)(keys[6], (h, d)),
            "b_out": jnp.zeros((d,)),
        }

    def initial_carry(self, batch_size: int, dtype=jnp.float32) -> HawkState:
        h, k = self.hidden_size, self.conv_width
        return HawkState(
            jnp.zeros((batch_size, h), dtype), jnp.zeros((batch_size, k - 1, h), dtype)
        )

    # -- pieces ----------------------------------------------------------------------------
    def _dense(self, x, w, b):
        acc = jnp.promote_types(jnp.float32, x.dtype)
        return base.add_bias(base.matmul(x, w, self.compute_dtype).astype(acc), b)

    def _gates(self, params, v):
        """The RG-LRU's coefficients from v [..., H]: (a, b, trace)."""
        heads, h = self.num_heads, self.hidden_size
        v_heads = v.reshape(*v.shape[:-1], heads, h // heads)

        def block_diagonal(w, b):
            y = jnp.einsum("...hi,hij->...hj", v_heads, w.astype(v.dtype))
            return base.add_bias(y.reshape(v.shape), b)

        pre = jnp.concatenate(
            [
                block_diagonal(params["a_gate_w"], params["a_gate_b"]),
                block_diagonal(params["input_gate_w"], params["input_gate_b"]),
                v,
            ],
            axis=-1,
        )
        return self._lru.coefficients({"a_param": params["a_param"]}, pre)

    def _check(self, params, carry, batch, what):
        if not isinstance(params, dict) or "a_param" not in params or "conv_w" not in params:
            raise ValueError("HawkBlock: params must be HawkBlock.init's dict.")
        h, k = self.hidden_size, self.conv_width
        if carry is not None and not (
            isinstance(carry, HawkState)
            and jnp.shape(carry.h) == (batch, h)
            and jnp.shape(carry.conv) == (batch, k - 1, h)
        ):
            raise ValueError(
                f"HawkBlock: {what} must be a HawkState(h [{batch}, {h}], conv [{batch}, {k - 1}, "
                f"{h}]) (block.initial_carry(batch_size)), got {jax.tree.map(jnp.shape, carry)}."
            )

    # -- the sequence ----------------------------------------------------------------------
    def scan(
        self,
        params,
        xs,
        *,
        carry=None,
        initial_carry=None,
        lengths=None,
        resets=None,
        mode: str = "auto",
        backward: str = "autodiff",
        recurrent_dropout: float = 0.0,
        zoneout: float = 0.0,
        rng=None,
        **unsupported,
    ):
        """Runs the block over xs [B, T, D]: returns (outputs [B, T, D], final HawkState).

        backward: 'autodiff' (the block has no hand-written backward; 'fused' is refused).
        recurrent_dropout and zoneout must be 0 (the block has neither; rng is accepted for
        `cells.ResidualStack`, which passes one)."""
        del rng
        if recurrent_dropout or zoneout:
            raise ValueError("HawkBlock: recurrent_dropout and zoneout are not supported.")
        if backward != "autodiff":
            raise ValueError(
                f"HawkBlock: backward={backward!r}: the block differentiates by autodiff only."
            )
        if unsupported:
            raise ValueError(
                f"HawkBlock: {', '.join(sorted(unsupported))} not supported (the block takes "
                "carry, initial_carry, lengths, resets and mode)."
            )
        if mode not in MODES:
            raise ValueError(f"HawkBlock: mode must be one of {MODES}, got {mode!r}.")
        batch, steps, _ = xs.shape
        self._check(params, carry, batch, "carry")
        self._check(params, initial_carry, batch, "initial_carry")
        acc = jnp.promote_types(jnp.float32, xs.dtype)
        init = self.initial_carry(batch, acc) if initial_carry is None else initial_carry
        carry = init if carry is None else carry
        carry = HawkState(carry.h.astype(acc), carry.conv.astype(acc))
        init = HawkState(init.h.astype(acc), init.conv.astype(acc))
        valid = None
        if lengths is not None:
            lengths = jnp.asarray(lengths)
            valid = jnp.arange(steps)[None, :] < lengths[:, None]
            xs = sequence._zero_padding(xs, lengths)
        resets = None if resets is None else jnp.asarray(resets, bool)
        y = jax.nn.gelu(self._dense(xs, params["w_y"], params["b_y"]))
        z = self._dense(xs, params["w_x"], params["b_x"])
        history = jnp.concatenate([carry.conv, z], axis=1)  # z_{t} at index K-1+t
        t = jnp.arange(steps)
        # the last reset at or before each step (-1: none), for the convolution's window
        last_reset = None
        if resets is not None:
            last_reset = jax.lax.cummax(jnp.where(resets, t[None, :], -1), axis=1)
        v = self._window_sum(params, history, init, t, last_reset)
        a, b, _ = self._gates(params, v)
        method = "associative" if mode == "parallel" else "loop"
        if steps == 0:
            hs = jnp.zeros((batch, 0, self.hidden_size), acc)
        else:
            hs = linear_scan.linear_recurrence(
                a, b, carry.h, valid_BxT=valid, resets_BxT=resets, init_BxH=init.h, method=method
            )
        out = self._dense(hs * y, params["w_out"], params["b_out"])
        if valid is not None:
            out = jnp.where(valid[:, :, None], out, 0.0)
        # the final carry: h after the last valid step, the last K-1 inputs before it
        final_h = hs[:, -1] if steps else carry.h
        ends = jnp.full((batch,), steps) if lengths is None else lengths
        final_conv = self._last_inputs(history, init, ends, last_reset)
        return out, HawkState(final_h, final_conv)

    def _term(self, history, init, t_BxT, s, last_reset_BxT):
        """z_{t-s} for every (b, t) as the window sees it: the history's, or, where a reset r
        in (t-s, t] cut the sequence, the initial carry's input from before r."""
        k = self.conv_width
        index = k - 1 + t_BxT - s
        term = jnp.take_along_axis(history, jnp.clip(index, 0)[:, :, None], axis=1)
        if last_reset_BxT is None:
            return term
        crossed = (last_reset_BxT >= 0) & (t_BxT - s < last_reset_BxT)
        before = jnp.clip(k - 1 + t_BxT - s - last_reset_BxT, 0, k - 2)
        from_init = jnp.take_along_axis(init.conv, before[:, :, None], axis=1)
        return jnp.where(crossed[:, :, None], from_init, term)

    def _window_sum(self, params, history, init, t, last_reset):
        batch, k = history.shape[0], self.conv_width
        t_BxT = jnp.broadcast_to(t[None, :], (batch, t.shape[0]))
        w = params["conv_w"].astype(history.dtype)
        v = jnp.zeros(t_BxT.shape + (self.hidden_size,), history.dtype)
        for s in range(k):
            v = v + self._term(history, init, t_BxT, s, last_reset) * w[k - 1 - s][None, None]
        return base.add_bias(v, params["conv_b"].astype(history.dtype))

    def _last_inputs(self, history, init, ends_B, last_reset):
        """The convolution's state after each sequence's last valid step: z_{e-K+1..e-1}, the
        window of the next step e = lengths[b] (from the initial carry across a reset)."""
        k = self.conv_width
        if k == 1:
            return history[:, :0]
        batch = history.shape[0]
        next_t = ends_B[:, None]
        reset = None
        if last_reset is not None:
            if last_reset.shape[1] == 0:
                reset = jnp.full((batch, 1), -1)
            else:
                at = jnp.clip(ends_B - 1, 0)[:, None]
                reset = jnp.where(ends_B[:, None] > 0, jnp.take_along_axis(last_reset, at, 1), -1)
        columns = [self._term(history, init, next_t, s, reset)[:, 0] for s in range(k - 1, 0, -1)]
        return jnp.stack(columns, axis=1)

    # -- recurrentgemma -------------------------------------------------------------------
    @staticmethod
    def from_recurrentgemma(variables, **options) -> tuple[HawkBlock, dict]:
        """(block, params) equal to a `recurrentgemma.jax.modules.RecurrentBlock`'s variables
        ({'params': {...}} or the inner dict); real-valued RG-LRU only."""
        tree = variables.get("params", variables)
        try:
            lru = tree["rg_lru"]
            if "a_imag_param" in lru:
                raise ValueError("a complex RG-LRU (lru_only_real=False) has no equivalent here")
            params = {
                "w_y": tree["linear_y"]["kernel"], "b_y": tree["linear_y"]["bias"],
                "w_x": tree["linear_x"]["kernel"], "b_x": tree["linear_x"]["bias"],
                "conv_w": tree["conv_1d"]["w"], "conv_b": tree["conv_1d"]["b"],
                "a_gate_w": lru["a_gate"]["w"], "a_gate_b": lru["a_gate"]["b"].reshape(-1),
                "input_gate_w": lru["input_gate"]["w"],
                "input_gate_b": lru["input_gate"]["b"].reshape(-1),
                "a_param": lru["a_param"],
                "w_out": tree["linear_out"]["kernel"], "b_out": tree["linear_out"]["bias"],
            }  # fmt: skip
        except (KeyError, TypeError, AttributeError) as e:
            raise ValueError(
                f"HawkBlock.from_recurrentgemma: not a RecurrentBlock's variables ({e!r})."
            ) from None
        params = {k: jnp.asarray(v) for k, v in params.items()}
        width, lru_width = params["w_x"].shape
        block = HawkBlock(
            width, lru_width=lru_width, num_heads=params["a_gate_w"].shape[0],
            conv_width=params["conv_w"].shape[0], **options,
        )  # fmt: skip
        return block, params

    # -- one step --------------------------------------------------------------------------
    def step(self, params, carry, x, *, t=0, rng=None, recurrent_dropout=0.0, zoneout=0.0):
        """One step x [B, D] -> (HawkState, output [B, D]); equal to `scan` step by step.
        (t and rng are accepted for `cells.ResidualStack.step`; the block has no recurrent
        dropout or zoneout.)"""
        del t, rng
        if recurrent_dropout or zoneout:
            raise ValueError("HawkBlock.step: recurrent_dropout and zoneout are not supported.")
        self._check(params, carry, x.shape[0], "carry")
        acc = jnp.promote_types(jnp.float32, x.dtype)
        y = jax.nn.gelu(self._dense(x, params["w_y"], params["b_y"]))
        z = self._dense(x, params["w_x"], params["b_x"])
        window = jnp.concatenate([carry.conv.astype(acc), z[:, None]], axis=1)  # oldest first
        v = base.add_bias(
            jnp.einsum("bkh,kh->bh", window, params["conv_w"].astype(acc)), params["conv_b"]
        )
        a, b, _ = self._gates(params, v)
        h = a * carry.h.astype(acc) + b
        out = self._dense(h * y, params["w_out"], params["b_out"])
        return HawkState(h, window[:, 1:]), out
