"""Smoke test of experiments/studies/cpu_speed/bench.py: tiny shapes, every implementation,
agreement enforced."""

import json

import jax
import numpy as np
import pytest
from absl import flags
from absl.testing import flagsaver

from experiments.studies.cpu_speed import bench, gemm_floor

jax.config.update("jax_numpy_rank_promotion", "raise")

_FIELDS = {
    "impl", "cell", "batch", "seq_len", "hidden", "mode", "tokens_per_s", "gflops_per_s",
    "compile_s", "peak_rss_mb", "loadavg",
}  # fmt: skip


def test_gemm_flops():
    # LSTM, B=2, T=3, H=4 (I = H): forward 2*2*3*(4+4)*16 = 1536, forward+backward 3x.
    assert bench.gemm_flops("lstm", 2, 3, 4, "fwd") == 1536
    assert bench.gemm_flops("gru", 2, 3, 4, "fwd+bwd") == 3 * 1536 * 3 / 4


@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_bench_shape_records_and_agreement(cell):
    impls = bench._available(["ours", "ours-autodiff", "flax", "torch"])
    records = bench.bench_shape(cell, 2, 4, 8, "fwd+bwd", impls, repeats=1, atol=2e-4)
    assert [r["impl"] for r in records] == impls
    for r in records:
        assert _FIELDS <= set(r)
        assert r["tokens_per_s"] > 0 and r["seconds"] > 0
    table = bench.format_table(records)
    assert "ours/flax" in table and cell in table


def test_conversion_is_checked():
    """A wrong flax conversion must be caught before timing."""
    original = bench.flax_variables
    try:
        bench.flax_variables = lambda cell, p: original(cell, dict(p, b=p["b"] + 1.0))
        with pytest.raises(AssertionError, match="disagrees"):
            bench.bench_shape("lstm", 2, 4, 8, "fwd", ["ours", "flax"], repeats=1, atol=2e-4)
    finally:
        bench.flax_variables = original


def test_quick_main_writes_json(tmp_path):
    if not flags.FLAGS.is_parsed():
        flags.FLAGS.mark_as_parsed()
    path = tmp_path / "bench.json"
    with flagsaver.flagsaver(quick=True, json=str(path), impls=["ours", "flax"], cells=["gru"]):
        bench.main([])
    result = json.loads(path.read_text())
    assert {r["mode"] for r in result["records"]} == {"fwd", "fwd+bwd"}
    assert result["hardware"]["cpu_count"] >= 1 and "loadavg_end" in result


@pytest.mark.parametrize("cell,batch", [("lstm", 2), ("lstm", 8), ("gru", 8)])
def test_gemms_only_floor_does_the_stated_products(cell, batch):
    """The floor's forward is h_t = (x_t W_ih + b + h_{t-1} W_hh)[:, :H] (hoisted below B=8,
    in the loop from B=8); its gradients have the shapes of the real ones."""
    hidden, steps = 4, 3
    params = bench._our_cell(cell, hidden).init(jax.random.key(0), hidden)
    xs = jax.random.normal(jax.random.key(1), (batch, steps, hidden))
    apply, grads = gemm_floor.make(cell, params, batch)
    p = jax.tree.map(np.asarray, params)
    h, want = np.zeros((batch, hidden)), []
    for t in range(steps):
        h = (np.asarray(xs[:, t]) @ p["w_ih"] + p["b"] + h @ p["w_hh"])[:, :hidden]
        want.append(h)
    np.testing.assert_allclose(apply(params, xs), np.stack(want, 1), rtol=1e-5, atol=1e-5)
    d_params, d_xs = grads(params, xs)
    assert jax.tree.map(np.shape, d_params) == jax.tree.map(np.shape, params)
    assert d_xs.shape == xs.shape
    records = bench.bench_shape(
        cell, batch, steps, hidden, "fwd+bwd", ["ours", "gemms-only"], 1, 2e-4
    )
    assert [r["impl"] for r in records] == ["ours", "gemms-only"]
