"""Cells whose recurrence is linear in h, and the scans that run them over a sequence.

A cell of this kind (MinGRU, MinLSTM, Feng et al. 2024; RGLRU, De et al. 2024) computes its
gates from x_t alone, so a step is an elementwise affine map of the previous state,

    h_t = a_t * h_{t-1} + b_t,        a_t, b_t functions of x_t only,

and every gate of every step can be computed at once, before any recurrence: one input GEMM
over [B*T, I] and elementwise math. What remains is the elementwise linear recurrence, which
`linear_recurrence` solves in one of two ways:

  'associative'  `jax.lax.associative_scan` (Blelloch 1990) over pairs (a, b) composed by
                 (a1, b1) then (a2, b2) = (a1 * a2, a2 * b1 + b2): every prefix (A_t, B_t) in
                 O(log T) parallel depth, h_t = A_t * h_0 + B_t. The parallel form, for
                 accelerators with many cores to fill (`cells.scan(..., mode='parallel')`).
  'loop'         a `lax.scan` of one multiply-add per element and step: O(T) depth but the
                 least work (the associative scan does about twice as much and stores its
                 levels for the backward pass). On this project's 2-core CPU the loop was the
                 faster of the two for B = 1..32, T = 1k..16k
                 (`experiments/studies/cpu_speed/bench_parallel.py`),
                 so `mode='auto'` picks it on CPU (`cells.scan(..., mode='hoisted')`).

Why linear space: the minGRU paper's log-space form (log h_t = a*_t + logcumsumexp(log b - a*),
a* = cumsum(log a)) subtracts two large cumulative sums, and its float32 error grows with T
(measured 2e-4 to 3e-4 relative at T = 4096, 1e-3 to 2e-3 at T = 16384). With 0 <= a_t <= 1
(both cells' coefficients are gate values) the pairs composed here never overflow, every term
is a product of at most log2(T) rounded factors (the loop: one rounding per step), and the
error stays at float32 rounding (1.5e-7 at T = 16384; tests/cells/linear_scan_test.py,
experiments/studies/cpu_speed/bench_parallel.py). Tiny products underflow to 0, where the true
value lies too.

Sequence features are folded into the coefficients before either solver:
  * padded steps (t >= lengths[b]) become the identity map (a = 1, b = 0): the carry is kept;
  * a reset before step t (start of an episode) becomes a = 0, b = a_t * h_init + b_t: the map
    then ignores what came before and starts from the initial carry;
  * reversal is a gather of the valid part before and after (as in `cells.scan`).
"""

from __future__ import annotations

from typing import ClassVar

import jax
import jax.numpy as jnp
from jax import lax

from cells import base, initializers

METHODS = ("associative", "loop")
# `cells.scan`'s modes for these cells and the solver each runs.
METHOD_OF_MODE = {"parallel": "associative", "hoisted": "loop"}


