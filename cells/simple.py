"""The Elman recurrent network (Elman 1990), the baseline the gated cells improve on.

    h_t = act(x_t W_ih + b + h_{t-1} W_hh),   act = tanh (default) or relu

The gradient through T steps is a product of T Jacobians diag(act') W_hh, which vanishes or
explodes geometrically: the problem the LSTM and GRU gates were designed to fix. With relu and
an identity-initialised W_hh this is the IRNN of Le, Jaitly & Hinton 2015, registered as
`irnn`: W_hh = I, b = 0, W_ih ~ N(0, 0.001^2) (their Section 4), so at init a step with
positive h and little input passes h on unchanged (Jacobian I: nothing vanishes).

Parameters: w_ih [I, H], w_hh [H, H], b [H] (PyTorch's
b_ih + b_hh), drawn by the cell's init_scheme (`cells.initializers`). The IRNN's weights are
its definition (class defaults of kernel_init and recurrent_init, which win over any scheme),
and its b = 0: it refuses init_scheme='torch', the one scheme with random biases.
"""

from __future__ import annotations

import dataclasses
from typing import ClassVar

import jax
import jax.numpy as jnp

from cells import base, registry
from cells.kernels import step_grads

_ACTIVATIONS = {"tanh": jnp.tanh, "relu": jax.nn.relu}


def identity_init(scale: float = 1.0):
    """Initializer returning scale * I for square shapes (the IRNN recurrent init)."""

    def init(key, shape, dtype=jnp.float32):
        del key
        if len(shape) != 2 or shape[0] != shape[1]:
            raise ValueError(f"identity_init needs a square 2-D shape, got {shape}.")
        return scale * jnp.eye(shape[0], dtype=dtype)

    return init


@registry.register("rnn")
@dataclasses.dataclass(frozen=True)
class SimpleRNN(base.Cell):
    """Elman RNN cell. See the module docstring.

    Attributes:
      activation: 'tanh' (default) or 'relu'.
    """

    activation: str = "tanh"

    num_gates: ClassVar[int] = 1
    gate_names: ClassVar[tuple[str, ...]] = ("a",)
    fused_backward: ClassVar[type | None] = step_grads.SimpleRNNGrad

    def __post_init__(self):
        super().__post_init__()
        if self.activation not in _ACTIVATIONS:
            raise ValueError(
                f"SimpleRNN: activation must be one of {sorted(_ACTIVATIONS)}, "
                f"got {self.activation!r}."
            )

    def fused_step(self, params, carry, xp_BxH):
        (h_prev,) = carry
        pre = (xp_BxH + self.recurrent(params, h_prev)).astype(h_prev.dtype)
        h = _ACTIVATIONS[self.activation](pre)
        return base.RNNState(h), h, {"a": pre}

    def reference_step(self, params, carry, x_BxI):
        (h_prev,) = carry
        h_in = base.recurrent_input(params, h_prev)  # recurrent_dropout acts here
        pre = base.add_bias(x_BxI @ params["w_ih"], params["b"]) + h_in @ params["w_hh"]
        h = _ACTIVATIONS[self.activation](pre)
        return base.RNNState(h), h


@registry.register("irnn")
@dataclasses.dataclass(frozen=True)
class IRNN(SimpleRNN):
    """The IRNN (Le, Jaitly & Hinton 2015): a ReLU Elman RNN started at the identity.

    W_hh = I, b = 0, W_ih ~ N(0, 0.001^2); the recurrence and its hand-written backward are
    SimpleRNN's with activation 'relu'. A scaled identity is `recurrent_init=identity_init(s)`.
    """

    activation: str = "relu"
    kernel_init: base.Initializer | None = jax.nn.initializers.normal(stddev=1e-3)
    recurrent_init: base.Initializer | None = identity_init()

    def __post_init__(self):
        super().__post_init__()
        if self.init_scheme == "torch":
            raise ValueError(
                "IRNN: init_scheme='torch' draws b uniform, but the IRNN starts at b = 0 (Le et "
                "al. 2015); use SimpleRNN(H, activation='relu', init_scheme='torch')."
            )
