"""RG-LRU, the Real-Gated Linear Recurrent Unit (De et al. 2024, "Griffin: Mixing Gated Linear
Recurrences with Local Attention for Efficient Language Models"): the recurrence of Hawk and of
Google DeepMind's RecurrentGemma. Its gates see the input only, so the recurrence is linear in h
and runs in every mode of `cells.scan` (`cells.linear_scan`):

    u_t = x_t W_u + b_u                       the value (the input projected to H units)
    r_t = sigmoid(x_t W_a + b_a)              recurrence gate
    i_t = sigmoid(x_t W_x + b_x)              input gate
    log a_t = -c r_t softplus(p),             i.e. a_t = a^(c r_t) with a = sigmoid(-p), c = 8
    h_t = a_t * h_{t-1} + sqrt(1 - a_t^2) * (i_t * u_t)

The paper writes a = sigmoid(Lambda); the parameter stored here is recurrentgemma's `a_param`,
p = -Lambda, so its weights copy over unchanged. Three more details follow recurrentgemma 1.0.1
(`recurrentgemma.jax.layers.RGLRU`) rather than the paper's text, for parity:

  * initialisation: the base a = sigmoid(-p) is drawn with a^2 uniform in [min_rad^2,
    max_rad^2] = [0.9^2, 0.999^2] ("proportional to area in a ring"); the paper's text speaks of
    a^c in [0.9, 0.999];
  * a_t^2 is computed as exp(2 log a_t), and the derivative of the square root is clipped at
    1000 (its argument floored at 1 / (4 * 1000^2) in the derivative only): where the gate r_t
    saturates at 0 and a_t reaches 1, the exact derivative is infinite and would turn every
    gradient into NaN. The forward value is the exact square root;
  * one difference is kept: at a segment start (segment_pos == 0) recurrentgemma sets a_t = 0
    and skips the sqrt(1 - a_t^2) scale (h_t = i_t * x_t). Here every step, the first included,
    is the equation above, and a reset (`cells.scan(..., resets=)`) restarts from the initial
    carry like every other cell's. recurrentgemma's layer equals this cell from the first step
    when it is given segment positions that start at 1 and the initial carry as its cache
    (tests/cells/rglru_test.py checks both facts).

In recurrentgemma the RG-LRU's input is already H wide (the recurrent block projects and
convolves it first), its value is the input itself and its gates are block-diagonal with
`num_heads` blocks. This cell, a layer of its own in a `Stack`, maps I inputs to H units: its
value has a projection W_u, and its gates are dense, of which block-diagonal gates are the
special case (`cells.interop.rglru_from_recurrentgemma` converts with W_u = identity).

Parameters: w_ih [I, 3H] = [W_a | W_x | W_u] (gate order r, i, u), b [3H], a_param [H].
Initialisation by the init_scheme (`cells.initializers`) for w_ih and b ('cells': Glorot-uniform
and zeros; 'torch': nn.Linear's U(+-1/sqrt(I))), the ring above for a_param.
"""

from __future__ import annotations

import dataclasses
from typing import ClassVar

import jax
import jax.numpy as jnp

from cells import linear_scan, registry

# recurrentgemma's bound on the square root's derivative (`sqrt_bound_derivative(., 1000)`).
MAX_SQRT_GRADIENT = 1000.0


@jax.custom_jvp
def sqrt_bounded_derivative(x):
    """sqrt(x), whose derivative is taken at max(x, 1 / (4 * 1000^2)): at most 1000.

    A custom JVP (not a VJP, as recurrentgemma's), so forward-mode autodiff (jax.jvp,
    jax.jacfwd) works too; reverse mode transposes it to the same clipped derivative."""
    return jnp.sqrt(x)


@sqrt_bounded_derivative.defjvp
def _sqrt_bounded_jvp(primals, tangents):
    (x,), (dx,) = primals, tangents
    floor = 1.0 / (4.0 * MAX_SQRT_GRADIENT**2)
    return jnp.sqrt(x), dx * (0.5 / jnp.sqrt(jnp.maximum(x, floor)))


