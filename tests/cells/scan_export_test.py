"""`cells.scan` as a portable program: `jax.export` for CUDA and TPU, lowered on this CPU.

Lowering needs no accelerator: it proves each cell's forward and backward (autodiff and the
hand-written `custom_vjp`) has a StableHLO form for the platform, with symbolic batch and time
dimensions, and that the serialised program (flatbuffers) reads back. Programs exported for
the CPU as well are run here and equal the direct call. Compiling for TPU: `make check-tpu`.
"""

from __future__ import annotations

import cells_testing as ct
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax import export

import cells

ACCELERATORS = ("cuda", "tpu")
# Cells without a hand-written backward warn that backward="fused" runs autodiff: expected.
pytestmark = pytest.mark.filterwarnings("ignore:.*has no hand-written backward")


def _grad_fn(cell, backward, **scan_kwargs):
    """The gradient of a loss of cells.scan w.r.t. params and inputs, jitted."""

    def loss(params, xs, lengths):
        ys, carry = cells.scan(cell, params, xs, lengths=lengths, backward=backward, **scan_kwargs)
        return jnp.sum(ys * ys) + sum(jnp.sum(c) for c in carry)

    return jax.jit(jax.grad(loss, argnums=(0, 1)))


def _symbolic_args(params, input_size=ct.I):
    b, t = export.symbolic_shape("b, t")
    return (
        params,
        jax.ShapeDtypeStruct((b, t, input_size), jnp.float32),
        jax.ShapeDtypeStruct((b,), jnp.int32),
    )


@pytest.mark.parametrize("name", ct.CELL_IDS)
def test_every_cell_lowers_for_cuda_and_tpu_with_symbolic_batch_and_time(name):
    cell = ct.CELLS[name]
    params = ct.random_params(cell)
    for backward in ("autodiff", "fused"):
        exported = export.export(_grad_fn(cell, backward), platforms=ACCELERATORS)(
            *_symbolic_args(params)
        )
        assert exported.platforms == ACCELERATORS
        xs_aval = exported.in_avals[len(params)]  # after the params' leaves
        assert [str(d) for d in xs_aval.shape] == ["b", "t", str(ct.I)]
        restored = export.deserialize(exported.serialize())
        assert restored.platforms == ACCELERATORS
        assert str(restored.out_avals) == str(exported.out_avals)
        text = exported.mlir_module()
        assert "stablehlo.while" in text  # the time loop, not an unrolled trace


@pytest.mark.parametrize(
    "name,backward,dtype",
    [  # each compiles twice per shape: one case in the default run
        pytest.param("lstm", "fused", None, marks=pytest.mark.slow),
        pytest.param("gru", "autodiff", None, marks=pytest.mark.slow),
        ("lstm", "fused", "bfloat16"),
        pytest.param("mingru", "autodiff", None, marks=pytest.mark.slow),
    ],
)
def test_the_cpu_export_runs_and_equals_the_direct_call(name, backward, dtype):
    base_cell = ct.CELLS[name]
    cell = type(base_cell)(ct.H, compute_dtype=dtype) if dtype else base_cell
    params = ct.random_params(cell)
    # projection='auto' decides by the batch size, which is symbolic in the export: fix it so
    # that both calls run the same program (bfloat16 rounds differently in the two).
    fn = _grad_fn(cell, backward, projection="in_loop")
    exported = export.export(fn, platforms=("cpu", *ACCELERATORS))(*_symbolic_args(params))
    restored = export.deserialize(exported.serialize())
    for shape in ((ct.B, ct.T, ct.I), (2, 9, ct.I)):  # one program, any batch and length
        xs = ct.random_inputs(shape=shape)
        lengths = jnp.asarray(np.minimum(np.arange(shape[0]) + 3, shape[1]), jnp.int32)
        got = restored.call(params, xs, lengths)
        want = fn(params, xs, lengths)
        for a, b in zip(jax.tree.leaves(got), jax.tree.leaves(want), strict=True):
            np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-6, atol=1e-6)


def test_parallel_mode_needs_a_static_time_axis():
    cell = ct.CELLS["mingru"]
    params = ct.random_params(cell)
    with pytest.raises(ValueError, match="mode='parallel' needs a static number of steps"):
        export.export(_grad_fn(cell, "autodiff", mode="parallel"), platforms=ACCELERATORS)(
            *_symbolic_args(params)
        )
    # 'auto' takes the hoisted loop for a symbolic time axis, on every platform.
    exported = export.export(_grad_fn(cell, "autodiff"), platforms=ACCELERATORS)(
        *_symbolic_args(params)
    )
    assert exported.platforms == ACCELERATORS
