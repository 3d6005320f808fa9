"""The init-scheme study: its runs (seed by seed, flax's model as the seq2seq reference) and
its tables (mean ± std over seeds, the curve means)."""

from __future__ import annotations

from experiments.lab import records
from experiments.studies.init_schemes import study


def test_runs_go_seed_by_seed_with_flax_model_as_the_seq2seq_reference():
    seq2seq = [r.name for r in study.GROUPS["seq2seq"]("unused")]
    assert seq2seq[:6] == [f"seq2seq_{s}_s0" for s in (*study.SCHEMES, "flax-model")] + [
        "seq2seq_cells_s1"
    ]
    mnist = study.GROUPS["mnist1d"]("unused")
    assert len(mnist) == 12 and "flax-model" not in " ".join(r.name for r in mnist)
    assert "--out={out}" in mnist[0].command


def _record(task, scheme, seed, value):
    metric = "exact_match" if task == "seq2seq" else "test_accuracy"
    curve = {"eval_steps": [200, 400], "accuracy": [value / 2, value]}
    return {"task": task, "scheme": scheme, "seed": seed, metric: value, "curve": curve}


def test_tables_give_mean_and_std_over_seeds(tmp_path):
    for seed, value in enumerate([0.5, 0.7, 0.9]):
        records.write(
            str(tmp_path / f"seq2seq_flax_s{seed}.json"), _record("seq2seq", "flax", seed, value)
        )
    records.write(str(tmp_path / "mnist1d_torch_s0.json"), _record("mnist1d", "torch", 0, 0.8))
    tables = study.readme_tables(str(tmp_path))
    assert (
        "| seq2seq | flax | exact match, step 1,200 | 0.700 ± 0.200 | 0.500, 0.700, 0.900 |"
        in (tables["results"])
    )
    assert "| mnist1d | torch | test accuracy | 0.800 | 0.800 |" in tables["results"]
    assert "| flax | 0.350 | 0.700 | 0.525 ± 0.150 |" in tables["curves"]
