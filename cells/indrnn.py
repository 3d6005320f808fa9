"""Independently recurrent neural network, IndRNN (Li, Li, Cook, Zhu & Gao 2018).

Each unit sees only its own past, through one scalar weight:

    h_t = act(x_t W_ih + b + u * h_{t-1}),   u [H] a vector (elementwise product)

so a step has no recurrent GEMM, and the gradient through T steps of unit k is a product of T
scalars u_k act'(.), which the bound on |u_k| keeps from vanishing or exploding. act is relu
(the paper's default) or tanh. With `recurrent_max=m > 0` the step uses clip(u, -m, m): the
paper's constraint |u_k| <= m, where m = 2**(1/T) lets a relu unit grow at most by 2 over T
steps (`IndRNN.recurrent_bound(T)`); 0 leaves u free. u starts uniform in [0, 1] (the paper's
initialisation, within the bound for any T) under every init_scheme; W_ih and b follow the
init_scheme (`cells.initializers`: 'cells' Glorot uniform and zero; 'torch' one uniform bias,
as the IndRNN has no recurrent bias).

Parameters: w_ih [I, H], u [H], b [H]. The hand-written backward (`backward='fused'`) is
elementwise: dh_{t-1} = dpre_t * u.
"""

from __future__ import annotations

import dataclasses
from typing import ClassVar

import jax
import jax.numpy as jnp

from cells import base, registry
from cells.kernels import step_grads

_ACTIVATIONS = {"relu": jax.nn.relu, "tanh": jnp.tanh}


@registry.register("indrnn")
@dataclasses.dataclass(frozen=True)
class IndRNN(base.Cell):
    """IndRNN cell. See the module docstring.

    Attributes:
      activation: 'relu' (default) or 'tanh'.
      recurrent_max: m > 0 bounds |u| by m in every step; 0 = unbounded.
    """

    activation: str = "relu"
    recurrent_max: float = 0.0

    num_gates: ClassVar[int] = 1
    gate_names: ClassVar[tuple[str, ...]] = ("a",)
    fused_backward: ClassVar[type | None] = step_grads.IndRNNGrad
    bias_terms: ClassVar[tuple[int, ...]] = (1,)  # one bias: no recurrent matrix to carry one

    def __post_init__(self):
        super().__post_init__()
        if self.activation not in _ACTIVATIONS:
            raise ValueError(
                f"IndRNN: activation must be one of {sorted(_ACTIVATIONS)}, "
                f"got {self.activation!r}."
            )
        m = self.recurrent_max
        if isinstance(m, bool) or not isinstance(m, int | float) or not m >= 0:
            raise ValueError(f"IndRNN: recurrent_max must be a number >= 0, got {m!r}.")

    @staticmethod
    def recurrent_bound(steps: int) -> float:
        """2**(1/T): the paper's |u| bound for a relu IndRNN over T steps (no explosion)."""
        return 2.0 ** (1.0 / steps)

    def init(self, key, input_size: int):
        params = super().init(key, input_size)
        k_u = jax.random.fold_in(key, 1)
        u = jax.random.uniform(k_u, (self.hidden_size,), jnp.float32, 0.0, 1.0)
        params["u"] = u.astype(self.param_dtype)
        del params["w_hh"]
        return params

    def effective_u(self, params):
        """u, clipped to [-recurrent_max, recurrent_max] when bounded."""
        u = params["u"]
        return jnp.clip(u, -self.recurrent_max, self.recurrent_max) if self.recurrent_max else u

    def recurrent(self, params, h):
        """u * h: the elementwise recurrence (no GEMM)."""
        return base.recurrent_input(params, h) * self.effective_u(params).astype(h.dtype)[None, :]

    def fused_step(self, params, carry, xp_BxH):
        (h_prev,) = carry
        pre = xp_BxH.astype(h_prev.dtype) + self.recurrent(params, h_prev)
        h = _ACTIVATIONS[self.activation](pre)
        return base.RNNState(h), h, {"a": pre}

    def reference_step(self, params, carry, x_BxI):
        (h_prev,) = carry
        u_1xH = self.effective_u(params)[None, :]
        h_in = base.recurrent_input(params, h_prev)  # recurrent_dropout acts here
        pre = base.add_bias(x_BxI @ params["w_ih"], params["b"]) + u_1xH * h_in
        h = _ACTIVATIONS[self.activation](pre)
        return base.RNNState(h), h