def ring_init(min_rad: float, max_rad: float, eps: float = 1e-8):
    """The initializer of a_param: the base a = sigmoid(-p) with a^2 uniform in
    [min_rad^2, max_rad^2] (recurrentgemma's `rnn_real_param_init`), p = softplus^-1(-log a)."""

    def init(key, shape, dtype=jnp.float32):
        u = jax.random.uniform(key, shape, dtype)
        log_a = 0.5 * jnp.log(u * (max_rad**2 - min_rad**2) + min_rad**2 + eps)
        return jnp.log(jnp.expm1(-log_a)).astype(dtype)

    return init


@registry.register("rglru")
@dataclasses.dataclass(frozen=True)
class RGLRU(linear_scan.LinearRecurrentCell):
    """RG-LRU (De et al. 2024). See the module docstring. Gate order r, i, u; the trace
    (`cells.scan(..., return_trace=True)`) holds r, i, u and the decay a_t.

    Attributes:
      c: the exponent's scale (8 in the paper and in recurrentgemma).
      min_rad, max_rad: the ring a_param is drawn on (0.9 and 0.999).
    """

    c: float = 8.0
    min_rad: float = 0.9
    max_rad: float = 0.999

    num_gates: ClassVar[int] = 3
    gate_names: ClassVar[tuple[str, ...]] = ("r", "i", "u")

    def __post_init__(self):
        super().__post_init__()
        name = type(self).__name__
        if isinstance(self.c, bool) or not isinstance(self.c, int | float) or not self.c > 0:
            raise ValueError(f"{name}: c must be a number > 0 (the paper's 8), got {self.c!r}.")
        radii = (self.min_rad, self.max_rad)
        if not all(isinstance(r, int | float) and not isinstance(r, bool) for r in radii) or not (
            0 < self.min_rad <= self.max_rad < 1
        ):
            raise ValueError(
                f"{name}: need 0 < min_rad <= max_rad < 1 (the ring a = sigmoid(-a_param) is "
                f"drawn on; default 0.9, 0.999), got min_rad={self.min_rad!r}, "
                f"max_rad={self.max_rad!r}."
            )

    def init(self, key, input_size: int):
        params = super().init(key, input_size)
        init = ring_init(self.min_rad, self.max_rad)
        params["a_param"] = self._init(init, jax.random.fold_in(key, 3), (self.hidden_size,))
        return params

    def coefficients(self, params, xp):
        pre_r, pre_i, u = jnp.split(xp, 3, axis=-1)
        r = jax.nn.sigmoid(pre_r)
        i = jax.nn.sigmoid(pre_i)
        softplus_p = jax.nn.softplus(params["a_param"].astype(xp.dtype))
        log_a = -self.c * r * softplus_p.reshape((1,) * (r.ndim - 1) + softplus_p.shape)
        a = jnp.exp(log_a)
        scale = sqrt_bounded_derivative(1.0 - jnp.exp(2.0 * log_a))
        return a, scale * (i * u), {"r": r, "i": i, "u": u, "a": a}

    def reference_step(self, params, carry, x_BxI):
        (h_prev,) = carry
        w_a, w_x, w_u = self.split_gates(params, "w_ih")
        b_a, b_x, b_u = self.split_gates(params, "b")
        u = x_BxI @ w_u + b_u[None]
        r = jax.nn.sigmoid(x_BxI @ w_a + b_a[None])
        i = jax.nn.sigmoid(x_BxI @ w_x + b_x[None])
        base_a = jax.nn.sigmoid(-params["a_param"])[None]  # the paper's a = sigmoid(Lambda)
        a = base_a ** (self.c * r)
        h = a * h_prev + jnp.sqrt(1.0 - a * a) * (i * u)
        return type(carry)(h), h
