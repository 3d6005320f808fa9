"""Smoke test of experiments/bench.py: tiny shapes, every implementation, agreement enforced."""

import json

import jax
import pytest
from absl import flags
from absl.testing import flagsaver

from experiments import bench

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
    original = bench.to_flax
    try:
        bench.to_flax = lambda name, p: original(name, dict(p, b=p["b"] + 1.0))
        with pytest.raises(AssertionError, match="disagrees"):
            bench.bench_shape("lstm", 2, 4, 8, "fwd", ["ours", "flax"], repeats=1, atol=2e-4)
    finally:
        bench.to_flax = original


def test_quick_main_writes_json(tmp_path):
    if not flags.FLAGS.is_parsed():
        flags.FLAGS.mark_as_parsed()
    path = tmp_path / "bench.json"
    with flagsaver.flagsaver(quick=True, json=str(path), impls=["ours", "flax"], cells=["gru"]):
        bench.main([])
    result = json.loads(path.read_text())
    assert {r["mode"] for r in result["records"]} == {"fwd", "fwd+bwd"}
    assert result["hardware"]["cpu_count"] >= 1 and "loadavg_end" in result
