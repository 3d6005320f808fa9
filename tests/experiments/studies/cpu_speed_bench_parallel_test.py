"""Smoke test of experiments/studies/cpu_speed/bench_parallel.py: tiny shapes, every part, the
JSON refusal."""

import json
import subprocess
import sys

import jax
import pytest

from experiments.studies.cpu_speed import bench_parallel

jax.config.update("jax_numpy_rank_promotion", "raise")


@pytest.mark.slow  # ~15 s of compiles; the precision part and the refusal stay in the default
def test_parts_report_every_implementation():
    rows = bench_parallel.parallel_part([(1, 16)], hidden=8, repeats=1)
    impls = {"gru", "lstm", "mingru-sequential"}
    impls |= {f"{c}-{m}" for c in ("mingru", "minlstm", "rglru") for m in ("parallel", "hoisted")}
    impls |= {"mingru-input-gemms", "minlstm-input-gemms"}
    assert {r["impl"] for r in rows} == impls
    for ceiling in ("mingru-input-gemms", "minlstm-input-gemms"):
        row = next(r for r in rows if r["impl"] == ceiling)
        assert row["share_of_ceiling"] == 1.0 and row["peak_bytes"] >= 0
    assert all(r["tokens_per_s"] > 0 for r in rows)
    assert "| mingru-hoisted | 1 | 16 |" in bench_parallel.format_parallel(rows)
    rows = bench_parallel.headwise_part((2, 4, 8), repeats=1)
    by_name = {r["impl"]: r for r in rows}
    assert by_name["lstm NH=4"]["recurrent_weights"] == 8 * 4 * 8 // 4  # block-diagonal: 1/NH
    assert by_name["lstm (fused)"]["ratio_vs_dense_fused"] == 1.0
    result = bench_parallel.mlstm_part([(1, 16)], 8, [8, 32], repeats=1)
    assert {r["impl"] for r in result["speed"]} == {
        "lstm", "gru", "slstm", "mlstm-sequential", "mlstm-hoisted", "mlstm-parallel"
    }  # fmt: skip
    assert [r["seq_len"] for r in result["memory"]] == [8, 32]
    assert all(r[form] > 0 for r in result["memory"] for form in bench_parallel.MLSTM_FORMS)
    assert "| 32 |" in bench_parallel.format_mlstm_memory(result["memory"])
    layer = {"grid": (4, 3), "maps": 2, "kernel": 3, "steps": 3}
    rows = bench_parallel.convlstm_part(layer, (1, 2), repeats=1, lstm_hidden=8)
    assert [(r["impl"], r["batch"]) for r in rows] == [
        (f"{impl}", b) for b in (1, 2) for impl in ("convlstm-patches", "convlstm-lax", "lstm")
    ]
    assert all(r["frames_per_s"] > 0 for r in rows) and rows[0]["time_vs_patches"] == 1.0
    assert rows[0]["layer"]["grid"] == [4, 3] and rows[2]["layer"] is None
    assert "| convlstm-lax | 2 | 3 |" in bench_parallel.format_convlstm(rows)


def test_precision_part_measures_the_parallel_scan_against_float64():
    rows = bench_parallel.precision_part([256])
    for r in rows:
        assert r["parallel"] < 2e-6 and r["sequential"] < 2e-6
        assert r["log_space"] > r["parallel"]  # the drift the linear-space scan avoids


def test_existing_json_is_refused_without_force(tmp_path):
    path = tmp_path / "bench.json"
    path.write_text("{}")
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "experiments.studies.cpu_speed.bench_parallel",
            "--quick",
            f"--json={path}",
        ],
        capture_output=True,
        text=True,
    )
    assert proc.returncode != 0 and "exists" in proc.stderr
    assert "Traceback" not in proc.stderr and json.loads(path.read_text()) == {}
