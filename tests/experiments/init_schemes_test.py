"""The init-scheme study's bookkeeping: run order, skipping finished runs, the tables."""

from __future__ import annotations

import os

from experiments import init_schemes, records


def test_runs_go_seed_by_seed_with_flax_model_as_the_seq2seq_reference():
    runs = init_schemes.run_names(["mnist1d", "seq2seq"], ["cells", "flax"], [0, 1])
    assert runs[:5] == [
        ("mnist1d", "cells", 0),
        ("mnist1d", "flax", 0),
        ("seq2seq", "cells", 0),
        ("seq2seq", "flax", 0),
        ("seq2seq", "flax-model", 0),
    ]
    assert len(runs) == 10 and runs[5] == ("mnist1d", "cells", 1)


def _record(task, scheme, seed, value):
    metric = "exact_match" if task == "seq2seq" else "test_accuracy"
    curve = {"eval_steps": [200, 400], "accuracy": [value / 2, value]}
    return {
        "task": task,
        "scheme": scheme,
        "seed": seed,
        metric: value,
        "curve": curve,
        "wall_time_s": 60.0 + seed,
        "cpu_time_s": 120.0,
    }


def test_tables_give_mean_and_std_over_seeds(tmp_path):
    for seed, value in enumerate([0.5, 0.7, 0.9]):
        records.write(
            str(tmp_path / f"seq2seq_flax_s{seed}.json"), _record("seq2seq", "flax", seed, value)
        )
    records.write(str(tmp_path / "mnist1d_torch_s0.json"), _record("mnist1d", "torch", 0, 0.8))
    table = init_schemes.table(str(tmp_path))
    assert "| seq2seq | flax | exact_match | 0.700 +- 0.200 (n=3) | 0.500, 0.700, 0.900 |" in table
    assert "| mnist1d | torch | test_accuracy | 0.800 +- 0.000 (n=1) |" in table
    assert "60-62 s | 6 CPU-min |" in table
    curves = init_schemes.curve_table(str(tmp_path))
    assert "| flax | 0.350 | 0.700 | 0.525 +- 0.150 |" in curves


def test_a_run_with_a_record_is_skipped(tmp_path, monkeypatch):
    path = tmp_path / "seq2seq_cells_s0.json"
    records.write(str(path), _record("seq2seq", "cells", 0, 0.4))
    monkeypatch.setattr(init_schemes, "run_seq2seq", lambda *a: 1 / 0)  # would fail if run
    init_schemes.run_one("seq2seq", "cells", 0, str(tmp_path))
    assert os.path.exists(path)
