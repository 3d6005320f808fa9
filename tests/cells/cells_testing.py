"""Shared test inputs for tests/cells: every cell variant, random params and batches, errors.

Shapes are tiny on purpose: the suite's cost is XLA compilation, one per shape and option.
"""

from __future__ import annotations

import jax
import numpy as np
import reference_numpy  # the sibling module (pytest puts tests/cells on sys.path)

import cells

B, T, I, H = 3, 5, 4, 6  # noqa: E741  (batch, time, input features, hidden units)
LENGTHS = np.array([5, 2, 0])  # full, partial and empty sequences in one batch


def _example(cls):
    return cls(H, **cls.example_options(H))


# Every registered cell with its defaults (and the options it needs, `example_options`), plus
# the options that change its equations, named for test ids. A newly registered cell joins
# every parameterised test here by itself (it also needs its float64 step in
# reference_numpy.STEPS under its registered name; reference_numpy_test.py checks). The
# registered irnn covers SimpleRNN's relu equations.
CELLS = {name: _example(cells.get(name)) for name in cells.names()} | {
    "gru_reset_before": cells.GRU(H, reset_after=False),
    "indrnn_tanh_bounded": cells.IndRNN(H, activation="tanh", recurrent_max=0.3),
    "lstm_all": cells.LSTM(H, peephole=True, coupled=True, proj_size=4),
    "lstm_peephole_ln_proj": cells.LSTM(H, peephole=True, proj_size=3, layer_norm=True),
    "slstm_heads": cells.SLSTM(H, num_heads=2),  # head-wise LSTM/GRU: headwise_test.py
    # Three heads of two units, chunks of two steps (T = 5: three chunks, the last padded);
    # mlstm_test.py runs T = 1024 and the xlstm package's reference.
    "mlstm_heads_chunked": cells.MLSTM(H, num_heads=3, chunk_size=2),
    # I = 4 inputs as a 2 x 2 grid of one channel, so the (even and odd) kernels overhang the
    # borders (the registered example is a one-position grid; convlstm_test.py runs 1-D and
    # 3-D grids against the same NumPy reference and flax).
    "convlstm_2d_peephole": cells.ConvLSTM(
        H, spatial_shape=(2, 2), kernel_size=(2, 3), peephole=True
    ),
}
CELL_IDS = list(CELLS)
# One cell per family that the wrapper tests (modules, stacks, padding properties) run by
# default; every other cell runs them in the slow suite (`make test-all`), while the numerics
# tests (reference, float64, finite differences) keep every cell in the default run.
CORE_CELL_IDS = ("lstm", "gru", "irnn", "mingru", "slstm_heads")


def every_cell_core_by_default(argname: str = "name"):
    """pytest.mark.parametrize over CELL_IDS, the cells outside CORE_CELL_IDS marked slow."""
    import pytest

    return pytest.mark.parametrize(
        argname,
        [pytest.param(n, marks=() if n in CORE_CELL_IDS else pytest.mark.slow) for n in CELL_IDS],
    )


def random_params(cell, input_size=I, seed=0, scale=0.5, dtype=np.float32):
    """Params with every entry random (biases included, unlike `cell.init`), as `dtype`."""
    rng = np.random.default_rng(seed)
    shapes = cell.param_shapes(input_size)
    return {
        k: jax.numpy.asarray(scale * rng.standard_normal(shape), dtype)
        for k, shape in sorted(shapes.items())
    }


def random_inputs(shape=(B, T, I), seed=1, dtype=np.float32):
    return jax.numpy.asarray(np.random.default_rng(seed).standard_normal(shape), dtype)


def random_carry(cell, batch=B, seed=2, dtype=np.float32):
    rng = np.random.default_rng(seed)
    return cell.carry_type(
        *(
            jax.numpy.asarray(0.5 * rng.standard_normal((batch, width)), dtype)
            for width in cell.carry_sizes
        )
    )


def rounding_tol(cell, tol: float = 1e-6) -> float:
    """`tol` for two paths of one cell that should agree to float32 rounding, or 1e-5 for the
    mLSTM: its default (chunkwise) path sums each chunk's terms in another order than its step
    and than a chunk of another length, so float32 results differ at the 1e-6 level."""
    return max(tol, 1e-5) if isinstance(cell, cells.MLSTM) else tol


def rel_err(actual, expected) -> float:
    """max |actual - expected| / max |expected| (the error relative to the output scale)."""
    actual = np.asarray(actual, np.float64)
    expected = np.asarray(expected, np.float64)
    assert actual.shape == expected.shape, (actual.shape, expected.shape)
    scale = max(np.abs(expected).max(initial=0.0), 1e-12)
    return float(np.abs(actual - expected).max(initial=0.0) / scale)


def assert_close(actual, expected, tol, what=""):
    err = rel_err(actual, expected)
    assert err <= tol, f"{what}: relative error {err:.3g} > {tol:.3g}"
    return err


def check_against_numpy(cell, *, lengths, reverse, dtype=np.float32, tol=1e-5, jit=False):
    """Runs `cells.scan` (fused) and `cells.reference_scan` (spec) against reference_numpy.

    Starts from a random carry, checks outputs, final carry and the trace; returns the largest
    relative error seen (for the record).
    """
    params = random_params(cell, dtype=dtype)
    xs = random_inputs(dtype=dtype)
    carry = random_carry(cell, dtype=dtype)
    fused = lambda p, x, c, lens: cells.scan(
        cell, p, x, carry=c, lengths=lens, reverse=reverse, return_trace=True
    )
    if jit:
        fused = jax.jit(fused)
    ys, final, trace = fused(params, xs, carry, lengths)
    assert ys.dtype == dtype and all(c.dtype == dtype for c in final)
    ys_ref, final_ref = cells.reference_scan(
        cell, params, xs, carry=carry, lengths=lengths, reverse=reverse
    )
    ys_np, final_np, trace_np = reference_numpy.run(cell, params, xs, carry, lengths, reverse)
    errs = [
        assert_close(ys, ys_np, tol, "fused outputs"),
        assert_close(ys_ref, ys_np, tol, "reference outputs"),
    ]
    for k, (a, b, c) in enumerate(zip(final, final_ref, final_np, strict=True)):
        errs.append(assert_close(a, c, tol, f"fused carry[{k}]"))
        errs.append(assert_close(b, c, tol, f"reference carry[{k}]"))
    assert sorted(trace) == sorted(trace_np)
    for name in trace_np:
        errs.append(assert_close(trace[name], trace_np[name], tol, f"trace[{name!r}]"))
    return max(errs)
