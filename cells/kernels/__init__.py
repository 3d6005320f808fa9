"""Hand-written sequence kernels, each tested against `cells.scan`'s autodiff path.

`sequence_vjp.recurrence` is the recurrence with a whole-sequence `jax.custom_vjp` backward
(one GEMM per step in the serial reverse chain, weight gradients as single GEMMs after it);
`sequence_vjp.recurrence_from_inputs` is the same with the input projection inside the forward
loop. `cells.scan(..., backward='fused')` uses them.
"""

from cells.kernels.sequence_vjp import recurrence, recurrence_from_inputs, supports

__all__ = ["recurrence", "recurrence_from_inputs", "supports"]
