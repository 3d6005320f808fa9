"""cells.kernels.pallas_rnn (`cells.scan(..., backend='pallas')`) in Pallas' interpret mode
against the specification `cells.reference_scan`: outputs, final carry and every gradient, for
the Mosaic TPU kernels and the GPU (Triton) kernels of `cells.kernels.pallas_rnn_triton`; the
Triton kernels also lower for 'cuda' through `jax.export` on this CPU.

Interpreting a kernel costs seconds per call, so the default run has one case per kernel
family (the TPU GRU over several time blocks, the Triton LSTM with lengths); the rest (the
other cell of each, the other weight mode, bfloat16) are `slow`.
"""

import cells_testing as ct
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import cells
from cells.kernels import pallas_rnn

B, I, H = 3, 4, 8  # noqa: E741


def _case(name, steps, lengths, seed=0, hidden=H):
    cell = cells.LSTM(hidden) if name == "lstm" else cells.GRU(hidden)
    params = ct.random_params(cell, I, seed=seed)
    xs = jnp.asarray(np.random.default_rng(seed + 1).standard_normal((B, steps, I)), jnp.float32)
    start = jax.tree.map(
        lambda a: 0.5 * jax.random.normal(jax.random.key(seed + 2), a.shape),
        cell.initial_carry(B),
    )
    return cell, params, xs, start, None if lengths is None else jnp.asarray(lengths)


def _loss(scan, cell, lengths):
    def loss(params, xs, carry):
        ys, final = scan(cell, params, xs, carry=carry, lengths=lengths)
        return jnp.sum(jnp.sin(3.0 * ys)) + sum(jnp.sum(c * c) for c in final), (ys, final)

    return loss


def _pallas(block_steps, target="tpu"):
    def scan(cell, params, xs, carry, lengths):
        return pallas_rnn.scan(
            cell, params, xs, carry, lengths, block_steps, interpret=True, target=target
        )

    return scan


@pytest.mark.parametrize(
    "name,steps,lengths,block_steps",
    [
        pytest.param("lstm", 5, [5, 2, 0], 16, marks=pytest.mark.slow),  # one block, lengths
        pytest.param("gru", 5, [5, 2, 0], 16, marks=pytest.mark.slow),
        pytest.param("lstm", 7, [7, 3, 6], 3, marks=pytest.mark.slow),  # 3 blocks, T padded
        ("gru", 7, None, 2),  # several blocks, no lengths: the default run's GRU case
    ],
)
def test_pallas_kernel_equals_the_reference(name, steps, lengths, block_steps):
    _check_against_reference(_pallas(block_steps), name, steps, lengths)


@pytest.mark.parametrize(
    "name,resident",
    [
        ("lstm", False),  # W_hh re-read every step (any H)
        pytest.param("gru", True, marks=pytest.mark.slow),  # W_hh held across the loop
        pytest.param("lstm", True, marks=pytest.mark.slow),
        pytest.param("gru", False, marks=pytest.mark.slow),
    ],
)
def test_triton_kernel_equals_the_reference(name, resident, monkeypatch):
    from cells.kernels import pallas_rnn_triton as triton

    monkeypatch.setattr(triton, "RESIDENT_BYTES", 2**40 if resident else 0)
    # H = 16 (Triton's smallest matmul tile); B = 3 is padded to one block of 16 sequences.
    _check_against_reference(_pallas(None, "triton"), name, 5, [5, 2, 0], hidden=16)


def test_triton_kernels_lower_for_cuda_and_refuse_other_widths():
    from jax import export

    from cells.kernels import pallas_rnn_triton as triton

    for cell in (cells.LSTM(32), cells.GRU(32)):
        params = cell.init(jax.random.key(0), I)
        xs, carry = jnp.ones((20, 9, I)), cell.initial_carry(20)

        def loss(p, x, cell=cell, carry=carry):
            ys, _ = pallas_rnn.scan(cell, p, x, carry, interpret=False, target="triton")
            return jnp.sum(ys)

        checks = [export.DisabledSafetyCheck.custom_call("__gpu$xla.gpu.triton")]
        exported = export.export(jax.jit(jax.grad(loss)), platforms=["cuda"],
                                 disabled_checks=checks)(params, xs)  # fmt: skip
        # The forward and the backward kernel, two programs of 16 sequences each (B = 20).
        assert exported.mlir_module().count("__gpu$xla.gpu.triton") == 2
        assert "grid_x = 2" in exported.mlir_module()
        assert export.deserialize(exported.serialize()).platforms == ("cuda",)
    for hidden in (8, 24):
        with pytest.raises(ValueError, match="power of two >= 16"):
            triton.check_hidden(hidden)
    assert triton.resident_default("lstm", 64, 4) and not triton.resident_default("lstm", 128, 4)


def _check_against_reference(scan, name, steps, lengths, hidden=H):
    cell, params, xs, start, lengths = _case(name, steps, lengths, hidden=hidden)
    grad = jax.value_and_grad(_loss(scan, cell, lengths), (0, 1, 2), True)
    (_, (ys, final)), grads = grad(params, xs, start)
    ref = jax.value_and_grad(_loss(cells.reference_scan, cell, lengths), (0, 1, 2), True)
    (_, (ys_ref, final_ref)), grads_ref = ref(params, xs, start)
    ct.assert_close(ys, ys_ref, 1e-5, "outputs")
    for a, b in zip(final, final_ref, strict=True):
        ct.assert_close(a, b, 1e-5, "final carry")
    for (path, a), b in zip(
        jax.tree_util.tree_leaves_with_path(grads), jax.tree.leaves(grads_ref), strict=True
    ):
        ct.assert_close(a, b, 1e-4, f"gradient {jax.tree_util.keystr(path)}")
    for b, n in enumerate(np.full(B, steps) if lengths is None else np.asarray(lengths)):
        assert not np.asarray(ys)[b, n:].any()  # padded steps: zero outputs


@pytest.mark.slow
def test_bfloat16_recurrent_matmul_stays_close():
    cell, params, xs, start, lengths = _case("lstm", 6, None)
    bf16 = cells.LSTM(H, compute_dtype=jnp.bfloat16)
    ys, _ = _pallas(4)(bf16, params, xs, start, lengths)
    ys_ref, _ = cells.scan(bf16, params, xs, carry=start)
    np.testing.assert_allclose(ys, ys_ref, atol=3e-2)


def test_scan_backend_dispatch_and_errors():
    cell, params, xs, start, _ = _case("lstm", 3, None)
    with pytest.raises(ValueError, match="backend must be one of"):
        cells.scan(cell, params, xs, backend="cuda")
    with pytest.raises(ValueError, match="does not implement reverse, resets"):
        cells.scan(cell, params, xs, backend="pallas", reverse=True, resets=jnp.zeros((B, 3), bool))
    peephole = cells.LSTM(H, peephole=True)
    with pytest.raises(ValueError, match="plain LSTM and the plain reset-after GRU"):
        pallas_rnn.scan(peephole, peephole.init(jax.random.key(0), I), xs, start)
    assert pallas_rnn.kind_of(cells.GRU(H, reset_after=False)) is None
    assert pallas_rnn.kind_of(cells.GRU(H)) == "gru" and pallas_rnn.kind_of(cell) == "lstm"