class LinearRecurrentCell(base.Cell):
    """Base class of cells with h_t = a_t * h_{t-1} + b_t, (a_t, b_t) from x_t alone.

    A subclass defines `coefficients(params, xp)`: from the projected inputs xp [..., G*H]
    (`input_projection`, no recurrent matrix), the coefficients a, b [..., H] and the gate
    activations for `return_trace`. `fused_step` (the sequential mode) and the hoisted and
    parallel modes of `cells.scan` are all built from it, so they compute the same function.
    The carry is `RNNState(h)`; parameters are w_ih [I, G*H] and b [G*H] (no w_hh).
    """

    linear_in_h = True  # `cells.scan` can run these cells with `linear_recurrence`

    def init(self, key, input_size: int) -> base.Params:
        if isinstance(input_size, bool) or not isinstance(input_size, int) or input_size <= 0:
            raise ValueError(
                f"{type(self).__name__}.init: input_size must be a positive int, "
                f"got {input_size!r}."
            )
        gh = self.num_gates * self.hidden_size
        # 'torch': nn.Linear(I, G*H)'s rule, U(+-1/sqrt(I)) for weight and bias (no recurrent
        # layer here; Feng et al.'s code builds these cells from nn.Linear).
        bound = initializers.torch_bound(input_size)
        return {
            "w_ih": self._init_kernel(key, (input_size, gh), torch_bound=bound),
            "b": self._draw_bias(jax.random.fold_in(key, 2), self.bias_terms, torch_bound=bound),
        }

    @property
    def bias_terms(self) -> tuple[int, ...]:
        return (1,) * self.num_gates  # one bias per block (a Linear layer's)

    def coefficients(self, params, xp):
        """(a, b, gates) for projected inputs xp [..., G*H]; a, b [..., H]."""
        raise NotImplementedError

    def fused_step(self, params, carry, xp_BxG):
        (h_prev,) = carry
        a, b, gates = self.coefficients(params, xp_BxG.astype(h_prev.dtype))
        h = a * h_prev + b
        return base.RNNState(h), h, gates

    def recurrent(self, params, h):
        raise TypeError(f"{type(self).__name__} has no recurrent matrix (its gates see x only).")

    # -- the whole sequence at once (`cells.scan`'s hoisted and parallel modes) ----------------
    static_time_modes: ClassVar[tuple[str, ...]] = ("parallel",)  # associative_scan needs T

    def auto_mode(self, on_cpu: bool, static_steps: bool) -> str:
        """`cells.scan`'s mode='auto': the loop ('hoisted') measured faster on CPU;
        accelerators get the O(log T)-depth scan ('parallel', unmeasured), which needs a static
        number of steps."""
        return "hoisted" if on_cpu or not static_steps else "parallel"

    def whole_sequence(self, params, xp_BxTxG, carry, init, valid_BxT, resets_BxT, mode):
        """(h [B, T, H], the final carry, the trace): every step's coefficients at once, then
        `linear_recurrence` by the mode's method (hoisted: 'loop', parallel: 'associative')."""
        (h0,) = carry
        a, b, gates = self.coefficients(params, xp_BxTxG)
        batch, steps = xp_BxTxG.shape[:2]
        if steps == 0:
            return jnp.zeros((batch, 0, self.hidden_size), h0.dtype), carry, gates
        hs = linear_recurrence(
            a,
            b,
            h0,
            valid_BxT=valid_BxT,
            resets_BxT=resets_BxT,
            init_BxH=init.h,
            method=METHOD_OF_MODE[mode],
        )
        # Padded steps keep the state: the last position holds the final one.
        return hs, base.RNNState(hs[:, -1]), gates


def _compose(first, second):
    """The affine map `first` followed by `second`, elementwise: h -> a2 (a1 h + b1) + b2."""
    a1, b1 = first
    a2, b2 = second
    return a1 * a2, a2 * b1 + b2


def linear_recurrence(
    a_BxTxH,
    b_BxTxH,
    h0_BxH,
    *,
    valid_BxT=None,
    resets_BxT=None,
    init_BxH=None,
    method: str = "associative",
):
    """All states h_t = a_t * h_{t-1} + b_t (t = 0..T-1) from h_{-1} = h0.

    Args:
      a_BxTxH: the coefficient a_t of h_{t-1}, time on axis 1.
      b_BxTxH: the added term b_t, time on axis 1.
      h0_BxH: the state before the first step.
      valid_BxT: optional bool; False steps keep the state (a = 1, b = 0).
      resets_BxT: optional bool; True replaces the state by `init_BxH` before that step.
      init_BxH: the state a reset restarts from (required with resets_BxT).
      method: 'associative' (parallel, O(log T) depth) or 'loop' (sequential, least work);
        see the module docstring. Same values up to float rounding.

    Returns:
      hs [B, T, H]: the state after each step (the kept state at invalid steps).
    """
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}.")
    if valid_BxT is not None:
        valid = valid_BxT[:, :, None]
        a_BxTxH = jnp.where(valid, a_BxTxH, jnp.ones((), a_BxTxH.dtype))
        b_BxTxH = jnp.where(valid, b_BxTxH, jnp.zeros((), b_BxTxH.dtype))
    if resets_BxT is not None:
        reset = resets_BxT[:, :, None]
        b_BxTxH = jnp.where(reset, a_BxTxH * init_BxH[:, None, :] + b_BxTxH, b_BxTxH)
        a_BxTxH = jnp.where(reset, jnp.zeros((), a_BxTxH.dtype), a_BxTxH)
    if method == "associative":
        prod_a, acc_b = lax.associative_scan(_compose, (a_BxTxH, b_BxTxH), axis=1)
        return prod_a * h0_BxH[:, None, :] + acc_b

    def step(h_BxH, ab):
        a, b = ab
        h_BxH = a * h_BxH + b
        return h_BxH, h_BxH

    coefficients_TxBxH = (jnp.swapaxes(a_BxTxH, 0, 1), jnp.swapaxes(b_BxTxH, 0, 1))
    _, hs_TxBxH = lax.scan(step, h0_BxH, coefficients_TxBxH)
    return jnp.swapaxes(hs_TxBxH, 0, 1)
