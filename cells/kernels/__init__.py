"""Hand-written sequence kernels, each tested against `cells.scan`'s autodiff path.

`sequence_vjp.recurrence` is the recurrence with a whole-sequence `jax.custom_vjp` backward
(one GEMM per step in the serial reverse chain, weight gradients as single GEMMs after it);
`cells.scan(..., backward='fused')` uses it.
"""

from cells.kernels.sequence_vjp import recurrence, supports

__all__ = ["recurrence", "supports"]
