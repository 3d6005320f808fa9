"""Gradients of the fused path against central finite differences, in float64 (x64 enabled)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from cells_testing import CELL_IDS, CELLS, B, T, random_carry, random_inputs, random_params
from jax.test_util import check_grads

import cells

LENGTHS = np.array([T, 3, 0])


# Every cell forward; reversed for one gated cell and the two-GEMM GRU (reverse only reorders
# the steps, which the forward/reverse equality tests cover for every cell).
CASES = [(name, False) for name in CELL_IDS] + [("lstm", True), ("gru_reset_before", True)]


@pytest.mark.parametrize(
    "name, reverse", CASES, ids=[f"{n}-{'rev' if r else 'fwd'}" for n, r in CASES]
)
def test_grads_match_finite_differences(x64, name, reverse):
    """d(loss)/d(params, xs, carry) by reverse mode == central differences (eps 1e-6, tol 1e-6)."""
    import dataclasses

    cell = dataclasses.replace(CELLS[name], param_dtype=jnp.float64)
    params = random_params(cell, dtype=np.float64)
    xs = random_inputs(dtype=np.float64)
    carry = random_carry(cell, dtype=np.float64)
    weights = jnp.asarray(np.random.default_rng(7).standard_normal((B, T, cell.output_size)))

    @jax.jit  # one compile for the many evaluations below
    def loss(p, x, c):
        ys, final = cells.scan(cell, p, x, carry=c, lengths=LENGTHS, reverse=reverse)
        # Every output and the final carry enter the loss with a different weight.
        return jnp.sum(weights * ys) + sum(jnp.sum(jnp.sin(a)) for a in final)

    check_grads(loss, (params, xs, carry), order=1, modes=("rev",), eps=1e-6, atol=1e-6, rtol=1e-6)

    # Padding gets exactly zero gradient: the valid outputs never read it.
    g_xs = jax.grad(loss, argnums=1)(params, xs, carry)
    for b, length in enumerate(LENGTHS):
        assert not np.asarray(g_xs[b, length:]).any()
    assert np.asarray(g_xs[0]).any()
